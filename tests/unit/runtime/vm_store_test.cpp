// VM ids, paths and state.json (including malformed files).
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <set>

#include "runtime/vm/vm_store.hpp"

using namespace airlock::runtime;

TEST_CASE("vm ids: vm- plus 8 hex digits, random") {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    const std::string id = generate_vm_id();
    CHECK(is_valid_vm_id(id));
    seen.insert(id);
  }
  CHECK(seen.size() >= 199);
  CHECK(is_valid_vm_id("vm-3f9a1c2e"));
  CHECK_FALSE(is_valid_vm_id("vm-3F9A1C2E"));
  CHECK_FALSE(is_valid_vm_id("vm-3f9a1c2"));
  CHECK_FALSE(is_valid_vm_id("vm-3f9a1c2e0"));
  CHECK_FALSE(is_valid_vm_id("xx-3f9a1c2e"));
  CHECK_FALSE(is_valid_vm_id("vm-../../..."));
}

TEST_CASE("vm paths live under home/vms/<id>") {
  const VmPaths p = vm_paths("/h", "vm-00000001");
  CHECK(p.dir == "/h/vms/vm-00000001");
  CHECK(p.api_sock == "/h/vms/vm-00000001/api.sock");
  CHECK(p.disk == "/h/vms/vm-00000001/disk.qcow2");
  CHECK(p.events == "/h/vms/vm-00000001/events.jsonl");
}

TEST_CASE("airlock home: AIRLOCK_HOME wins") {
  ::setenv("AIRLOCK_HOME", "/tmp/some-home", 1);
  CHECK(airlock_home() == "/tmp/some-home");
  ::unsetenv("AIRLOCK_HOME");
  ::setenv("XDG_DATA_HOME", "/tmp/xdg", 1);
  CHECK(airlock_home() == "/tmp/xdg/airlock");
  ::unsetenv("XDG_DATA_HOME");
}

TEST_CASE("state.json round trip") {
  VmState s;
  s.id = "vm-0000abcd";
  s.pid = 1234;
  s.status = "running";
  s.created = 1700000000000;
  s.image = "default";
  s.config = {{"resources", {{"cpus", 2}}}};
  s.boot_ms = 812;
  s.accel = "tcg";
  auto parsed = parse_vm_state(serialize_vm_state(s));
  REQUIRE(parsed.ok());
  CHECK(parsed->id == s.id);
  CHECK(parsed->pid == 1234);
  CHECK(parsed->status == "running");
  CHECK(parsed->created == s.created);
  CHECK(parsed->image == "default");
  CHECK(parsed->config["resources"]["cpus"] == 2);
  CHECK(parsed->boot_ms == 812);
  CHECK(parsed->accel == "tcg");
  CHECK(parsed->error.empty());
}

TEST_CASE("state.json: malformed files give errors naming the problem") {
  auto err = [](const std::string& text) {
    auto r = parse_vm_state(text);
    REQUIRE_FALSE(r.ok());
    return r.error();
  };
  CHECK(err("") == "not valid JSON");
  CHECK(err("{\"id\":\"vm-0000abcd\",") == "not valid JSON");  // truncated write
  CHECK(err("[1,2]") == "not a JSON object");
  CHECK(err(R"({"pid":1,"status":"running"})") == "missing field \"id\"");
  CHECK(err(R"({"id":5,"pid":1,"status":"x"})") == "field \"id\" must be a string");
  CHECK(err(R"({"id":"../etc","pid":1,"status":"x"})").find("not a VM id") != std::string::npos);
  CHECK(err(R"({"id":"vm-0000abcd","status":"x"})") == "missing field \"pid\"");
  CHECK(err(R"({"id":"vm-0000abcd","pid":"12","status":"x"})") == "field \"pid\" must be an integer");
  CHECK(err(R"({"id":"vm-0000abcd","pid":-4,"status":"x"})") == "field \"pid\" must be positive");
  CHECK(err(R"({"id":"vm-0000abcd","pid":4})") == "missing field \"status\"");
  CHECK(err(R"({"id":"vm-0000abcd","pid":4,"status":"x","boot_ms":"fast"})") ==
        "field \"boot_ms\" must be an integer");
  CHECK(err(R"({"id":"vm-0000abcd","pid":4,"status":"x","config":[]})") ==
        "field \"config\" must be an object");
  CHECK(parse_vm_state(R"({"id":"vm-0000abcd","pid":4,"status":"x","extra":1})").ok());
}

TEST_CASE("state.json on disk: atomic write, read errors name the file") {
  char tmpl[] = "/tmp/airlock-state-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  const std::filesystem::path dir = tmpl;
  VmState s;
  s.id = "vm-0000abcd";
  s.pid = 99;
  s.status = "creating";
  REQUIRE(write_vm_state(dir / "state.json", s));
  CHECK_FALSE(std::filesystem::exists(dir / "state.json.tmp"));
  auto back = read_vm_state(dir / "state.json");
  REQUIRE(back.ok());
  CHECK(back->status == "creating");
  std::ofstream(dir / "state.json") << "{garbage";
  auto bad = read_vm_state(dir / "state.json");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error() == (dir / "state.json").string() + ": not valid JSON");
  auto missing = read_vm_state(dir / "nope.json");
  CHECK_FALSE(missing.ok());
  std::filesystem::remove_all(dir);
}

TEST_CASE("liveness: a dead supervisor shows as stopped") {
  VmState s;
  s.status = "running";
  CHECK(effective_status(s, true) == "running");
  CHECK(effective_status(s, false) == "stopped");
  s.status = "failed";
  CHECK(effective_status(s, false) == "failed");
  CHECK(process_alive(getpid()));
  CHECK_FALSE(process_alive(0));
  CHECK_FALSE(process_alive(-1));
  CHECK_FALSE(process_alive(999999999));
}

TEST_CASE("list_vm_ids keeps only VM directories") {
  char tmpl[] = "/tmp/airlock-home-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  const std::filesystem::path home = tmpl;
  CHECK(list_vm_ids(home).empty());  // no vms/ yet
  std::filesystem::create_directories(home / "vms/vm-0000000b");
  std::filesystem::create_directories(home / "vms/vm-0000000a");
  std::filesystem::create_directories(home / "vms/other");
  std::ofstream(home / "vms/vm-0000000c") << "file";
  CHECK(list_vm_ids(home) == std::vector<std::string>{"vm-0000000a", "vm-0000000b"});
  std::filesystem::remove_all(home);
}
