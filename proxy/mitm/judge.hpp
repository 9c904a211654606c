// RequestJudge: the policy decision for one HTTP request inside an intercepted flow.
//
// Theory of operation. A flow reaches the MITM already allowed by name and port (the
// engine judged the name the guest resolved, or the literal IP, before dialling). Each
// request on it is judged again, in this order, first refusal wins:
//   0. CONNECT and TRACE are refused, and Upgrade only to WebSocket (an h2c upgrade is
//      h2c_refused);
//   1. the request's host (absolute-form target, else the Host header) must be present
//      and parse; an HTTP/1.1 request without one was refused by the parser already;
//   2. it must agree with the flow: same canonical host as the flow's name and, on TLS,
//      as the SNI (else sni_host_mismatch / host_mismatch), and the same port when the
//      Host header names one (a request can't rewrite where it goes);
//   3. the blocklist, the rules (with the request's method and normalised path) and the
//      allowlist (Evaluator::evaluate_request) on that host and port;
//   4. the policy script's on_request hook, when the policy has one (it can only deny);
//   5. secrets in the target and every header value, through the flow's request MatchSet
//      (SecretStore::request_matches): a placeholder is swapped for the real value on a
//      TLS request to one of that secret's hosts, else the request is refused with
//      secret_leak (the placeholder never leaves); a secret's real value, in any form the
//      store knows, bound for a host the secret doesn't name is a secret_leak too. A
//      header name carrying either is a leak.
// The head is rewritten in place (origin-form target, swapped values); the verdict says
// which rule matched and which secrets were swapped where (names and locations only).
// Pure: no sockets; the caller owns the flow.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "audit/events.hpp"
#include "policy/engine.hpp"
#include "policy/host_pattern.hpp"
#include "policy/secret_scan.hpp"
#include "proxy/http/message.hpp"

namespace airlock::mitm {

// Stable reason codes of the MITM, shared by events, 403 bodies and tests (policy::reason
// holds the allowlist ones).
namespace reason {
inline constexpr std::string_view sni_host_mismatch = "sni_host_mismatch";
inline constexpr std::string_view host_mismatch = "host_mismatch";
inline constexpr std::string_view secret_leak = "secret_leak";
inline constexpr std::string_view secret_body_too_large = "secret_body_too_large";
inline constexpr std::string_view secret_echo = "secret_echo";
inline constexpr std::string_view unscannable_response = "unscannable_response";
inline constexpr std::string_view h2c_refused = "h2c_refused";
inline constexpr std::string_view http2_preface = "http2_preface";
inline constexpr std::string_view bad_request = "bad_request";
inline constexpr std::string_view opaque_not_allowed = "opaque_not_allowed";
inline constexpr std::string_view unsupported_method = "unsupported_method";
inline constexpr std::string_view unsupported_upgrade = "unsupported_upgrade";
inline constexpr std::string_view upstream_tls_failed = "upstream_tls_failed";
inline constexpr std::string_view upstream_failed = "upstream_failed";
inline constexpr std::string_view guest_tls_failed = "guest_tls_failed";
inline constexpr std::string_view flow_closed = "flow_closed";
inline constexpr std::string_view guest_closed = "guest_closed";
inline constexpr std::string_view upstream_closed = "upstream_closed";
}  // namespace reason

// Where the flow goes, as the engine (or the explicit proxy's CONNECT) established it.
struct FlowTarget {
  policy::Host host;          // the name the guest resolved, or the literal IP
  std::uint16_t port = 0;
  policy::Rule rule;          // the allow rule that let the flow through
  bool tls = false;           // the request arrived inside terminated TLS
  std::optional<policy::Host> sni;  // the ClientHello's server name, when sent
};

struct Verdict {
  bool allowed = false;
  std::string reason;     // policy::reason, mitm::reason or a script reason
  std::string rule;       // the rule that decided
  std::string detail;     // human words (a script's message, the mismatching names)
  std::string host;       // the request's host as judged, for events
  std::string url;        // scheme://host[:port]/path?names=[REDACTED], for events
  std::vector<audit::SecretUse> swaps;
};

class RequestJudge {
 public:
  explicit RequestJudge(const policy::PolicyEngine& policy) : policy_(policy) {}

  // Judges the request and rewrites `head` for upstream when allowed. `secrets` is the
  // flow's request MatchSet (null: no secrets).
  // The verdict's host, URL and detail name no secret's real value, whatever the guest
  // wrote: they go into the guest's refusal body and into the audit trail.
  Verdict judge(const FlowTarget& flow, http::RequestHead& head, const policy::MatchSet* secrets) const;

 private:
  Verdict decide(const FlowTarget& flow, http::RequestHead& head, const policy::MatchSet* secrets) const;
  const policy::PolicyEngine& policy_;
};

// "scheme://host[:port]" + target with query values redacted, for events.
std::string event_url(bool tls, const std::string& host, std::uint16_t port,
                      std::string_view target);

}  // namespace airlock::mitm
