// The spelling of a rule in events; see rule.hpp.
#include "policy/rule.hpp"

namespace airlock::policy {

std::string_view to_string(Rule::Source source) {
  switch (source) {
    case Rule::Source::none: return "";
    case Rule::Source::allowed_hosts: return "allowed_hosts";
    case Rule::Source::blocked_hosts: return "blocked_hosts";
    case Rule::Source::block_private_ips: return "block_private_ips";
    case Rule::Source::allow_private: return "allow_private";
    case Rule::Source::rules: return "rules";
  }
  return "";
}

std::string Rule::to_string() const {
  if (source == Source::none) return "";
  return std::string(policy::to_string(source)) + ": " + text;
}

}  // namespace airlock::policy
