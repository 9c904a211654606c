// cp endpoints, id prefixes, exit codes.
#include <doctest/doctest.h>

#include "runtime/vm/command_helpers.hpp"

using namespace airlock::runtime;

TEST_CASE("cp endpoints") {
  auto vm = parse_copy_endpoint("vm-1a2b3c4d:/workspace/x");
  REQUIRE(vm.ok());
  CHECK(*vm->vm == "vm-1a2b3c4d");
  CHECK(vm->path == "/workspace/x");
  auto host = parse_copy_endpoint("./dir:with/colon");
  REQUIRE(host.ok());
  CHECK_FALSE(host->vm.has_value());
  CHECK(parse_copy_endpoint("/tmp/a:b")->vm == std::nullopt);
  CHECK(parse_copy_endpoint("plainfile")->path == "plainfile");
  CHECK_FALSE(parse_copy_endpoint("vm-1:relative").ok());
  CHECK_FALSE(parse_copy_endpoint(":/x").ok());
  CHECK_FALSE(parse_copy_endpoint("").ok());
}

TEST_CASE("vm id by exact id or unique prefix") {
  const std::vector<std::string> ids = {"vm-3f9a1c2e", "vm-3f00aaaa", "vm-b0000000"};
  CHECK(*resolve_vm_id("vm-3f9a1c2e", ids) == "vm-3f9a1c2e");
  CHECK(*resolve_vm_id("vm-3f9", ids) == "vm-3f9a1c2e");
  CHECK(*resolve_vm_id("b0", ids) == "vm-b0000000");
  auto ambiguous = resolve_vm_id("3f", ids);
  REQUIRE_FALSE(ambiguous.ok());
  CHECK(ambiguous.error().find("matches 2") != std::string::npos);
  auto none = resolve_vm_id("vm-ffff", ids);
  REQUIRE_FALSE(none.ok());
  CHECK(none.error() == "no VM 'vm-ffff' (see airlock ls)");
}

TEST_CASE("exit codes for run/exec") {
  ExecOutcome o;
  o.exit_code = 3;
  CHECK(exit_code_for(o) == 3);
  o.exit_code = 137;
  CHECK(exit_code_for(o) == 137);
  ExecOutcome nf;
  nf.error_code = "not_found";
  CHECK(exit_code_for(nf) == 127);
  nf.error_code = "permission_denied";
  CHECK(exit_code_for(nf) == 126);
  nf.error_code = "io";
  CHECK(exit_code_for(nf) == 125);
}

TEST_CASE("exec request JSON carries only what was set") {
  ExecRequest r;
  r.argv = {"ls", "-l"};
  auto j = exec_request_json(r);
  CHECK(j == nlohmann::json{{"op", "exec"}, {"argv", {"ls", "-l"}}, {"tty", false}, {"stdin", false}});
  r.tty = true;
  r.rows = 50;
  r.cols = 120;
  r.forward_stdin = true;
  r.env = {{"A", "1"}};
  r.cwd = "/tmp";
  r.user = "root";
  r.timeout_ms = 5000;
  r.privileged = true;
  j = exec_request_json(r);
  CHECK(j["rows"] == 50);
  CHECK(j["cols"] == 120);
  CHECK(j["stdin"] == true);
  CHECK(j["env"]["A"] == "1");
  CHECK(j["cwd"] == "/tmp");
  CHECK(j["user"] == "root");
  CHECK(j["timeout_ms"] == 5000);
  CHECK(j["privileged"] == true);
}
