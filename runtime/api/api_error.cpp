// API errors; see api_error.hpp.
#include "runtime/api/api_error.hpp"

#include "policy/policy.hpp"
#include "protocol/messages.hpp"
#include "runtime/api/jsonrpc.hpp"

namespace airlock::api {

int rpc_code_for(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::vm_not_found: return -32001;
    case ErrorKind::vm_not_running: return -32002;
    case ErrorKind::timeout: return -32003;
    case ErrorKind::invalid_config: return -32004;
    case ErrorKind::blocked: return -32005;
    case ErrorKind::host_not_allowed: return -32006;
    case ErrorKind::secret_leak: return -32007;
    case ErrorKind::internal: return -32008;
  }
  return -32008;
}

int rpc_code_of(const ApiError& error) { return error.rpc_code != 0 ? error.rpc_code : rpc_code_for(error.kind); }

nlohmann::json error_data(const ApiError& error) {
  nlohmann::json data = error.extra.is_object() ? error.extra : nlohmann::json::object();
  data["kind"] = runtime::error_kind_name(error.kind);
  if (!error.code.empty()) data["code"] = error.code;
  return data;
}

ApiError invalid_params(const std::string& message) {
  return ApiError{ErrorKind::invalid_config, message, "invalid_params", nullptr, kInvalidParams};
}

ApiError guest_error(const nlohmann::json& reply, const std::string& context) {
  const std::string code = protocol::get_string(reply, "code").value_or("io");
  const std::string message = protocol::get_string(reply, "message").value_or("the guest refused");
  ApiError e;
  e.kind = runtime::kind_for_guest_code(code);
  e.code = code.substr(0, 64);
  e.message = context.empty() ? message : context + ": " + message;
  return e;
}

ApiError error_from_exception(const std::exception& e) {
  if (const auto* sandbox = dynamic_cast<const runtime::SandboxError*>(&e)) {
    return ApiError{sandbox->kind(), sandbox->what(), sandbox->code(), nullptr, 0};
  }
  if (dynamic_cast<const policy::PolicyError*>(&e) != nullptr) {
    return ApiError{ErrorKind::invalid_config, e.what(), "policy", nullptr, 0};
  }
  return ApiError{ErrorKind::internal, e.what(), "", nullptr, 0};
}

}  // namespace airlock::api
