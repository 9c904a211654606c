// Pure helpers of the VM commands; see command_helpers.hpp.
#include "runtime/vm/command_helpers.hpp"

namespace airlock::runtime {

Result<CopyEndpoint> parse_copy_endpoint(std::string_view text) {
  if (text.empty()) return Error{"empty path"};
  const auto colon = text.find(':');
  const auto slash = text.find('/');
  if (colon == std::string_view::npos || (slash != std::string_view::npos && slash < colon)) {
    return CopyEndpoint{std::nullopt, std::string(text)};
  }
  CopyEndpoint end;
  end.vm = std::string(text.substr(0, colon));
  end.path = std::string(text.substr(colon + 1));
  if (end.vm->empty()) return Error{"'" + std::string(text) + "': missing VM id before ':'"};
  if (end.path.empty() || end.path.front() != '/') {
    return Error{"'" + std::string(text) + "': the guest path must be absolute"};
  }
  return end;
}

Result<std::string> resolve_vm_id(std::string_view wanted, const std::vector<std::string>& ids) {
  if (wanted.empty()) return Error{"empty VM id"};
  std::vector<std::string> matches;
  for (const auto& id : ids) {
    if (id == wanted) return id;
    if (id.compare(0, wanted.size(), wanted) == 0 ||
        (id.size() > 3 && id.compare(3, wanted.size(), wanted) == 0)) {
      matches.push_back(id);
    }
  }
  if (matches.size() == 1) return matches.front();
  if (matches.empty()) return Error{"no VM '" + std::string(wanted) + "' (see airlock ls)"};
  return Error{"'" + std::string(wanted) + "' matches " + std::to_string(matches.size()) +
               " VMs; give more of the id"};
}

int exit_code_for(const ExecOutcome& outcome) {
  if (outcome.error_code.empty()) return outcome.exit_code < 0 ? 125 : outcome.exit_code;
  if (outcome.error_code == "not_found") return 127;
  if (outcome.error_code == "permission_denied") return 126;
  return 125;
}

}  // namespace airlock::runtime
