// The MCP tools over the API session; see mcp.hpp.
#include "runtime/api/mcp.hpp"

#include "protocol/messages.hpp"
#include "runtime/api/base64.hpp"

#ifndef AIRLOCK_VERSION
#define AIRLOCK_VERSION "0.1.0"
#endif

namespace airlock::api {

using nlohmann::json;

namespace {

const char* const kVersions[] = {"2025-06-18", "2025-03-26", "2024-11-05"};

json text_result(const std::string& text, json structured = nullptr, bool is_error = false) {
  json out = {{"content", json::array({{{"type", "text"}, {"text", text}}})}, {"isError", is_error}};
  if (!structured.is_null()) out["structuredContent"] = std::move(structured);
  return out;
}

json error_result(const ApiError& e) {
  return text_result("error (" + std::string(runtime::error_kind_name(e.kind)) + "): " + e.message,
                     json{{"kind", runtime::error_kind_name(e.kind)}, {"message", e.message}}, true);
}

// Whether the bytes are UTF-8 text (well-formed sequences, no overlongs or surrogates).
bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;  // the sequence runs past the end
    for (std::size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
}

std::string decode_or_empty(const json& result, const char* key) {
  auto it = result.find(key);
  if (it == result.end() || !it->is_string()) return {};
  return base64_decode(it->get<std::string>()).value_or("");
}

json schema(json properties, json required) {
  return json{{"type", "object"}, {"properties", std::move(properties)}, {"required", std::move(required)},
              {"additionalProperties", false}};
}

const json kSandboxId = {{"type", "string"}, {"description", "The sandbox's id, as create_sandbox returned it"}};

// Which API params a tool's arguments map to.
std::variant<std::pair<std::string, json>, std::string> api_call_for(const std::string& tool, const json& a) {
  auto copy = [&](json& to, const char* from, const char* key) {
    if (auto it = a.find(from); it != a.end()) to[key] = *it;
  };
  if (tool == "create_sandbox") {
    json p = {{"auto_remove", true}};
    copy(p, "policy_file", "policy_file");
    copy(p, "config", "config");
    copy(p, "image", "image");
    copy(p, "network", "network");
    return std::pair{std::string("sandbox.create"), p};
  }
  json p = json::object();
  copy(p, "sandbox_id", "id");
  if (tool == "exec") {
    if (auto it = a.find("command"); it != a.end()) {
      if (it->is_array()) {
        p["argv"] = *it;
      } else {
        p["command"] = *it;
      }
    }
    copy(p, "cwd", "cwd");
    copy(p, "env", "env");
    copy(p, "timeout_seconds", "timeout_seconds");
    copy(p, "user", "user");
    if (auto it = a.find("stdin"); it != a.end()) {
      if (!it->is_string()) return std::string("\"stdin\" must be a string");
      p["stdin"] = base64_encode(it->get<std::string>());
    }
    return std::pair{std::string("exec.run"), p};
  }
  if (tool == "read_file" || tool == "list_files") {
    copy(p, "path", "path");
    return std::pair{std::string(tool == "read_file" ? "file.read" : "file.list"), p};
  }
  if (tool == "write_file") {
    copy(p, "path", "path");
    copy(p, "mode", "mode");
    auto it = a.find("content");
    if (it == a.end() || !it->is_string()) return std::string("\"content\" must be a string");
    p["data"] = base64_encode(it->get<std::string>());
    return std::pair{std::string("file.write"), p};
  }
  if (tool == "get_events") {
    copy(p, "from_seq", "from_seq");
    p["follow"] = false;
    return std::pair{std::string("events.subscribe"), p};
  }
  if (tool == "remove_sandbox") return std::pair{std::string("sandbox.remove"), p};
  return std::string("no tool \"" + tool.substr(0, 64) + "\" (see tools/list)");
}

// The API result as the tool's answer: text for the assistant, the JSON as structured content.
json shape(const std::string& tool, const json& args, const json& r) {
  if (tool == "create_sandbox") {
    return text_result("Created sandbox " + r.value("id", std::string()) + " (booted in " +
                           std::to_string(r.value("boot_ms", 0)) + " ms). Pass it as sandbox_id to the other tools.",
                       r);
  }
  if (tool == "exec") {
    const std::string out = decode_or_empty(r, "stdout");
    const std::string err = decode_or_empty(r, "stderr");
    std::string text = "exit code " + std::to_string(r.value("exit_code", -1));
    if (r.contains("signal_name") && r["signal_name"].is_string()) text += " (" + r["signal_name"].get<std::string>() + ")";
    text += "\n--- stdout ---\n" + out + "\n--- stderr ---\n" + err;
    json structured = {{"exit_code", r.value("exit_code", -1)}, {"stdout", out}, {"stderr", err},
                       {"duration_ms", r.value("duration_ms", 0)}};
    return json::parse(text_result(text, structured).dump(-1, ' ', false, json::error_handler_t::replace));
  }
  if (tool == "read_file") {
    const std::string data = decode_or_empty(r, "data");
    if (valid_utf8(data)) return text_result(data, json{{"size", data.size()}, {"encoding", "utf-8"}});
    return text_result("(binary file, " + std::to_string(data.size()) + " bytes, base64)\n" + base64_encode(data),
                       json{{"size", data.size()}, {"encoding", "base64"}});
  }
  if (tool == "write_file") {
    return text_result("Wrote " + std::to_string(r.value("size", 0)) + " bytes to " + args.value("path", std::string()), r);
  }
  if (tool == "list_files") {
    std::string text;
    for (const auto& e : r) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(e.value("mode", 0)));
      text += std::string(e.value("is_dir", false) ? "d " : "- ") + mode + " " + std::to_string(e.value("size", 0)) +
              " " + e.value("name", std::string()) + "\n";
    }
    return text_result(text.empty() ? "(empty)" : text, json{{"entries", r}});
  }
  if (tool == "remove_sandbox") return text_result("Removed sandbox " + r.value("id", std::string()), r);
  return text_result(r.dump());
}

}  // namespace

