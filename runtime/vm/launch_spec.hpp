// A SupervisorConfig as JSON: what goes down the pipe to a new supervisor, and what
// launch.json keeps so `start` can boot a stopped VM again.
//
// Two forms of one document. The pipe form carries everything, secret values included:
// it only ever lives in a pipe between the launcher and the supervisor. The kept form
// (launch.json, mode 0600 in the owner-only VM directory) is the same with every secret
// value removed: a secret that came from an environment variable keeps the variable's
// name (start reads it again), one given as a literal value is listed so start can ask
// for it. The policy travels in the policy file's own shape, so it goes back through the
// same loader with the same checks: a policy script or mount folder that has gone since
// is a clear error at start. The policy's env values are kept (start needs them); the
// copy in state.json, which `ls --json` prints, has them redacted.
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "common/result.hpp"
#include "policy/policy.hpp"
#include "runtime/vm/supervisor.hpp"

namespace airlock::runtime {

inline constexpr int kLaunchFormat = 1;

nlohmann::json launch_json(const SupervisorConfig& config, bool with_secret_values);

// The pipe form back into a config; errors say which field (or the loader's message).
Result<SupervisorConfig> parse_launch_json(const nlohmann::json& j);

// The kept form with every secret value put back: from its environment variable (read
// now, with env) or from given (NAME -> value). The error names each one missing.
Result<nlohmann::json> restore_secrets(nlohmann::json kept, const std::map<std::string, std::string>& given,
                                       const policy::EnvLookup& env);

// The policy in the policy file's shape with secret and env values redacted: state.json's
// "policy", and what policy.get returns.
nlohmann::json redacted_policy_json(const policy::Policy& policy);

// The summary state.json keeps under "config" (image, resources, vfs, network, ...).
nlohmann::json state_config_json(const SupervisorConfig& config);

}  // namespace airlock::runtime
