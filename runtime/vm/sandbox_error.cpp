// Error kinds; see sandbox_error.hpp.
#include "runtime/vm/sandbox_error.hpp"

namespace airlock::runtime {

std::string_view error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::blocked: return "blocked";
    case ErrorKind::host_not_allowed: return "host_not_allowed";
    case ErrorKind::secret_leak: return "secret_leak";
    case ErrorKind::vm_not_running: return "vm_not_running";
    case ErrorKind::vm_not_found: return "vm_not_found";
    case ErrorKind::timeout: return "timeout";
    case ErrorKind::invalid_config: return "invalid_config";
    case ErrorKind::internal: return "internal";
  }
  return "internal";
}

ErrorKind kind_for_guest_code(std::string_view code) {
  if (code == "not_found" || code == "permission_denied" || code == "invalid" || code == "too_large") {
    return ErrorKind::invalid_config;
  }
  if (code == "vm_stopped") return ErrorKind::vm_not_running;
  return ErrorKind::internal;
}

}  // namespace airlock::runtime
