// The VM's one policy object; see engine.hpp.
#include "policy/engine.hpp"

namespace airlock::policy {

PolicyEngine::PolicyEngine(const NetworkPolicy& network)
    : network_(network), evaluator_(network_), secrets_(network_.secrets) {}

Result<std::shared_ptr<PolicyEngine>> PolicyEngine::create(const NetworkPolicy& network) {
  std::shared_ptr<PolicyEngine> engine(new PolicyEngine(network));
  if (network.policy_script) {
    auto script = PolicyScript::load_file(*network.policy_script);
    if (!script) return Error{script.error()};
    engine->script_ = std::move(*script);
  }
  return engine;
}

std::shared_ptr<PolicyEngine> PolicyEngine::create(const NetworkPolicy& network,
                                                   std::unique_ptr<PolicyScript> script) {
  std::shared_ptr<PolicyEngine> engine(new PolicyEngine(network));
  engine->script_ = std::move(script);
  return engine;
}

Admission PolicyEngine::admit(const Host& host, std::uint16_t port) const {
  Decision decision = evaluator_.evaluate(host, port);
  Admission admission;
  if (!decision.allowed) {
    admission.reason = decision.reason;
    admission.rule = std::move(decision.rule);
    return admission;
  }
  admission.reason = reason::allowed;
  admission.grant = Grant{host, port, decision.rule, decision.rule.names_port};
  return admission;
}

}  // namespace airlock::policy
