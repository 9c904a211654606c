// What every API method returns: a JSON result or an ApiError, which the transports turn
// into a JSON-RPC error {code, message, data: {kind, code?, ...}}. The kinds are
// runtime/vm/sandbox_error.hpp's; each has a fixed JSON-RPC code (docs/api.md).
#pragma once

#include <string>
#include <variant>

#include <nlohmann/json.hpp>

#include "runtime/vm/sandbox_error.hpp"

namespace airlock::api {

using runtime::ErrorKind;

struct ApiError {
  ErrorKind kind = ErrorKind::internal;
  std::string message;
  std::string code;                   // a finer reason: invalid_params, not_found, ...
  nlohmann::json extra = nullptr;     // more fields for data (an object), e.g. partial output
  int rpc_code = 0;                   // 0: the kind's own code
};

using ApiResult = std::variant<nlohmann::json, ApiError>;

// The JSON-RPC error code of a kind: -32001 vm_not_found ... -32008 internal.
int rpc_code_for(ErrorKind kind);
int rpc_code_of(const ApiError& error);
// {"kind","code"?, ...extra}
nlohmann::json error_data(const ApiError& error);

// A parameter is missing, of the wrong type or out of range (-32602, invalid_config).
ApiError invalid_params(const std::string& message);
// The guest refused ({"op":"error","code",...}): the kind follows its code.
ApiError guest_error(const nlohmann::json& reply, const std::string& context);
// A SandboxError, PolicyError or anything else thrown by a blocking operation.
ApiError error_from_exception(const std::exception& e);

}  // namespace airlock::api
