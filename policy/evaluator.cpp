// Network decisions for one destination; see evaluator.hpp for the order of rules.
#include "policy/evaluator.hpp"

namespace airlock::policy {

Evaluator::Evaluator(const NetworkPolicy& network)
    : allowed_(network.allowed_hosts),
      blocked_(network.blocked_hosts),
      private_hosts_(network.allow_private_hosts),
      guard_(network.block_private_ips, network.allow_private_cidrs),
      block_private_(network.block_private_ips) {}

Decision Evaluator::evaluate(const Host& host, std::uint16_t port,
                             const std::optional<IpAddress>& resolved) const {
  if (const HostPattern* rule = blocked_.find(host, port))
    return Decision{false, reason::blocked_host, Rule{Rule::Source::blocked_hosts, rule->to_string()}, {}, {}};
  if (host.is_ip()) {
    // A literal IP is judged by the guard first: "private" says more than "not listed".
    Decision guard = check_address(host, host.ip());
    if (!guard.allowed) return guard;
  }
  const HostPattern* rule = allowed_.find(host, port);
  if (rule == nullptr) return Decision{false, reason::host_not_allowed, {}, {}, {}};
  Decision decision{true, reason::allowed,
                    Rule{Rule::Source::allowed_hosts, rule->to_string(), rule->port().has_value()}, {}, {}};
  std::optional<IpAddress> address = host.is_ip() ? std::optional(host.ip()) : resolved;
  if (address) {
    Decision guard = check_address(host, *address);
    if (!guard.allowed) return guard;
    decision.address = guard.address;
    decision.verdict = guard.verdict;
  }
  return decision;
}

Decision Evaluator::check_address(const Host& host, const IpAddress& address) const {
  IpVerdict verdict = guard_.check(address);
  Decision decision{true, reason::allowed, {}, address, verdict};
  if (verdict.is_public()) return decision;
  if (!block_private_) {
    decision.rule = Rule{Rule::Source::block_private_ips, "false"};
    return decision;
  }
  if (verdict.exception) {
    decision.rule = Rule{Rule::Source::allow_private, address.to_string()};
    return decision;
  }
  if (!host.is_ip()) {
    if (const HostPattern* rule = private_hosts_.find(host, std::nullopt)) {
      decision.rule = Rule{Rule::Source::allow_private, rule->to_string()};
      return decision;
    }
  }
  decision.allowed = false;
  decision.reason = reason::private_address;
  decision.rule = Rule{Rule::Source::block_private_ips, std::string(to_string(verdict.address_class))};
  return decision;
}

}  // namespace airlock::policy