json McpHandler::tool_list() {
  const json path = {{"type", "string"}, {"description", "An absolute path in the sandbox, e.g. /workspace/main.py"}};
  return json::array({
      {{"name", "create_sandbox"},
       {"description",
        "Create and boot a sandbox (a microVM whose network is policed: only allowed hosts are reachable). "
        "Returns its sandbox_id."},
       {"inputSchema",
        schema({{"policy_file", {{"type", "string"}, {"description", "A policy file (YAML) on the host"}}},
                {"config", {{"type", "object"}, {"description", "The policy as JSON (image, resources, network, vfs, env)"}}},
                {"image", {{"type", "string"}}},
                {"network", {{"type", "boolean"}, {"description", "false: no network interface at all"}}}},
               json::array())}},
      {{"name", "exec"},
       {"description", "Run a command in a sandbox and return its exit code, stdout and stderr."},
       {"inputSchema",
        schema({{"sandbox_id", kSandboxId},
                {"command",
                 {{"description", "A shell command line (string) or an argv list"},
                  {"anyOf", json::array({{{"type", "string"}}, {{"type", "array"}, {"items", {{"type", "string"}}}}})}}},
                {"cwd", {{"type", "string"}}},
                {"env", {{"type", "object"}, {"additionalProperties", {{"type", "string"}}}}},
                {"stdin", {{"type", "string"}}},
                {"user", {{"type", "string"}}},
                {"timeout_seconds", {{"type", "number"}}}},
               json::array({"sandbox_id", "command"}))}},
      {{"name", "read_file"},
       {"description", "Read a file from a sandbox."},
       {"inputSchema", schema({{"sandbox_id", kSandboxId}, {"path", path}}, json::array({"sandbox_id", "path"}))}},
      {{"name", "write_file"},
       {"description", "Write a text file in a sandbox (parent folders are created)."},
       {"inputSchema", schema({{"sandbox_id", kSandboxId}, {"path", path}, {"content", {{"type", "string"}}},
                               {"mode", {{"type", "integer"}, {"description", "Permission bits, e.g. 420 (0644)"}}}},
                              json::array({"sandbox_id", "path", "content"}))}},
      {{"name", "list_files"},
       {"description", "List a folder in a sandbox."},
       {"inputSchema", schema({{"sandbox_id", kSandboxId}, {"path", path}}, json::array({"sandbox_id", "path"}))}},
      {{"name", "get_events"},
       {"description",
        "The sandbox's audit events so far (network requests with blocked ones and their reason, DNS, execs, "
        "file changes), one JSON object per line."},
       {"inputSchema", schema({{"sandbox_id", kSandboxId},
                               {"from_seq", {{"type", "integer"}, {"description", "Only events with this seq or later"}}},
                               {"type", {{"type", "string"}, {"description", "Only this type: network, dns, exec, file, lifecycle"}}}},
                              json::array({"sandbox_id"}))}},
      {{"name", "remove_sandbox"},
       {"description", "Stop and delete a sandbox."},
       {"inputSchema", schema({{"sandbox_id", kSandboxId}}, json::array({"sandbox_id"}))}},
  });
}

