// Method params; see methods.hpp.
#include "runtime/api/methods.hpp"

#include <algorithm>
#include <charconv>

#include "runtime/api/jsonrpc.hpp"
#include "runtime/api/params.hpp"

namespace airlock::api {

namespace {

using nlohmann::json;

constexpr std::int64_t kMaxTimeoutSeconds = 7 * 24 * 3600;

std::variant<MethodParams, ApiError> done(ParamReader& r, MethodParams p) {
  if (!r.ok()) return r.error();
  return p;
}

std::variant<MethodParams, ApiError> create(const json& params) {
  ParamReader r(params, {"config", "policy_file", "base_dir", "image", "secrets", "network", "hostname", "add_hosts",
                         "auto_remove"});
  CreateParams p;
  if (const json* c = r.object("config")) p.config = *c;
  p.policy_file = r.string("policy_file").value_or("");
  p.base_dir = r.string("base_dir").value_or("");
  if (!p.base_dir.empty() && p.base_dir.front() != '/') r.fail("\"base_dir\" must be an absolute path");
  p.image = r.string("image").value_or("");
  if (const json* s = r.object("secrets")) {
    for (const auto& [name, value] : s->items()) p.secrets[name] = value;
  }
  p.network = r.boolean("network", true);
  p.hostname = r.string("hostname").value_or("");
  p.add_hosts = r.string_list("add_hosts").value_or(std::vector<std::string>{});
  p.auto_remove = r.boolean("auto_remove", false);
  return done(r, p);
}

std::variant<MethodParams, ApiError> exec(const json& params, bool streaming) {
  ParamReader r(params, {"id", "argv", "command", "env", "cwd", "user", "tty", "rows", "cols", "stdin",
                         "timeout_seconds", "privileged"});
  ExecParams p;
  p.id = r.required_string("id");
  p.argv = r.string_list("argv").value_or(std::vector<std::string>{});
  p.command = r.string("command");
  if (r.ok() && p.argv.empty() == !p.command.has_value()) {
    r.fail("give exactly one of \"argv\" (a non-empty list) or \"command\" (a shell string)");
  }
  p.env = r.string_map("env").value_or(std::map<std::string, std::string>{});
  p.cwd = r.string("cwd").value_or("");
  if (!p.cwd.empty() && p.cwd.front() != '/') r.fail("\"cwd\" must be an absolute guest path");
  if (r.has("user") && params.at("user").is_number_integer()) {
    p.user = std::to_string(r.integer("user", 0, 4294967294).value_or(0));
  } else {
    p.user = r.string("user").value_or("");
  }
  p.tty = r.boolean("tty", false);
  p.rows = static_cast<std::uint16_t>(r.integer("rows", 1, 65535).value_or(24));
  p.cols = static_cast<std::uint16_t>(r.integer("cols", 1, 65535).value_or(80));
  if (r.has("stdin")) {
    if (params.at("stdin").is_boolean()) {
      if (!streaming && params.at("stdin").get<bool>()) {
        r.fail("exec.run takes \"stdin\" as base64 bytes (exec.start streams with stdin: true)");
      }
      p.stdin_open = r.boolean("stdin", false);
    } else {
      p.stdin_data = r.bytes("stdin");
    }
  }
  if (auto t = r.number("timeout_seconds", 0, kMaxTimeoutSeconds)) p.timeout_ms = static_cast<std::uint64_t>(*t * 1000);
  p.privileged = r.boolean("privileged", false);
  return done(r, p);
}

std::variant<MethodParams, ApiError> file_path(const json& params, bool with_follow) {
  ParamReader r(params, with_follow ? std::initializer_list<const char*>{"id", "path", "follow"}
                                    : std::initializer_list<const char*>{"id", "path"});
  FilePathParams p;
  p.id = r.required_string("id");
  p.path = r.guest_path("path");
  if (with_follow) p.follow = r.boolean("follow", true);
  return done(r, p);
}

std::variant<MethodParams, ApiError> transfer(const json& params, bool upload) {
  ParamReader r(params, {"id", "src", "dst"});
  TransferParams p;
  p.id = r.required_string("id");
  if (upload) {
    p.src = r.required_string("src");
    p.dst = r.guest_path("dst");
  } else {
    p.src = r.guest_path("src");
    p.dst = r.required_string("dst");
  }
  const std::string& host = upload ? p.src : p.dst;
  if (r.ok() && (host.empty() || host.front() != '/')) {
    r.fail(std::string("\"") + (upload ? "src" : "dst") + "\" must be an absolute host path");
  }
  return done(r, p);
}

}  // namespace

const std::vector<std::string>& method_names() {
  static const std::vector<std::string> names = {
      "sandbox.create", "sandbox.list",  "sandbox.get",   "sandbox.stop",      "sandbox.start",
      "sandbox.remove", "exec.start",    "exec.stdin",    "exec.resize",       "exec.signal",
      "exec.run",       "file.write",    "file.read",     "file.list",         "file.stat",
      "file.mkdir",     "file.remove",   "file.upload",   "file.download",     "events.subscribe",
      "events.unsubscribe", "policy.get", "policy.update"};
  return names;
}

int parse_signal(const json& value) {
  if (value.is_number_integer()) {
    const auto n = value.get<std::int64_t>();
    return n >= 1 && n <= 64 ? static_cast<int>(n) : 0;
  }
  if (!value.is_string()) return 0;
  std::string name = value.get<std::string>();
  int number = 0;
  const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), number);
  if (ec == std::errc() && end == name.data() + name.size()) return number >= 1 && number <= 64 ? number : 0;
  if (name.rfind("SIG", 0) == 0) name = name.substr(3);
  static const std::map<std::string, int> names = {
      {"HUP", 1},  {"INT", 2},   {"QUIT", 3},  {"ILL", 4},   {"TRAP", 5},  {"ABRT", 6},  {"BUS", 7},
      {"FPE", 8},  {"KILL", 9},  {"USR1", 10}, {"SEGV", 11}, {"USR2", 12}, {"PIPE", 13}, {"ALRM", 14},
      {"TERM", 15}, {"CHLD", 17}, {"CONT", 18}, {"STOP", 19}, {"TSTP", 20}, {"TTIN", 21}, {"TTOU", 22},
      {"URG", 23}, {"XCPU", 24}, {"XFSZ", 25}, {"VTALRM", 26}, {"PROF", 27}, {"WINCH", 28}, {"IO", 29},
      {"PWR", 30}, {"SYS", 31}};
  auto it = names.find(name);
  return it == names.end() ? 0 : it->second;
}

