// What an exec request asks for, validated and resolved before anything is forked.
//
// parse_exec_spec() turns the host's {"op":"exec",...} JSON into an ExecSpec: the final
// argv (a "shell" string becomes /bin/sh -c), the merged environment, the user's ids and
// home, the working directory and the terminal and timeout settings. It refuses (with a
// message, error code "invalid" or "not_found") what exec could not honour: an empty
// argv, NUL bytes, env names with '=', an unknown user. Users are looked up in
// /etc/passwd text given by the caller (static binaries cannot use NSS), with fallbacks
// so a rootfs without the "airlock" user still works: root is uid 0, "airlock" is the
// configured sandbox uid, and a user with no passwd entry gets HOME=<workspace>.
// Pure: no system calls, unit-tested.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "protocol/messages.hpp"

namespace airlock::guest {

struct PasswdEntry {
  std::string name;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::string home;
};

// Parses /etc/passwd text; malformed lines are skipped.
std::vector<PasswdEntry> parse_passwd(std::string_view text);

struct ExecDefaults {
  std::string workspace = "/workspace";
  std::uint32_t sandbox_uid = 1000;
  std::vector<PasswdEntry> passwd;
};

struct ExecSpec {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // "NAME=value"
  std::string cwd;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::string user;
  bool tty = false;
  bool stdin_open = false;
  bool privileged = false;
  std::uint16_t rows = 24;
  std::uint16_t cols = 80;
  std::int64_t timeout_ms = 0;  // 0 = none
};

struct ExecError {
  std::string code;  // protocol::error_code
  std::string message;
};

// Either a spec or an error to send back.
struct ExecParse {
  std::optional<ExecSpec> spec;
  ExecError error;
};

ExecParse parse_exec_spec(const protocol::Json& request, const ExecDefaults& defaults);

// Where execve should look for argv[0]: itself if it has a '/', else each PATH entry
// (an empty entry means the current directory, as POSIX says).
std::vector<std::string> exec_candidates(const std::string& file, std::string_view path_env);

// "SIGKILL" for 9; "SIGRTMIN+3" for real-time signals; "SIG<n>" when unknown.
std::string signal_name(int signal);

// The value of NAME in an env list ("" when absent).
std::string env_value(const std::vector<std::string>& env, std::string_view name);

}  // namespace airlock::guest
