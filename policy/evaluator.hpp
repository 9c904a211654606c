// Evaluator: the network decision for one destination (host, port, resolved address),
// and for one HTTP request to it.
//
// Order of judgement, first match wins:
//   1. blocked_hosts         -> blocked_host      (a blocklist beats every allow rule)
//   2. a literal IP is put to the IP guard (step 5) first
//   3. rules, in order: the first rule whose host and ports cover the destination, and
//      whose methods and paths cover the request, decides: allow, or deny ->
//      denied_by_rule. A rule with paths needs the request's path in normal form
//      (policy/http_path.hpp); one that has none is refused -> unsafe_path.
//   4. allowed_hosts         -> host_not_allowed  when neither a rule nor this matches
//   5. the IP guard on the address that would be dialled (the literal IP, or the
//      resolved one) -> private_address, unless block_private_ips is off or an
//      allow_private entry (CIDR, or the host name) makes an exception.
// A destination without a request (flow admission, DNS, the SNI) is judged by what its
// host and port can tell: a rule without methods and paths decides as above; one with
// them that could allow admits the flow for HTTP only (each request is judged again);
// one with them that denies is passed over, but makes every later allow HTTP-only, so
// opaque bytes can't go where its requests could not. Methods match case-insensitively.
// Pure: no DNS, no sockets; the caller resolves and passes the address in.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/host_pattern.hpp"
#include "policy/ip_guard.hpp"
#include "policy/policy.hpp"
#include "policy/rule.hpp"

namespace airlock::policy {

namespace reason {
inline constexpr std::string_view allowed = "allowed";
inline constexpr std::string_view blocked_host = "blocked_host";
inline constexpr std::string_view host_not_allowed = "host_not_allowed";
inline constexpr std::string_view private_address = "private_address";
inline constexpr std::string_view denied_by_rule = "denied_by_rule";
inline constexpr std::string_view unsafe_path = "unsafe_path";
}  // namespace reason

struct Decision {
  bool allowed = false;
  std::string_view reason;           // one of policy::reason
  Rule rule;                         // the rule that decided (empty when none matched)
  std::optional<IpAddress> address;  // the address judged by the IP guard, if any
  std::optional<IpVerdict> verdict;
  std::string detail;                // why a path is unsafe, when it is
};

class Evaluator {
 public:
  explicit Evaluator(const NetworkPolicy& network);

  // Judges the name or literal, and the address when known (resolved may be empty for a
  // name whose resolution is still to come: then only steps 1 and 2 apply).
  Decision evaluate(const Host& host, std::uint16_t port,
                    const std::optional<IpAddress>& resolved = std::nullopt) const;

  // One HTTP request: steps 1 to 4 with its method and target (the origin-form
  // "/path?query" the guest sent; the query is not judged), then step 5 as evaluate().
  Decision evaluate_request(const Host& host, std::uint16_t port, std::string_view method,
                            std::string_view target,
                            const std::optional<IpAddress>& resolved = std::nullopt) const;

  // Step 5 alone, for each address a resolution returns.
  Decision check_address(const Host& host, const IpAddress& address) const;

 private:
  struct Request {
    std::string_view method;
    std::string_view target;
  };
  Decision decide(const Host& host, std::uint16_t port, const Request* request) const;
  // Step 5 on an allowed decision: the literal IP, else the resolved address if known.
  Decision with_guard(Decision decision, const Host& host, const std::optional<IpAddress>& resolved) const;

  std::vector<NetworkRule> rules_;
  HostMatcher allowed_;
  HostMatcher blocked_;
  HostMatcher private_hosts_;
  IpGuard guard_;
  bool block_private_;
};

}  // namespace airlock::policy
