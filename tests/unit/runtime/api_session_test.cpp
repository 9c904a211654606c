// The API beyond its pure core, without a VM: the sandbox config builder (a config and a
// policy file merged through the loader), and a session and the MCP handler answering
// on a real loop against an empty airlock home.
#include <doctest/doctest.h>

#include <fstream>
#include <utility>

#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio.hpp>

#include "runtime/api/job_runner.hpp"
#include "runtime/api/mcp.hpp"
#include "runtime/api/sandbox_config.hpp"
#include "runtime/api/session.hpp"
#include "tests/support/temp_dir.hpp"

using namespace airlock;
using namespace airlock::api;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

CreateParams create(const json& params) {
  auto parsed = parse_params("sandbox.create", params);
  REQUIRE(std::holds_alternative<MethodParams>(parsed));
  return std::get<CreateParams>(std::get<MethodParams>(parsed));
}

auto no_env = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };

// Runs the loop until the reply came (or a deadline: a failing test ends).
ApiResult wait_for(boost::asio::io_context& io, std::optional<ApiResult>& slot) {
  const auto until = std::chrono::steady_clock::now() + 20s;
  while (!slot && std::chrono::steady_clock::now() < until) {
    io.run_for(10ms);
    io.restart();
  }
  REQUIRE(slot.has_value());
  return *slot;
}

}  // namespace

TEST_CASE("sandbox config: a config alone, through the policy loader") {
  test::TempDir dir;
  std::filesystem::create_directories(dir.path() / "src");
  auto p = build_sandbox_policy(
      create({{"config", {{"resources", {{"memory_mb", "1G"}}},
                          {"network", {{"allowed_hosts", {"pypi.org"}}}},
                          {"vfs", {{"mounts", {{"src", {{"host_path", "src"}, {"readonly", true}}}}}}}}},
              {"secrets", {{"TOKEN", {{"value", "v-1"}, {"hosts", {"api.example.com"}}}}}},
              {"image", "default"}}),
      dir.path(), no_env);
  CHECK(p.resources.memory_mb == 1024);
  CHECK(p.network.allowed_hosts.size() == 1);
  REQUIRE(p.vfs.mounts.size() == 1);
  CHECK(p.vfs.mounts[0].host_path == dir.path() / "src");  // relative to base_dir (cwd here)
  REQUIRE(p.network.secrets.size() == 1);
  CHECK(p.network.secrets[0].value.reveal() == "v-1");
  CHECK(p.source.empty());
}

TEST_CASE("sandbox config: merged over a policy file; errors name the key path") {
  test::TempDir dir;
  const auto file = dir.path() / "agent.yaml";
  std::ofstream(file) << "resources: {cpus: 2, memory_mb: 768}\n"
                         "network:\n  allowed_hosts: [a.example.com, b.example.com]\n"
                         "  resolve: {a.example.com: 127.0.0.1}\n"
                         "env: {A: file, B: file}\n";
  auto p = build_sandbox_policy(create({{"policy_file", file.string()},
                                        {"config", {{"resources", {{"memory_mb", 1024}}},
                                                    {"network", {{"allowed_hosts", {"c.example.com"}},
                                                                 {"resolve", {{"c.example.com", "127.0.0.2"}}}}},
                                                    {"env", {{"B", "config"}, {"C", "config"}}}}}}),
                                dir.path(), no_env);
  CHECK(p.resources.cpus == 2);          // the file's, not set in config
  CHECK(p.resources.memory_mb == 1024);  // config's
  REQUIRE(p.network.allowed_hosts.size() == 1);  // a list replaces
  CHECK(p.network.allowed_hosts[0].to_string() == "c.example.com");
  CHECK(p.network.resolve.size() == 2);  // a map merges by key
  CHECK(p.env == std::map<std::string, std::string>{{"A", "file"}, {"B", "config"}, {"C", "config"}});
  CHECK(p.source == file.string());

  try {
    build_sandbox_policy(create({{"config", {{"network", {{"allowed_hosts", {"ok.com", "bad host"}}}}}}}), dir.path(), no_env);
    FAIL("accepted a bad host pattern");
  } catch (const policy::PolicyError& e) {
    const std::string what = e.what();
    CHECK(what.rfind("config: network.allowed_hosts[1]: invalid host pattern", 0) == 0);
  }
  std::ofstream(dir.path() / "bad.yaml") << "resources:\n  memroy_mb: 5\n";
  try {
    build_sandbox_policy(create({{"policy_file", (dir.path() / "bad.yaml").string()}}), dir.path(), no_env);
    FAIL("accepted a typo");
  } catch (const policy::PolicyError& e) {
    CHECK(std::string(e.what()).find("bad.yaml:2:3: resources: unknown key \"memroy_mb\"") != std::string::npos);
  }
  CHECK_THROWS_AS(build_sandbox_policy(create({{"image", "../etc"}}), dir.path(), no_env), policy::PolicyError);
}

