// sandbox.create's params into a Policy, through the policy file loader (JSON is YAML),
// so a config sent over the API is checked exactly like a policy file.
//
// policy_file, when given, is loaded first (its errors name the file, line, column and
// key); config, in the policy file's shape, is then merged over it: a scalar or a list
// it sets replaces the file's, a map (env, network.secrets, network.resolve, vfs.mounts)
// adds to it by key. The "secrets" param is shorthand for config.network.secrets. Errors
// in config name the key path ("config: network.allowed_hosts[1]: invalid host
// pattern"); the line and column would only point into airlock's own re-encoding of it.
// Relative paths (mount host paths, policy_script) resolve against base_dir. Throws
// policy::PolicyError (setup, not the data plane).
#pragma once

#include <filesystem>

#include "policy/policy.hpp"
#include "runtime/api/methods.hpp"

namespace airlock::api {

policy::Policy build_sandbox_policy(const CreateParams& params, const std::filesystem::path& cwd,
                                    const policy::EnvLookup& env = policy::process_env());

}  // namespace airlock::api
