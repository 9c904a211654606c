// launch.json: the kept config carries no secret value, goes back through the policy
// loader, and a start restores secrets from the environment or asks for them.
#include <doctest/doctest.h>

#include "policy/loader.hpp"
#include "runtime/vm/launch_spec.hpp"
#include "tests/support/temp_dir.hpp"

using namespace airlock;
using namespace airlock::runtime;

namespace {

SupervisorConfig sample(const std::filesystem::path& folder) {
  const std::string yaml = R"(
image: default
resources: {cpus: 2, memory_mb: 1024, disk_size_mb: 2048, timeout_seconds: 60}
network:
  allowed_hosts: [pypi.org, "*.example.com:443"]
  blocked_hosts: [evil.example.com]
  allow_private: [10.0.0.0/8, db.test]
  resolve: {db.test: 127.0.0.1}
  dns_servers: ["1.1.1.1"]
  secrets:
    TOKEN: {value: literal-secret-value, hosts: [api.example.com]}
    FROM_ENV: {value_from_env: MY_KEY, hosts: [pypi.org], placeholder: PLACEHOLDER_1234}
vfs:
  workspace: /work
  mounts: {src: {host_path: )" + folder.string() + R"(, readonly: true}}
env: {GREETING: hello}
)";
  auto env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "MY_KEY") return std::string("value-from-env");
    return std::nullopt;
  };
  SupervisorConfig c;
  c.policy = policy::load_policy_text(yaml, "test.yaml", folder, env);
  c.home = "/home/x/.local/share/airlock";
  c.id = "vm-0000abcd";
  c.image = "default";
  c.kernel = "/i/vmlinux";
  c.initramfs = "/i/initramfs.cpio.gz";
  c.rootfs = "/i/rootfs.img";
  c.rootfs_identity = "1:2.3:4";
  c.hostname = "box";
  c.add_hosts = {{"db", "10.0.0.5"}};
  return c;
}

}  // namespace

TEST_CASE("launch spec: the kept form has no secret value; the pipe form round-trips") {
  test::TempDir dir;
  SupervisorConfig c = sample(dir.path());
  const std::string kept = launch_json(c, false).dump();
  CHECK(kept.find("literal-secret-value") == std::string::npos);
  CHECK(kept.find("value-from-env") == std::string::npos);
  CHECK(kept.find("MY_KEY") != std::string::npos);  // where it came from is kept

  Result<SupervisorConfig> back = parse_launch_json(launch_json(c, true));
  REQUIRE_MESSAGE(back.ok(), back.error());
  CHECK(back->id == c.id);
  CHECK(back->hostname == "box");
  REQUIRE(back->add_hosts.size() == 1);
  CHECK(back->add_hosts[0].address == "10.0.0.5");
  CHECK(back->policy.resources.cpus == 2);
  CHECK(back->policy.resources.memory_mb == 1024);
  CHECK(back->policy.vfs.workspace == "/work");
  REQUIRE(back->policy.vfs.mounts.size() == 1);
  CHECK(back->policy.vfs.mounts[0].guest_path == "/work/src");
  CHECK(back->policy.vfs.mounts[0].readonly);
  CHECK(back->policy.env.at("GREETING") == "hello");
  CHECK(back->policy.network.allowed_hosts.size() == 2);
  CHECK(back->policy.network.blocked_hosts.size() == 1);
  CHECK(back->policy.network.allow_private_cidrs.size() == 1);
  CHECK(back->policy.network.allow_private_hosts.size() == 1);
  CHECK(back->policy.network.resolve.size() == 1);
  CHECK(back->policy.network.dns_servers.size() == 1);
  REQUIRE(back->policy.network.secrets.size() == 2);
  const auto& from_env = back->policy.network.secrets[0];
  CHECK(from_env.name == "FROM_ENV");
  CHECK(from_env.value.reveal() == "value-from-env");
  CHECK(from_env.value_from_env == "MY_KEY");
  CHECK(from_env.placeholder == "PLACEHOLDER_1234");
  CHECK(back->policy.network.secrets[1].value.reveal() == "literal-secret-value");
}

TEST_CASE("launch spec: a start reads env secrets again and needs literal ones given") {
  test::TempDir dir;
  SupervisorConfig c = sample(dir.path());
  const nlohmann::json kept = launch_json(c, false);
  auto env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "MY_KEY") return std::string("rotated-value");
    return std::nullopt;
  };
  auto missing = restore_secrets(kept, {}, env);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().find("TOKEN") != std::string::npos);
  CHECK(missing.error().find("FROM_ENV") == std::string::npos);

  auto no_env = restore_secrets(kept, {{"TOKEN", "x"}}, [](const std::string&) { return std::nullopt; });
  REQUIRE_FALSE(no_env.ok());
  CHECK(no_env.error().find("$MY_KEY") != std::string::npos);

  CHECK_FALSE(restore_secrets(kept, {{"TOKEN", "x"}, {"OTHER", "y"}}, env).ok());

  auto restored = restore_secrets(kept, {{"TOKEN", "given-again"}}, env);
  REQUIRE(restored.ok());
  Result<SupervisorConfig> back = parse_launch_json(*restored);
  REQUIRE_MESSAGE(back.ok(), back.error());
  CHECK(back->policy.network.secrets[0].value.reveal() == "rotated-value");
  CHECK(back->policy.network.secrets[1].value.reveal() == "given-again");
}

TEST_CASE("launch spec: malformed documents are errors, not exceptions") {
  CHECK_FALSE(parse_launch_json(nlohmann::json::array()).ok());
  CHECK_FALSE(parse_launch_json({{"format", 99}}).ok());
  test::TempDir dir;
  nlohmann::json j = launch_json(sample(dir.path()), true);
  j["network"] = "yes";
  CHECK(parse_launch_json(j).error().find("network") != std::string::npos);
  j = launch_json(sample(dir.path()), true);
  j["policy"]["resources"]["memory_mb"] = 1;
  CHECK(parse_launch_json(j).error().find("memory") != std::string::npos);
  j = launch_json(sample(dir.path()), true);
  j["add_hosts"] = {{{"name", 5}}};
  CHECK_FALSE(parse_launch_json(j).ok());
}

TEST_CASE("launch spec: state.json and policy.get views redact env and secret values") {
  test::TempDir dir;
  SupervisorConfig c = sample(dir.path());
  const std::string state = state_config_json(c).dump();
  CHECK(state.find("hello") == std::string::npos);
  CHECK(state.find("box") != std::string::npos);
  const std::string policy = redacted_policy_json(c.policy).dump();
  CHECK(policy.find("hello") == std::string::npos);
  CHECK(policy.find("literal-secret-value") == std::string::npos);
  CHECK(policy.find("api.example.com") != std::string::npos);
}
