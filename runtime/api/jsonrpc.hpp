// JSON-RPC 2.0 messages, sans-IO: one line of text in, parsed requests out; results and
// errors built as text. The transports (rpc_server.hpp, mcp_server.hpp) frame messages
// as newline-delimited JSON (one message per line, as MCP's stdio transport does).
//
// Theory of operation: parse_message() takes one line. A JSON object is one call; a
// non-empty array is a batch (each element judged on its own). A call with an "id"
// (string, number or null) is a request and gets exactly one response; without one it
// is a notification and gets none, not even an error. What is refused, and how:
//   not JSON                     -32700 parse error (id null)
//   not an object, bad jsonrpc,  -32600 invalid request (id when one could be read)
//   missing or non-string method, params not an object or array
//   an empty batch               -32600, one error
// Responses a client sends us (with result/error, no method) are ignored. Parsing never
// throws; error objects carry data.kind (sandbox_error.hpp) like every API error.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace airlock::api {

inline constexpr int kParseError = -32700;
inline constexpr int kInvalidRequest = -32600;
inline constexpr int kMethodNotFound = -32601;
inline constexpr int kInvalidParams = -32602;
inline constexpr int kInternalError = -32603;

struct Call {
  std::string method;
  nlohmann::json params = nlohmann::json::object();  // object or array, as sent
  std::optional<nlohmann::json> id;                 // absent: a notification
};

// One element of a parsed message: a call to run, or an error to send back at once
// (error_id: null when the id could not be read; unset when nothing may be sent).
struct Parsed {
  std::optional<Call> call;
  std::optional<nlohmann::json> error;  // a complete response object
};

struct ParsedMessage {
  std::vector<Parsed> items;
  bool batch = false;  // the responses go back as one array
};

ParsedMessage parse_message(std::string_view line);

// {"code","message","data":{"kind",...}} under a response with id.
nlohmann::json error_response(const nlohmann::json& id, int code, const std::string& message,
                              const nlohmann::json& data);
nlohmann::json result_response(const nlohmann::json& id, nlohmann::json result);
nlohmann::json notification(const std::string& method, nlohmann::json params);

// One line of text (no newline), never throwing on invalid UTF-8 (replaced).
std::string to_line(const nlohmann::json& message);

}  // namespace airlock::api
