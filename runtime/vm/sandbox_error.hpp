// The error kinds every sandbox operation reports, shared by the CLI and the JSON-RPC
// API (where they become data.kind): the reference API's kinds plus "internal".
//
//   blocked, host_not_allowed, secret_leak  the policy refused something (the network
//                                           reports these as events, not as errors)
//   vm_not_found     no sandbox with that id
//   vm_not_running   it exists but is stopped (or still starting)
//   timeout          an operation ran out of time (an exec's timeout_seconds, a boot)
//   invalid_config   the request is wrong: a bad config, bad params, a guest path that
//                    doesn't exist, a command that can't start; data.code says which
//   internal         airlock itself failed (I/O, a VM that won't boot, a bug)
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace airlock::runtime {

enum class ErrorKind {
  blocked,
  host_not_allowed,
  secret_leak,
  vm_not_running,
  vm_not_found,
  timeout,
  invalid_config,
  internal,
};

inline std::string_view error_kind_name(ErrorKind kind) {
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

// A failure with its kind and a message a person can act on; code is a finer reason
// (the guest's not_found, permission_denied, ...), or "".
class SandboxError : public std::runtime_error {
 public:
  SandboxError(ErrorKind kind, const std::string& message, std::string code = {})
      : std::runtime_error(message), kind_(kind), code_(std::move(code)) {}
  ErrorKind kind() const { return kind_; }
  const std::string& code() const { return code_; }

 private:
  ErrorKind kind_;
  std::string code_;
};

// The kind of a guest error code (protocol::error_code): what the caller asked for
// can't be done (not_found, permission_denied, invalid, too_large) or airlock failed.
inline ErrorKind kind_for_guest_code(std::string_view code) {
  if (code == "not_found" || code == "permission_denied" || code == "invalid" || code == "too_large") {
    return ErrorKind::invalid_config;
  }
  if (code == "vm_stopped") return ErrorKind::vm_not_running;
  return ErrorKind::internal;
}

}  // namespace airlock::runtime
