// DnsHandler: the guest's resolver, answering at the gateway address.
//
// Theory of operation. A query comes in as bytes (a UDP datagram, or one message the
// TcpDnsFramer cut out of a TCP stream) and a response goes out as bytes, or nothing.
// Nothing is ever sent upstream: the answer is decided from the policy alone, so DNS
// can't carry data out of the sandbox.
//   - fewer than 12 bytes, a response (QR set), or more than 64 KiB: dropped, counted
//   - opcode other than QUERY: NOTIMP
//   - malformed (see message.hpp; QDCOUNT != 1 included): FORMERR, id echoed
//   - EDNS version other than 0: BADVERS
//   - class other than IN, zone transfers: REFUSED
//   - a name that is an IP literal in any inet_aton spelling: REFUSED (ip_literal)
//   - PTR: REFUSED (the guest has no reason to map addresses back to names)
//   - a name that is not a valid host name: REFUSED (invalid_name)
//   - a name the policy does not allow on any port: REFUSED, or NXDOMAIN if configured
//   - an allowed name: A gets one synthetic address from the SyntheticPool with the
//     configured TTL (SERVFAIL if the pool is exhausted); every other type (AAAA, MX,
//     HTTPS, ...) gets NOERROR with no data, so the guest uses IPv4 and the gateway.
// Each response emits a DnsEvent into a bounded queue the caller drains.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "policy/evaluator.hpp"
#include "policy/policy.hpp"
#include "proxy/dns/message.hpp"
#include "proxy/dns/name_policy.hpp"
#include "proxy/dns/name_pool.hpp"

namespace airlock::dns {

// Reasons on events, stable snake_case. Policy refusals use policy::reason's names.
namespace dns_reason {
inline constexpr std::string_view allowed = "allowed";
inline constexpr std::string_view host_not_allowed = "host_not_allowed";
inline constexpr std::string_view blocked_host = "blocked_host";
inline constexpr std::string_view denied_by_rule = "denied_by_rule";
inline constexpr std::string_view ip_literal = "ip_literal";
inline constexpr std::string_view invalid_name = "invalid_name";
inline constexpr std::string_view ptr_query = "ptr_query";
inline constexpr std::string_view unsupported_class = "unsupported_class";
inline constexpr std::string_view unsupported_type = "unsupported_type";
inline constexpr std::string_view unsupported_opcode = "unsupported_opcode";
inline constexpr std::string_view bad_edns_version = "bad_edns_version";
inline constexpr std::string_view malformed = "malformed";
inline constexpr std::string_view pool_exhausted = "pool_exhausted";
}  // namespace dns_reason

struct DnsEvent {
  std::string name;     // canonical when valid; as sent otherwise; "" when unreadable
  std::string qtype;    // "A", "AAAA", "TYPE123"; "" when unreadable
  std::string answer;   // the synthetic address, or ""
  bool blocked = false; // true for every answer that is not NOERROR
  std::string reason;   // one of dns_reason
  std::string rcode;    // "NOERROR", "REFUSED", ...
  std::string rule;     // the policy rule that decided, when one did
};

enum class Transport : std::uint8_t { udp, tcp };

class DnsHandler {
 public:
  enum class RefuseWith : std::uint8_t { refused, nxdomain };

  struct Config {
    std::chrono::seconds answer_ttl{30};
    RefuseWith refuse_with = RefuseWith::refused;  // for names the policy does not allow
    std::size_t max_events = 1024;                 // oldest dropped (and counted) beyond
  };

  struct Counters {
    std::uint64_t queries = 0;           // calls to answer()
    std::uint64_t responses = 0;
    std::uint64_t answered_a = 0;        // A records given
    std::uint64_t nodata = 0;
    std::uint64_t refused_policy = 0;    // host_not_allowed or blocked_host
    std::uint64_t refused_ip_literal = 0;
    std::uint64_t refused_ptr = 0;
    std::uint64_t refused_other = 0;     // class, type, invalid name
    std::uint64_t formerr = 0;
    std::uint64_t notimp = 0;
    std::uint64_t badvers = 0;
    std::uint64_t servfail_exhausted = 0;
    std::uint64_t truncated = 0;
    std::uint64_t dropped_short = 0;     // no header to answer to
    std::uint64_t dropped_response = 0;  // QR set: never answer answers
    std::uint64_t dropped_oversize = 0;
    std::uint64_t events_dropped = 0;
  };

  // Keeps references to the evaluator and the pool; both must outlive the handler.
  DnsHandler(Config config, const policy::Evaluator& evaluator,
             const policy::NetworkPolicy& network, SyntheticPool& pool);

  // The response to one query, or nullopt when it is dropped. Over UDP the response fits
  // 512 bytes, or the EDNS size the query offered (at most 1232).
  std::optional<std::vector<std::uint8_t>> answer(std::span<const std::uint8_t> query,
                                                  Clock::time_point now,
                                                  Transport transport = Transport::udp);

  const Counters& counters() const { return counters_; }
  std::deque<DnsEvent>& events() { return events_; }

 private:
  // Writes the response for spec, counts it and emits its event.
  std::vector<std::uint8_t> finish(const ResponseSpec& spec, DnsEvent event);

  Config config_;
  NamePolicy names_;
  SyntheticPool& pool_;
  Counters counters_;
  std::deque<DnsEvent> events_;
};

}  // namespace airlock::dns