TEST_CASE("session: replies without a VM, every one of them exactly once") {
  test::TempDir home;
  boost::asio::io_context io;
  JobRunner jobs(io);
  std::vector<std::string> notifications;
  SessionIo hooks;
  hooks.notify = [&](const std::string& method, json) { notifications.push_back(method); };
  hooks.backlog = [] { return std::size_t{0}; };
  auto session = std::make_shared<Session>(io, home.path(), jobs, hooks);
  auto call = [&](const std::string& method, const json& params) {
    std::optional<ApiResult> got;
    int replies = 0;
    session->call(method, params, [&](ApiResult r) {
      ++replies;
      got = std::move(r);
    });
    ApiResult r = wait_for(io, got);
    CHECK(replies == 1);
    return r;
  };
  auto list = call("sandbox.list", json::object());
  REQUIRE(std::holds_alternative<json>(list));
  CHECK(std::get<json>(list) == json::array());
  for (const auto& [method, params] : std::vector<std::pair<std::string, json>>{
           {"exec.run", {{"id", "vm-00000000"}, {"argv", {"true"}}}},
           {"file.read", {{"id", "vm-00000000"}, {"path", "/a"}}},
           {"sandbox.get", {{"id", "vm-00000000"}}},
           {"events.subscribe", {{"id", "vm-00000000"}}},
           {"file.upload", {{"id", "vm-00000000"}, {"src", "/tmp"}, {"dst", "/w"}}}}) {
    CAPTURE(method);
    auto r = call(method, params);
    REQUIRE(std::holds_alternative<ApiError>(r));
    CHECK(std::get<ApiError>(r).kind == runtime::ErrorKind::vm_not_found);
  }
  auto no_exec = call("exec.stdin", {{"exec_id", "ex-9"}, {"data", "aGk="}});
  CHECK(std::get<ApiError>(no_exec).code == "not_found");
  auto update = call("policy.update", {{"id", "vm-00000000"}});
  CHECK(std::get<ApiError>(update).code == "not_supported");
  bool closed = false;
  session->close([&] { closed = true; });
  CHECK(closed);
  CHECK(notifications.empty());
}

TEST_CASE("mcp: initialize negotiates, tools/list names every tool, failures are tool results") {
  test::TempDir home;
  boost::asio::io_context io;
  JobRunner jobs(io);
  auto session = std::make_shared<Session>(io, home.path(), jobs, SessionIo{});
  McpHandler mcp(session);
  auto handle = [&](const std::string& method, const json& params) {
    std::optional<ApiResult> got;
    mcp.handle(Call{method, params, json(1)}, [&](ApiResult r) { got = std::move(r); });
    return wait_for(io, got);
  };
  auto init = std::get<json>(handle("initialize", {{"protocolVersion", "2024-11-05"}}));
  CHECK(init["protocolVersion"] == "2024-11-05");
  CHECK(std::get<json>(handle("initialize", {{"protocolVersion", "1999-01-01"}}))["protocolVersion"] == "2025-06-18");
  std::set<std::string> names;
  const json tools = std::get<json>(handle("tools/list", json::object()))["tools"];
  for (const auto& t : tools) names.insert(t["name"].get<std::string>());
  CHECK(names == std::set<std::string>{"create_sandbox", "exec", "read_file", "write_file", "list_files", "get_events",
                                       "remove_sandbox"});
  auto missing = std::get<json>(handle("tools/call", {{"name", "exec"}, {"arguments", {{"sandbox_id", "vm-00000000"},
                                                                                       {"command", "true"}}}}));
  CHECK(missing["isError"] == true);
  CHECK(missing["structuredContent"]["kind"] == "vm_not_found");
  auto unknown = handle("tools/call", {{"name", "format_disk"}});
  CHECK(std::get<ApiError>(unknown).rpc_code == kInvalidParams);
  CHECK(std::get<ApiError>(handle("resources/list", json::object())).rpc_code == kMethodNotFound);
}