std::variant<MethodParams, ApiError> parse_params(const std::string& method, const json& params) {
  if (method == "sandbox.create") return create(params);
  if (method == "sandbox.list") {
    ParamReader r(params, {});
    return done(r, std::monostate{});
  }
  if (method == "sandbox.get" || method == "sandbox.stop" || method == "sandbox.remove" || method == "policy.get") {
    ParamReader r(params, {"id"});
    return done(r, SandboxId{r.required_string("id")});
  }
  if (method == "policy.update") {
    ParamReader r(params, {"id", "config"});
    return done(r, SandboxId{r.required_string("id")});
  }
  if (method == "sandbox.start") {
    ParamReader r(params, {"id", "secrets"});
    StartParams p;
    p.id = r.required_string("id");
    p.secrets = r.string_map("secrets").value_or(std::map<std::string, std::string>{});
    return done(r, p);
  }
  if (method == "exec.start") return exec(params, true);
  if (method == "exec.run") return exec(params, false);
  if (method == "exec.stdin") {
    ParamReader r(params, {"exec_id", "data", "eof"});
    ExecStdinParams p;
    p.exec_id = r.required_string("exec_id");
    p.data = r.bytes("data").value_or("");
    p.eof = r.boolean("eof", false);
    return done(r, p);
  }
  if (method == "exec.resize") {
    ParamReader r(params, {"exec_id", "rows", "cols"});
    ExecResizeParams p;
    p.exec_id = r.required_string("exec_id");
    const auto rows = r.integer("rows", 1, 65535);
    const auto cols = r.integer("cols", 1, 65535);
    if (r.ok() && (!rows || !cols)) r.fail("exec.resize needs \"rows\" and \"cols\"");
    p.rows = static_cast<std::uint16_t>(rows.value_or(24));
    p.cols = static_cast<std::uint16_t>(cols.value_or(80));
    return done(r, p);
  }
  if (method == "exec.signal") {
    ParamReader r(params, {"exec_id", "signal"});
    ExecSignalParams p;
    p.exec_id = r.required_string("exec_id");
    if (r.ok()) {
      p.signal = params.contains("signal") ? parse_signal(params.at("signal")) : 15;
      if (p.signal == 0) r.fail("\"signal\" must be a signal number (1..64) or name (\"SIGTERM\", \"KILL\")");
    }
    return done(r, p);
  }
  if (method == "file.write") {
    ParamReader r(params, {"id", "path", "data", "mode", "parents"});
    FileWriteParams p;
    p.id = r.required_string("id");
    p.path = r.guest_path("path");
    if (r.ok() && !r.has("data")) r.fail("missing parameter \"data\" (base64; \"\" for an empty file)");
    p.data = r.bytes("data").value_or("");
    p.mode = static_cast<std::uint32_t>(r.integer("mode", 0, 07777).value_or(0644));
    p.parents = r.boolean("parents", true);
    return done(r, p);
  }
  if (method == "file.read" || method == "file.list") return file_path(params, false);
  if (method == "file.stat") return file_path(params, true);
  if (method == "file.mkdir") {
    ParamReader r(params, {"id", "path", "mode", "parents"});
    FileMkdirParams p;
    p.id = r.required_string("id");
    p.path = r.guest_path("path");
    p.mode = static_cast<std::uint32_t>(r.integer("mode", 0, 07777).value_or(0755));
    p.parents = r.boolean("parents", true);
    return done(r, p);
  }
  if (method == "file.remove") {
    ParamReader r(params, {"id", "path", "recursive"});
    FileRemoveParams p;
    p.id = r.required_string("id");
    p.path = r.guest_path("path");
    p.recursive = r.boolean("recursive", false);
    return done(r, p);
  }
  if (method == "file.upload") return transfer(params, true);
  if (method == "file.download") return transfer(params, false);
  if (method == "events.subscribe") {
    ParamReader r(params, {"id", "from_seq", "follow"});
    SubscribeParams p;
    p.id = r.required_string("id");
    p.from_seq = static_cast<std::uint64_t>(r.integer("from_seq", 0, INT64_MAX).value_or(0));
    p.follow = r.boolean("follow", true);
    return done(r, p);
  }
  if (method == "events.unsubscribe") {
    ParamReader r(params, {"subscription_id"});
    return done(r, UnsubscribeParams{r.required_string("subscription_id")});
  }
  return ApiError{ErrorKind::invalid_config, "no method \"" + method.substr(0, 64) + "\" (see docs/api.md)",
                  "method_not_found", nullptr, kMethodNotFound};
}

}  // namespace airlock::api
