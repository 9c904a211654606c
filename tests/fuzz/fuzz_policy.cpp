// Fuzzes the policy loader: any bytes must give a Policy or a PolicyError, never a crash,
// and a loaded policy must survive serialisation: its network.rules, written out in
// normal form, load back to the same rules. Every rule is then put to the evaluator with
// a request it names.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "policy/evaluator.hpp"
#include "policy/loader.hpp"
#include "policy/serialize.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  airlock::policy::EnvLookup env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "FUZZ_SECRET") return std::string("s3cr3t-value");
    return std::nullopt;
  };
  try {
    auto policy = airlock::policy::load_policy_text(text, "fuzz.yaml", "/nonexistent", env);
    std::string yaml = airlock::policy::to_yaml(policy);
    // The value read from the environment must never come out (unless the input itself
    // spells it, e.g. as a path, which is no leak).
    if (text.find("s3cr3t-value") == std::string_view::npos &&
        yaml.find("s3cr3t-value") != std::string::npos)
      __builtin_trap();
    nlohmann::json rules_only = {{"network", {{"rules", airlock::policy::to_json(policy)["network"]["rules"]}}}};
    auto back = airlock::policy::load_policy_text(rules_only.dump(), "rules.json", "/nonexistent", env);
    if (back.network.rules.size() != policy.network.rules.size()) __builtin_trap();
    for (std::size_t i = 0; i < policy.network.rules.size(); ++i) {
      const auto& a = policy.network.rules[i];
      const auto& b = back.network.rules[i];
      if (a.host.to_string() != b.host.to_string() || a.ports != b.ports || a.methods != b.methods ||
          a.paths != b.paths || a.action != b.action || a.name != b.name)
        __builtin_trap();
    }
    airlock::policy::Evaluator evaluator(policy.network);
    for (const auto& rule : policy.network.rules) {
      airlock::policy::Host host{rule.host.to_string()};
      std::uint16_t port = rule.ports.empty() ? rule.host.port().value_or(443) : rule.ports.front();
      std::string method = rule.methods.empty() ? "GET" : rule.methods.front();
      std::string path = rule.paths.empty() ? "/" : rule.paths.front();
      (void)evaluator.evaluate(host, port);
      (void)evaluator.evaluate_request(host, port, method, path);
    }
  } catch (const airlock::policy::PolicyError&) {
  }
  return 0;
}
