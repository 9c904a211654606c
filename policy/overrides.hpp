// CLI flags merged over a policy file: --allow-host, --secret, -v, -e, --cpus, --memory,
// --timeout. Each flag is parsed by its own function (unit-tested) and apply_overrides
// merges them: lists append, scalars replace, a secret or mount of the same name or
// guest path replaces the file's. Errors are PolicyError naming the flag.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "policy/policy.hpp"

namespace airlock::policy {

struct CliOverrides {
  std::vector<std::string> allow_hosts;  // --allow-host PATTERN
  std::vector<std::string> secrets;      // --secret NAME=VALUE@h1,h2 | NAME@h1,h2
  std::vector<std::string> volumes;      // -v HOST:GUEST[:ro]
  std::vector<std::string> env;          // -e K=V
  std::optional<std::string> cpus;       // --cpus
  std::optional<std::string> memory;     // --memory (MB, or with a unit: 2G)
  std::optional<std::string> timeout;    // --timeout (seconds, or 5m, 1h)
};

// NAME=VALUE@h1,h2, or NAME@h1,h2 with the value from environment variable NAME.
// The value may itself contain '@' and '=': the hosts are after the last '@'.
Secret parse_secret_flag(const std::string& flag, const EnvLookup& env = process_env());

// HOST:GUEST or HOST:GUEST:ro (also :rw). The host path must be an existing folder and is
// made absolute; the guest path is relative to the workspace unless already inside it.
Mount parse_volume_flag(const std::string& flag, const std::string& workspace);

// K=V (V may be empty or contain '='), or K alone to pass the caller's $K through.
std::pair<std::string, std::string> parse_env_flag(const std::string& flag,
                                                   const EnvLookup& env = process_env());

void apply_overrides(Policy& policy, const CliOverrides& overrides,
                     const EnvLookup& env = process_env());

}  // namespace airlock::policy
