// PolicyEngine: the one policy object of a VM (or of a standalone proxy).
//
// Theory of operation. Built once from the network policy, it owns everything that
// judges traffic: the Evaluator (allow and block lists, the IP guard), the SecretStore
// (this VM's placeholders and their values) and the policy script. Every component that
// judges (DNS, flow admission in the engine and the explicit proxy, the MITM's per-request
// judge, the dialer's address check) asks this one object, so they can't disagree.
//
// admit() is flow admission, the same for a guest's TCP flow and an explicit proxy's
// CONNECT: it judges the destination by name (or literal IP) and port once and returns a
// Grant, the structured outcome every later layer reads (the host and port it may reach,
// the rule that let it in, whether opaque bytes may pass) - never the rule's text.
// Failing closed: anything not granted is refused with a reason.
// Pure and single-threaded: the script is one Lua state.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "policy/evaluator.hpp"
#include "policy/policy.hpp"
#include "policy/rule.hpp"
#include "policy/script.hpp"
#include "policy/secret_store.hpp"

namespace airlock::policy {

// What a flow may do, decided at admission.
struct Grant {
  Host host;                  // the destination as judged: name or literal IP
  std::uint16_t port = 0;
  Rule rule;                  // the allow rule that let it in
  bool opaque_allowed = false;  // non-HTTP bytes may pass (the rule names the port)
};

struct Admission {
  std::optional<Grant> grant;   // set when admitted
  std::string_view reason;      // policy::reason when refused
  Rule rule;                    // the rule that refused, when one did
  bool admitted() const { return grant.has_value(); }
};

class PolicyEngine {
 public:
  // Throws PolicyError for secrets that can't be set up; a script that doesn't load is
  // an Error for the user.
  static Result<std::shared_ptr<PolicyEngine>> create(const NetworkPolicy& network);
  // With a script already loaded (tests, scripts from memory) in place of policy_script.
  static std::shared_ptr<PolicyEngine> create(const NetworkPolicy& network, std::unique_ptr<PolicyScript> script);

  Admission admit(const Host& host, std::uint16_t port) const;
  // The IP guard on one resolved address (the dialer checks every answer).
  Decision check_address(const Host& host, const IpAddress& address) const {
    return evaluator_.check_address(host, address);
  }

  const NetworkPolicy& network() const { return network_; }
  const Evaluator& evaluator() const { return evaluator_; }
  const SecretStore& secrets() const { return secrets_; }
  // Null without a policy_script.
  PolicyScript* script() const { return script_.get(); }

  PolicyEngine(const PolicyEngine&) = delete;
  PolicyEngine& operator=(const PolicyEngine&) = delete;

 private:
  explicit PolicyEngine(const NetworkPolicy& network);

  NetworkPolicy network_;
  Evaluator evaluator_;
  SecretStore secrets_;
  std::unique_ptr<PolicyScript> script_;
};

}  // namespace airlock::policy
