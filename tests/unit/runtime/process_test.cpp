// run_command: output capture, exit codes, and the hard deadline.
#include <doctest/doctest.h>

#include "runtime/vm/process.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <sstream>

using namespace airlock::runtime;
using namespace std::chrono_literals;

TEST_CASE("run_command captures output and exit code") {
  auto r = run_command({"/bin/sh", "-c", "echo out; echo err >&2; exit 4"}, 5s);
  REQUIRE(r.ok());
  CHECK(r->exit_code == 4);
  CHECK_FALSE(r->timed_out);
  CHECK(r->output.find("out") != std::string::npos);
  CHECK(r->output.find("err") != std::string::npos);
}

TEST_CASE("run_command kills at the deadline") {
  const auto start = std::chrono::steady_clock::now();
  auto r = run_command({"/bin/sleep", "30"}, 300ms);
  REQUIRE(r.ok());
  CHECK(r->timed_out);
  CHECK(std::chrono::steady_clock::now() - start < 5s);
}

TEST_CASE("run_command: a missing program exits 127") {
  auto r = run_command({"/nonexistent/program"}, 5s);
  REQUIRE(r.ok());
  CHECK(r->exit_code == 127);
  CHECK(r->output.find("/nonexistent/program") != std::string::npos);
}

TEST_CASE("find_executable") {
  CHECK(find_executable("sh").find("/sh") != std::string::npos);
  CHECK(find_executable("/x/y") == "/x/y");
}

TEST_CASE("spawn in a user namespace: the caller is the inside uid, nobody else is mapped") {
  if (!airlock::runtime::user_namespaces_work()) {
    MESSAGE("user namespaces are not available here");
    return;
  }
  int out[2];
  REQUIRE(pipe(out) == 0);
  SpawnOptions options;
  options.stdout_fd = out[1];
  options.user_namespace = UserNamespace{1000, 1000};
  auto pid = spawn({"/bin/sh", "-c", "id -u; id -g; cat /proc/self/uid_map"}, options);
  close(out[1]);
  REQUIRE(pid.ok());
  std::string text;
  char buf[256];
  for (ssize_t n; (n = read(out[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(n));
  close(out[0]);
  int status = 0;
  waitpid(*pid, &status, 0);
  CHECK(WEXITSTATUS(status) == 0);
  std::istringstream lines(text);
  std::string uid, gid, map;
  std::getline(lines, uid);
  std::getline(lines, gid);
  std::getline(lines, map);
  CHECK(uid == "1000");
  CHECK(gid == "1000");
  std::istringstream fields(map);
  long inside = -1, outside = -1, count = -1;
  fields >> inside >> outside >> count;
  CHECK(inside == 1000);
  CHECK(outside == static_cast<long>(geteuid()));
  CHECK(count == 1);
}
