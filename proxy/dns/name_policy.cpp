// Whether a name may be resolved; see name_policy.hpp for the choice of ports.
#include "proxy/dns/name_policy.hpp"

#include <set>

namespace airlock::dns {

NamePolicy::NamePolicy(const policy::Evaluator& evaluator, const policy::NetworkPolicy& network)
    : evaluator_(evaluator) {
  std::set<std::uint16_t> blocked_ports;
  for (const auto& pattern : network.blocked_hosts)
    if (pattern.port()) blocked_ports.insert(*pattern.port());
  std::set<std::uint16_t> ports;
  // A port no blocked pattern names, standing for "any port" (none if all are named).
  for (std::uint32_t port = 443, tries = 0; tries < 65535; ++tries, port = port % 65535 + 1) {
    if (blocked_ports.count(static_cast<std::uint16_t>(port)) == 0) {
      ports.insert(static_cast<std::uint16_t>(port));
      break;
    }
  }
  for (const auto& pattern : network.allowed_hosts)
    if (pattern.port()) ports.insert(*pattern.port());
  for (const auto& rule : network.rules) {
    if (rule.host.port()) ports.insert(*rule.host.port());
    ports.insert(rule.ports.begin(), rule.ports.end());
  }
  ports_.assign(ports.begin(), ports.end());
}

policy::Decision NamePolicy::judge(const std::string& canonical_name) const {
  policy::Host host{canonical_name};
  policy::Decision refusal{false, policy::reason::host_not_allowed, {}, {}, {}, {}};
  for (std::uint16_t port : ports_) {
    policy::Decision decision = evaluator_.evaluate(host, port);
    if (decision.allowed) return decision;
    // The most telling refusal: a blocklist entry, else a rule that denied, else none.
    auto rank = [](std::string_view why) {
      return why == policy::reason::blocked_host ? 2 : why == policy::reason::denied_by_rule ? 1 : 0;
    };
    if (rank(decision.reason) > rank(refusal.reason)) refusal = decision;
  }
  return refusal;
}

}  // namespace airlock::dns
