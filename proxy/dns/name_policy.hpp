// NamePolicy: may the guest resolve this name at all?
//
// DNS carries no port, but allowlist patterns may ("pypi.org:443"). A name resolves when
// some port exists on which the Evaluator would let a flow to it through (its steps 1 to
// 4 as for flow admission: blocked_hosts, rules, allowed_hosts; no address is known yet,
// so the IP guard is left to connect time). Rather than guess a port, the candidates are
// taken from the policy: every port an allowed pattern or a rule names, plus one port no
// blocked pattern names (which stands for "any port" for the patterns without one). A
// name whose only rules deny resolves no more than one no rule names. If a port-less
// blocked pattern covers the name, every candidate is refused with blocked_host.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "policy/evaluator.hpp"
#include "policy/policy.hpp"

namespace airlock::dns {

class NamePolicy {
 public:
  // Keeps a reference to the evaluator; reads the network policy only here.
  NamePolicy(const policy::Evaluator& evaluator, const policy::NetworkPolicy& network);

  // The decision for a canonical name: allowed on the first candidate port that allows
  // it; otherwise blocked_host if any candidate said so, else denied_by_rule if a rule
  // did, else host_not_allowed.
  policy::Decision judge(const std::string& canonical_name) const;

  const std::vector<std::uint16_t>& candidate_ports() const { return ports_; }

 private:
  const policy::Evaluator& evaluator_;
  std::vector<std::uint16_t> ports_;
};

}  // namespace airlock::dns
