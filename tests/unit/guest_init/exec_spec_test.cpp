// Exec request validation, users, environment and PATH search.
#include <doctest/doctest.h>

#include <algorithm>
#include <csignal>

#include "guest-init/exec_spec.hpp"

using namespace airlock::guest;
using airlock::protocol::Json;

namespace {

ExecDefaults defaults() {
  ExecDefaults d;
  d.passwd = parse_passwd(
      "root:x:0:0:root:/root:/bin/bash\n"
      "# comment\n"
      "broken line\n"
      "airlock:x:1000:1000::/home/airlock:/bin/bash\n"
      "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
  return d;
}

ExecSpec ok(const Json& request, const ExecDefaults& d = defaults()) {
  ExecParse p = parse_exec_spec(request, d);
  REQUIRE_MESSAGE(p.spec.has_value(), p.error.message);
  return *p.spec;
}

std::string error_of(const Json& request) {
  ExecParse p = parse_exec_spec(request, defaults());
  REQUIRE_FALSE(p.spec.has_value());
  return p.error.code;
}

bool has(const std::vector<std::string>& env, const std::string& entry) {
  return std::find(env.begin(), env.end(), entry) != env.end();
}

}  // namespace

TEST_CASE("parse_passwd skips malformed lines") {
  const auto db = parse_passwd("a:x:1:2::/h:/bin/sh\nbad\nb:x:notanumber:1::/:/\n");
  REQUIRE(db.size() == 1);
  CHECK(db[0].name == "a");
  CHECK(db[0].gid == 2);
  CHECK(db[0].home == "/h");
}

TEST_CASE("argv request with defaults runs as the sandbox user in the workspace") {
  const ExecSpec s = ok(Json{{"op", "exec"}, {"argv", {"ls", "-l"}}});
  CHECK(s.argv == std::vector<std::string>{"ls", "-l"});
  CHECK(s.uid == 1000);
  CHECK(s.gid == 1000);
  CHECK(s.cwd == "/workspace");
  CHECK_FALSE(s.tty);
  CHECK_FALSE(s.stdin_open);
  CHECK_FALSE(s.privileged);
  CHECK(s.timeout_ms == 0);
  CHECK(has(s.env, "HOME=/home/airlock"));
  CHECK(has(s.env, "USER=airlock"));
  CHECK(has(s.env, "LANG=C.UTF-8"));
  CHECK(has(s.env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
  CHECK(env_value(s.env, "TERM").empty());
}

TEST_CASE("shell request becomes /bin/sh -c") {
  const ExecSpec s = ok(Json{{"op", "exec"}, {"shell", "echo hi | wc"}});
  CHECK(s.argv == std::vector<std::string>{"/bin/sh", "-c", "echo hi | wc"});
}

TEST_CASE("env overrides the base and tty adds TERM") {
  const ExecSpec s = ok(Json{{"op", "exec"}, {"argv", {"env"}}, {"tty", true}, {"env", {{"LANG", "de_DE.UTF-8"}, {"X", "1"}}}});
  CHECK(has(s.env, "LANG=de_DE.UTF-8"));
  CHECK(has(s.env, "X=1"));
  CHECK(has(s.env, "TERM=xterm-256color"));
  CHECK_FALSE(has(s.env, "LANG=C.UTF-8"));
}

TEST_CASE("users: root, names, numbers, privileged default, missing passwd") {
  CHECK(ok(Json{{"op", "exec"}, {"argv", {"id"}}, {"user", "root"}}).uid == 0);
  CHECK(ok(Json{{"op", "exec"}, {"argv", {"id"}}, {"user", "nobody"}}).uid == 65534);
  CHECK(ok(Json{{"op", "exec"}, {"argv", {"id"}}, {"user", 1000}}).uid == 1000);
  CHECK(ok(Json{{"op", "exec"}, {"argv", {"id"}}, {"user", "1000"}}).uid == 1000);
  CHECK(ok(Json{{"op", "exec"}, {"argv", {"id"}}, {"privileged", true}}).uid == 0);
  // nobody's home is /nonexistent: fall back to the workspace.
  CHECK(has(ok(Json{{"op", "exec"}, {"argv", {"id"}}, {"user", "nobody"}}).env, "HOME=/workspace"));
  // A rootfs without the airlock user still works, with HOME=/workspace.
  ExecDefaults bare;
  const ExecSpec s = ok(Json{{"op", "exec"}, {"argv", {"id"}}}, bare);
  CHECK(s.uid == 1000);
  CHECK(s.gid == 1000);
  CHECK(has(s.env, "HOME=/workspace"));
  CHECK(has(s.env, "USER=airlock"));
  CHECK(error_of(Json{{"op", "exec"}, {"argv", {"id"}}, {"user", "mallory"}}) == "not_found");
  CHECK(error_of(Json{{"op", "exec"}, {"argv", {"id"}}, {"user", true}}) == "invalid");
  CHECK(error_of(Json{{"op", "exec"}, {"argv", {"id"}}, {"user", -1}}) == "invalid");
}

TEST_CASE("invalid requests are refused") {
  CHECK(error_of(Json{{"op", "exec"}}) == "invalid");
  CHECK(error_of(Json{{"op", "exec"}, {"argv", Json::array()}}) == "invalid");
  CHECK(error_of(Json{{"op", "exec"}, {"argv", {"a", 1}}}) == "invalid");
  CHECK(error_of(Json{{"op", "exec"}, {"argv", {""}}}) == "invalid");
  CHECK(error_of(Json{{"op", "exec"}, {"argv", {"ls"}}, {"shell", "ls"}}) == "invalid");
  CHECK(error_of(Json{{"op", "exec"}, {"argv", {std::string("a\0b", 3)}}}) == "invalid");
  CHECK(error_of(Json{{"op", "exec"}, {"argv", {"ls"}}, {"env", {{"A=B", "1"}}}}) == "invalid");
  CHECK(error_of(Json{{"op", "exec"}, {"argv", {"ls"}}, {"env", {{"A", 1}}}}) == "invalid");
  CHECK(error_of(Json{{"op", "exec"}, {"argv", {"ls"}}, {"env", "A=1"}}) == "invalid");
  CHECK(error_of(Json{{"op", "exec"}, {"argv", {"ls"}}, {"cwd", "relative"}}) == "invalid");
  CHECK(error_of(Json{{"op", "exec"}, {"argv", {"ls"}}, {"tty", "yes"}}) == "invalid");
  CHECK(error_of(Json{{"op", "exec"}, {"argv", {"ls"}}, {"rows", 0}}) == "invalid");
  CHECK(error_of(Json{{"op", "exec"}, {"argv", {"ls"}}, {"cols", 70000}}) == "invalid");
  CHECK(error_of(Json{{"op", "exec"}, {"argv", {"ls"}}, {"timeout_ms", -1}}) == "invalid");
  CHECK(error_of(Json{{"op", "exec"}, {"argv", {"ls"}}, {"timeout_ms", "10"}}) == "invalid");
}

TEST_CASE("terminal size and timeout are carried") {
  const ExecSpec s = ok(Json{{"op", "exec"}, {"argv", {"top"}}, {"tty", true}, {"rows", 50}, {"cols", 132}, {"timeout_ms", 1500}});
  CHECK(s.rows == 50);
  CHECK(s.cols == 132);
  CHECK(s.timeout_ms == 1500);
}

TEST_CASE("exec_candidates searches PATH like execvp") {
  CHECK(exec_candidates("/bin/ls", "/usr/bin") == std::vector<std::string>{"/bin/ls"});
  CHECK(exec_candidates("./x", "/usr/bin") == std::vector<std::string>{"./x"});
  CHECK(exec_candidates("ls", "/usr/local/bin:/bin") == std::vector<std::string>{"/usr/local/bin/ls", "/bin/ls"});
  CHECK(exec_candidates("ls", "/a::/b") == std::vector<std::string>{"/a/ls", "ls", "/b/ls"});
}

TEST_CASE("signal names") {
  CHECK(signal_name(SIGKILL) == "SIGKILL");
  CHECK(signal_name(SIGTERM) == "SIGTERM");
  CHECK(signal_name(SIGSEGV) == "SIGSEGV");
  CHECK(signal_name(34) == "SIGRTMIN+2");
  CHECK(signal_name(99) == "SIG99");
}
