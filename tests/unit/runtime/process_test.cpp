// run_command: output capture, exit codes, and the hard deadline.
#include <doctest/doctest.h>

#include "runtime/vm/process.hpp"

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