void McpHandler::handle(const Call& call, std::function<void(ApiResult)> reply) {
  const json& params = call.params;
  if (call.method == "initialize") {
    std::string version = kVersions[0];
    if (auto v = protocol::get_string(params, "protocolVersion")) {
      for (const char* known : kVersions) {
        if (*v == known) version = known;
      }
    }
    reply(json{{"protocolVersion", version},
               {"capabilities", {{"tools", {{"listChanged", false}}}}},
               {"serverInfo", {{"name", "airlock"}, {"version", AIRLOCK_VERSION}}},
               {"instructions",
                "Run code in policed microVM sandboxes: create_sandbox, then exec, write_file, read_file, list_files; "
                "get_events shows what the sandbox did on the network (blocked requests included); remove_sandbox when done."}});
    return;
  }
  if (call.method == "notifications/initialized" || call.method == "notifications/cancelled") return reply(json::object());
  if (call.method == "ping") return reply(json::object());
  if (call.method == "tools/list") return reply(json{{"tools", tool_list()}});
  if (call.method == "tools/call") {
    const auto name = protocol::get_string(params, "name");
    if (!name) return reply(invalid_params("tools/call needs a tool \"name\""));
    json args = json::object();
    if (auto it = params.find("arguments"); params.is_object() && it != params.end() && !it->is_null()) {
      if (!it->is_object()) return reply(invalid_params("tools/call \"arguments\" must be an object"));
      args = *it;
    }
    return call_tool(*name, args, std::move(reply));
  }
  reply(ApiError{ErrorKind::invalid_config, "no MCP method \"" + call.method.substr(0, 64) + "\"", "method_not_found",
                 nullptr, kMethodNotFound});
}

void McpHandler::call_tool(const std::string& name, const json& args, std::function<void(ApiResult)> reply) {
  auto mapped = api_call_for(name, args);
  if (auto* why = std::get_if<std::string>(&mapped)) {
    if (why->rfind("no tool", 0) == 0) return reply(invalid_params(*why));
    return reply(text_result(*why, nullptr, true));
  }
  auto [method, api_params] = std::get<std::pair<std::string, json>>(mapped);
  if (name == "get_events") {
    const std::string type = protocol::get_string(args, "type").value_or("");
    session_->call(method, api_params, [this, type, reply](ApiResult result) mutable {
      if (auto* e = std::get_if<ApiError>(&result)) return reply(error_result(*e));
      const std::string sub = std::get<json>(result).value("subscription_id", std::string());
      collecting_[sub] = Collect{json::array(), type, std::move(reply)};
    });
    return;
  }
  session_->call(method, api_params, [name, args, reply](ApiResult result) {
    if (auto* e = std::get_if<ApiError>(&result)) return reply(error_result(*e));
    reply(shape(name, args, std::get<json>(result)));
  });
}

void McpHandler::on_notification(const std::string& method, const json& params) {
  const std::string sub = protocol::get_string(params, "subscription_id").value_or("");
  auto it = collecting_.find(sub);
  if (it == collecting_.end()) return;
  if (method == "event") {
    auto e = params.find("event");
    if (e != params.end() && e->is_object() && (it->second.type.empty() || e->value("type", "") == it->second.type)) {
      it->second.events.push_back(*e);
    }
    return;
  }
  if (method != "events.end") return;
  Collect done = std::move(it->second);
  collecting_.erase(it);
  std::string text;
  for (const auto& e : done.events) text += e.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  done.reply(text_result(text.empty() ? "(no events)" : text, json{{"events", done.events}}));
}

}  // namespace airlock::api
