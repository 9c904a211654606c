// Validation and resolution of exec requests (see exec_spec.hpp).
#include "guest-init/exec_spec.hpp"

#include <charconv>
#include <csignal>
#include <map>

namespace airlock::guest {
namespace {

using protocol::Json;

constexpr std::size_t kMaxArgs = 65536;
constexpr std::int64_t kMaxTimeoutMs = 30LL * 24 * 3600 * 1000;  // a month: beyond is a typo

bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

ExecParse fail(std::string_view code, std::string message) {
  ExecParse out;
  out.error = {std::string(code), std::move(message)};
  return out;
}

std::optional<std::uint32_t> parse_u32(std::string_view s) {
  std::uint32_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

const PasswdEntry* find_by_name(const std::vector<PasswdEntry>& db, std::string_view name) {
  for (const auto& e : db)
    if (e.name == name) return &e;
  return nullptr;
}

const PasswdEntry* find_by_uid(const std::vector<PasswdEntry>& db, std::uint32_t uid) {
  for (const auto& e : db)
    if (e.uid == uid) return &e;
  return nullptr;
}

}  // namespace

std::vector<PasswdEntry> parse_passwd(std::string_view text) {
  std::vector<PasswdEntry> out;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty() || line.front() == '#') continue;
    std::vector<std::string_view> fields;
    while (true) {
      const auto colon = line.find(':');
      fields.push_back(line.substr(0, colon));
      if (colon == std::string_view::npos) break;
      line = line.substr(colon + 1);
    }
    if (fields.size() < 6 || fields[0].empty()) continue;
    const auto uid = parse_u32(fields[2]);
    const auto gid = parse_u32(fields[3]);
    if (!uid || !gid) continue;
    out.push_back({std::string(fields[0]), *uid, *gid, std::string(fields[5])});
  }
  return out;
}

