// JSON-RPC 2.0 codec; see jsonrpc.hpp.
#include "runtime/api/jsonrpc.hpp"

namespace airlock::api {

namespace {

using nlohmann::json;

json kind_data(const char* kind, const char* code) { return json{{"kind", kind}, {"code", code}}; }

Parsed judge(const json& m) {
  Parsed out;
  auto invalid = [&](const json& id, const std::string& why) {
    out.error = error_response(id, kInvalidRequest, why, kind_data("invalid_config", "invalid_request"));
    return out;
  };
  if (!m.is_object()) return invalid(nullptr, "a JSON-RPC message must be an object");
  // A response from the client (we never send requests): nothing to do, nothing to say.
  if (!m.contains("method") && (m.contains("result") || m.contains("error"))) return out;
  std::optional<json> id;
  if (auto it = m.find("id"); it != m.end()) {
    if (it->is_string() || it->is_number() || it->is_null()) {
      id = *it;
    } else {
      return invalid(nullptr, "id must be a string, a number or null");
    }
  }
  const json reply_id = id ? *id : json(nullptr);
  auto version = m.find("jsonrpc");
  if (version == m.end() || !version->is_string() || version->get_ref<const std::string&>() != "2.0") {
    return invalid(reply_id, "\"jsonrpc\" must be \"2.0\"");
  }
  auto method = m.find("method");
  if (method == m.end() || !method->is_string()) {
    return invalid(reply_id, "\"method\" must be a string");
  }
  Call call;
  call.method = method->get<std::string>();
  if (auto p = m.find("params"); p != m.end()) {
    if (!p->is_object() && !p->is_array()) {
      return invalid(reply_id, "\"params\" must be an object or an array");
    }
    call.params = *p;
  }
  call.id = std::move(id);
  out.call = std::move(call);
  return out;
}

}  // namespace

ParsedMessage parse_message(std::string_view line) {
  ParsedMessage out;
  json m = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (m.is_discarded()) {
    Parsed p;
    p.error = error_response(nullptr, kParseError, "not valid JSON", kind_data("invalid_config", "parse_error"));
    out.items.push_back(std::move(p));
    return out;
  }
  if (m.is_array()) {
    if (m.empty()) {
      Parsed p;
      p.error = error_response(nullptr, kInvalidRequest, "an empty batch", kind_data("invalid_config", "invalid_request"));
      out.items.push_back(std::move(p));
      return out;
    }
    out.batch = true;
    for (const json& element : m) out.items.push_back(judge(element));
    return out;
  }
  out.items.push_back(judge(m));
  return out;
}

json error_response(const json& id, int code, const std::string& message, const json& data) {
  json error = {{"code", code}, {"message", message}};
  if (!data.is_null()) error["data"] = data;
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"error", std::move(error)}};
}

json result_response(const json& id, json result) {
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

json notification(const std::string& method, json params) {
  return json{{"jsonrpc", "2.0"}, {"method", method}, {"params", std::move(params)}};
}

std::string to_line(const json& message) {
  return message.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace airlock::api
