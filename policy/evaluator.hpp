// Evaluator: the network decision for one destination (host, port, resolved address).
//
// Order of judgement, first match wins:
//   1. blocked_hosts         -> blocked_host      (a blocklist beats every allow rule)
//   2. allowed_hosts         -> host_not_allowed  when nothing matches
//   3. the IP guard on the address that would be dialled (the literal IP, or the
//      resolved one) -> private_address, unless block_private_ips is off or an
//      allow_private entry (CIDR, or the host name) makes an exception.
// Pure: no DNS, no sockets; the caller resolves and passes the address in.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

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
}  // namespace reason

struct Decision {
  bool allowed = false;
  std::string_view reason;           // one of policy::reason
  Rule rule;                         // the rule that decided (empty when none matched)
  std::optional<IpAddress> address;  // the address judged by the IP guard, if any
  std::optional<IpVerdict> verdict;
};

class Evaluator {
 public:
  explicit Evaluator(const NetworkPolicy& network);

  // Judges the name or literal, and the address when known (resolved may be empty for a
  // name whose resolution is still to come: then only steps 1 and 2 apply).
  Decision evaluate(const Host& host, std::uint16_t port,
                    const std::optional<IpAddress>& resolved = std::nullopt) const;

  // Step 3 alone, for each address a resolution returns.
  Decision check_address(const Host& host, const IpAddress& address) const;

 private:
  HostMatcher allowed_;
  HostMatcher blocked_;
  HostMatcher private_hosts_;
  IpGuard guard_;
  bool block_private_;
};

}  // namespace airlock::policy
