// `airlock mcp`: the Model Context Protocol's server side, over the same JSON-RPC
// framing, so an assistant can run code in a policed sandbox.
//
// Speaks initialize (protocol versions 2024-11-05, 2025-03-26 and 2025-06-18; another
// version asked for gets the newest), notifications/initialized, ping, tools/list and
// tools/call. Each tool is a thin call to the API session (session.hpp):
//   create_sandbox  -> sandbox.create (auto_remove: sandboxes go when the server does)
//   exec            -> exec.run          read_file  -> file.read
//   write_file      -> file.write        list_files -> file.list
//   get_events      -> the sandbox's audit events (events.subscribe, follow false)
//   remove_sandbox  -> sandbox.remove
// A tool that fails (an unknown sandbox, a refused path) answers with isError and the
// API's message and kind, as MCP asks; an unknown tool or malformed arguments are
// JSON-RPC errors (-32602).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/api/jsonrpc.hpp"
#include "runtime/api/session.hpp"

namespace airlock::api {

class McpHandler {
 public:
  explicit McpHandler(std::shared_ptr<Session> session) : session_(std::move(session)) {}

  void handle(const Call& call, std::function<void(ApiResult)> reply);
  // Event notifications of the session (get_events collects them).
  void on_notification(const std::string& method, const nlohmann::json& params);

  static nlohmann::json tool_list();

 private:
  void call_tool(const std::string& name, const nlohmann::json& args, std::function<void(ApiResult)> reply);

  struct Collect {
    nlohmann::json events = nlohmann::json::array();
    std::string type;  // only events of this type ("" = all)
    std::function<void(ApiResult)> reply;
  };
  std::shared_ptr<Session> session_;
  std::map<std::string, Collect> collecting_;  // by subscription id
};

}  // namespace airlock::api