ExecParse parse_exec_spec(const Json& request, const ExecDefaults& defaults) {
  ExecSpec spec;

  // Command: exactly one of argv (a non-empty array of strings) or shell (a string).
  const bool has_argv = request.contains("argv");
  const bool has_shell = request.contains("shell");
  if (has_argv == has_shell) return fail(protocol::error_code::invalid, "exactly one of argv or shell is required");
  if (has_argv) {
    auto argv = protocol::get_string_array(request, "argv");
    if (!argv || argv->empty()) return fail(protocol::error_code::invalid, "argv must be a non-empty array of strings");
    if (argv->size() > kMaxArgs) return fail(protocol::error_code::invalid, "argv too long");
    if ((*argv)[0].empty()) return fail(protocol::error_code::invalid, "argv[0] is empty");
    spec.argv = std::move(*argv);
  } else {
    auto shell = protocol::get_string(request, "shell");
    if (!shell) return fail(protocol::error_code::invalid, "shell must be a string");
    spec.argv = {"/bin/sh", "-c", std::move(*shell)};
  }
  for (const auto& arg : spec.argv)
    if (has_nul(arg)) return fail(protocol::error_code::invalid, "argument contains a NUL byte");

  // Flags with defaults; a present key of the wrong type is an error, not a silent default.
  auto flag = [&](std::string_view key, bool def, bool& out) -> bool {
    if (!request.contains(key) || request.at(std::string(key)).is_null()) {
      out = def;
      return true;
    }
    auto v = protocol::get_bool(request, key);
    if (!v) return false;
    out = *v;
    return true;
  };
  if (!flag("tty", false, spec.tty) || !flag("stdin", false, spec.stdin_open) ||
      !flag("privileged", false, spec.privileged))
    return fail(protocol::error_code::invalid, "tty, stdin and privileged must be booleans");

  auto dimension = [&](std::string_view key, std::uint16_t def, std::uint16_t& out) -> bool {
    if (!request.contains(key)) {
      out = def;
      return true;
    }
    auto v = protocol::get_int(request, key);
    if (!v || *v < 1 || *v > 65535) return false;
    out = static_cast<std::uint16_t>(*v);
    return true;
  };
  if (!dimension("rows", 24, spec.rows) || !dimension("cols", 80, spec.cols))
    return fail(protocol::error_code::invalid, "rows and cols must be 1..65535");

  if (request.contains("timeout_ms")) {
    auto t = protocol::get_int(request, "timeout_ms");
    if (!t || *t < 0 || *t > kMaxTimeoutMs) return fail(protocol::error_code::invalid, "timeout_ms out of range");
    spec.timeout_ms = *t;
  }

  // User: privileged requests default to root, everything else to the sandbox user.
  std::optional<std::uint32_t> uid;
  std::string user_name;
  if (!request.contains("user") || request.at("user").is_null()) {
    uid = spec.privileged ? 0 : defaults.sandbox_uid;
  } else if (auto name = protocol::get_string(request, "user")) {
    if (auto numeric = parse_u32(*name)) {
      uid = numeric;
    } else if (*name == "root") {
      uid = 0;
    } else if (const PasswdEntry* e = find_by_name(defaults.passwd, *name)) {
      uid = e->uid;
    } else if (*name == "airlock") {
      uid = defaults.sandbox_uid;
    } else {
      return fail(protocol::error_code::not_found, "unknown user '" + *name + "'");
    }
  } else if (auto n = protocol::get_int(request, "user"); n && *n >= 0 && *n < 4294967295LL) {
    uid = static_cast<std::uint32_t>(*n);
  } else {
    return fail(protocol::error_code::invalid, "user must be a name or a uid");
  }
  spec.uid = *uid;
  spec.gid = spec.uid;
  std::string home = spec.uid == 0 ? "/root" : defaults.workspace;
  if (const PasswdEntry* e = find_by_uid(defaults.passwd, spec.uid)) {
    spec.gid = e->gid;
    user_name = e->name;
    if (!e->home.empty() && e->home != "/nonexistent") home = e->home;
  } else {
    user_name = spec.uid == 0 ? "root" : spec.uid == defaults.sandbox_uid ? "airlock" : std::to_string(spec.uid);
  }
  spec.user = user_name;

  // Working directory.
  if (request.contains("cwd") && !request.at("cwd").is_null()) {
    auto cwd = protocol::get_string(request, "cwd");
    if (!cwd || cwd->empty() || cwd->front() != '/' || has_nul(*cwd))
      return fail(protocol::error_code::invalid, "cwd must be an absolute path");
    spec.cwd = std::move(*cwd);
  } else {
    spec.cwd = defaults.workspace;
  }

  // Environment: the base, then the request's variables over it.
  std::map<std::string, std::string> env{
      {"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
      {"HOME", home},
      {"USER", user_name},
      {"LOGNAME", user_name},
      {"LANG", "C.UTF-8"},
  };
  if (spec.tty) env["TERM"] = "xterm-256color";
  if (request.contains("env") && !request.at("env").is_null()) {
    const Json* extra = protocol::get_object(request, "env");
    if (extra == nullptr) return fail(protocol::error_code::invalid, "env must be an object of strings");
    for (auto it = extra->begin(); it != extra->end(); ++it) {
      const std::string& name = it.key();
      if (name.empty() || name.find('=') != std::string::npos || has_nul(name))
        return fail(protocol::error_code::invalid, "invalid environment variable name");
      if (!it.value().is_string()) return fail(protocol::error_code::invalid, "env values must be strings");
      const auto& value = it.value().get_ref<const std::string&>();
      if (has_nul(value)) return fail(protocol::error_code::invalid, "env value contains a NUL byte");
      env[name] = value;
    }
  }
  for (const auto& [name, value] : env) spec.env.push_back(name + "=" + value);

  ExecParse out;
  out.spec = std::move(spec);
  return out;
}

std::vector<std::string> exec_candidates(const std::string& file, std::string_view path_env) {
  if (file.find('/') != std::string::npos) return {file};
  std::vector<std::string> out;
  while (true) {
    const auto colon = path_env.find(':');
    std::string dir(path_env.substr(0, colon));
    out.push_back(dir.empty() ? file : dir + "/" + file);
    if (colon == std::string_view::npos) break;
    path_env = path_env.substr(colon + 1);
  }
  return out;
}

std::string signal_name(int signal) {
  static constexpr std::pair<int, const char*> kNames[] = {
      {SIGHUP, "SIGHUP"},   {SIGINT, "SIGINT"},       {SIGQUIT, "SIGQUIT"},   {SIGILL, "SIGILL"},
      {SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"},     {SIGBUS, "SIGBUS"},     {SIGFPE, "SIGFPE"},
      {SIGKILL, "SIGKILL"}, {SIGUSR1, "SIGUSR1"},     {SIGSEGV, "SIGSEGV"},   {SIGUSR2, "SIGUSR2"},
      {SIGPIPE, "SIGPIPE"}, {SIGALRM, "SIGALRM"},     {SIGTERM, "SIGTERM"},   {SIGSTKFLT, "SIGSTKFLT"},
      {SIGCHLD, "SIGCHLD"}, {SIGCONT, "SIGCONT"},     {SIGSTOP, "SIGSTOP"},   {SIGTSTP, "SIGTSTP"},
      {SIGTTIN, "SIGTTIN"}, {SIGTTOU, "SIGTTOU"},     {SIGURG, "SIGURG"},     {SIGXCPU, "SIGXCPU"},
      {SIGXFSZ, "SIGXFSZ"}, {SIGVTALRM, "SIGVTALRM"}, {SIGPROF, "SIGPROF"},   {SIGWINCH, "SIGWINCH"},
      {SIGIO, "SIGIO"},     {SIGPWR, "SIGPWR"},       {SIGSYS, "SIGSYS"},
  };
  for (const auto& [number, name] : kNames)
    if (number == signal) return name;
  // Real-time signals: the kernel range is 32..64; glibc reserves the first two or
  // three, so name them relative to the kernel's SIGRTMIN (32) the way the kernel does.
  if (signal >= 32 && signal <= 64) return "SIGRTMIN+" + std::to_string(signal - 32);
  return "SIG" + std::to_string(signal);
}

std::string env_value(const std::vector<std::string>& env, std::string_view name) {
  for (const auto& entry : env)
    if (entry.size() > name.size() && entry.compare(0, name.size(), name) == 0 && entry[name.size()] == '=')
      return entry.substr(name.size() + 1);
  return {};
}

}  // namespace airlock::guest
