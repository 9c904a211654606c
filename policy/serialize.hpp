// The normalised form of a policy (defaults filled in, patterns canonical, paths
// absolute, secret values redacted) as JSON or YAML, for `airlock policy check`, state
// files and audit records. Secret values never leave through here.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "policy/policy.hpp"

namespace airlock::policy {

nlohmann::json to_json(const Policy& policy);
std::string to_yaml(const Policy& policy);

}  // namespace airlock::policy
