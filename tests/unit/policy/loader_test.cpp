// Policy loader: defaults, every field, and each kind of error with its location.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "policy/loader.hpp"

using namespace airlock::policy;
namespace fs = std::filesystem;

namespace {

EnvLookup fake_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    if (name == "OPENAI_API_KEY") return std::string("sk-real-value");
    return std::nullopt;
  };
}

Policy load(const std::string& yaml, const fs::path& base = fs::temp_directory_path()) {
  return load_policy_text(yaml, "p.yaml", base, fake_env());
}

// The error message for yaml, or "" if it loaded.
std::string error_of(const std::string& yaml, const fs::path& base = fs::temp_directory_path()) {
  try {
    load(yaml, base);
  } catch (const PolicyError& e) {
    return e.what();
  }
  return "";
}

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("airlock-test-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(counter()++));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  static int& counter() {
    static int n = 0;
    return n;
  }
};

}  // namespace

TEST_CASE("an empty file gives the defaults") {
  Policy p = load("");
  CHECK(p.image == "default");
  CHECK(p.resources.cpus == 1);
  CHECK(p.resources.memory_mb == 512);
  CHECK(p.resources.disk_size_mb == 5120);
  CHECK(p.resources.timeout_seconds == 300);
  CHECK(p.vfs.workspace == "/workspace");
  CHECK(p.network.block_private_ips);
  CHECK(p.network.allowed_hosts.empty());
  CHECK(p.network.secrets.empty());
}

TEST_CASE("a full policy loads every field") {
  TempDir dir;
  fs::create_directories(dir.path / "src");
  std::ofstream(dir.path / "policy.lua") << "-- hooks\n";
  std::ofstream(dir.path / "ca.pem") << "pem\n";
  Policy p = load(R"(
image: default
resources: {cpus: 2, memory_mb: 1G, disk_size_mb: 8192, timeout_seconds: 10m}
network:
  allowed_hosts: ["API.OpenAI.com.", "*.githubusercontent.com", "pypi.org:443"]
  blocked_hosts: ["evil.githubusercontent.com"]
  block_private_ips: true
  allow_private: ["127.0.0.1", "10.1.0.0/16", "api.test"]
  secrets:
    OPENAI_API_KEY: {value_from_env: OPENAI_API_KEY, hosts: [api.openai.com]}
    TOKEN: {value: tok-123, placeholder: PLACEHOLDER_TOKEN, hosts: ["*.example.com"]}
  policy_script: policy.lua
  dns_servers: ["1.1.1.1", "9.9.9.9:5353", "[2606:4700::1111]:53"]
  upstream_ca_file: ca.pem
  resolve: {api.test: 127.0.0.1, Multi.Test: [127.0.0.2, "::1"]}
vfs:
  workspace: /work
  mounts: {src: {host_path: ./src, readonly: true}}
env: {LANG: C.UTF-8, N: 5}
)",
                  dir.path);
  CHECK(p.resources.cpus == 2);
  CHECK(p.resources.memory_mb == 1024);
  CHECK(p.resources.disk_size_mb == 8192);
  CHECK(p.resources.timeout_seconds == 600);
  REQUIRE(p.network.allowed_hosts.size() == 3);
  CHECK(p.network.allowed_hosts[0].to_string() == "api.openai.com");
  CHECK(p.network.allowed_hosts[2].to_string() == "pypi.org:443");
  CHECK(p.network.blocked_hosts.size() == 1);
  CHECK(p.network.allow_private_cidrs.size() == 2);
  CHECK(p.network.allow_private_hosts.size() == 1);
  REQUIRE(p.network.secrets.size() == 2);
  CHECK(p.network.secrets[0].name == "OPENAI_API_KEY");
  CHECK(p.network.secrets[0].value.reveal() == "sk-real-value");
  CHECK(p.network.secrets[0].value_from_env == "OPENAI_API_KEY");
  CHECK(p.network.secrets[1].placeholder == "PLACEHOLDER_TOKEN");
  CHECK(p.network.policy_script == dir.path / "policy.lua");
  REQUIRE(p.network.dns_servers.size() == 3);
  CHECK(p.network.dns_servers[1].port == 5353);
  CHECK(p.network.dns_servers[2].address.to_string() == "2606:4700::1111");
  REQUIRE(p.network.resolve.size() == 2);
  CHECK(p.network.resolve[1].host == "multi.test");
  CHECK(p.network.resolve[1].addresses.size() == 2);
  CHECK(p.vfs.workspace == "/work");
  REQUIRE(p.vfs.mounts.size() == 1);
  CHECK(p.vfs.mounts[0].guest_path == "/work/src");
  CHECK(p.vfs.mounts[0].host_path == dir.path / "src");
  CHECK(p.vfs.mounts[0].readonly);
  CHECK(p.env.at("N") == "5");
}

TEST_CASE("errors name file, line, column and key path") {
  CHECK(error_of("network:\n  allowed_hosts:\n    - ok.com\n    - \"a*.com\"\n")
            .starts_with("p.yaml:4:7: network.allowed_hosts[1]: invalid host pattern"));
  CHECK(error_of("resources:\n  memory_mb: lots\n") == "p.yaml:2:14: resources.memory_mb: invalid size \"lots\"");
}

TEST_CASE("unknown keys are errors, with a suggestion") {
  CHECK(error_of("netwrok: {}\n") ==
        "p.yaml:1:1: unknown key \"netwrok\" (did you mean \"network\"?)");
  CHECK(error_of("network:\n  allowed_host: [a.com]\n") ==
        "p.yaml:2:3: network: unknown key \"allowed_host\" (did you mean \"allowed_hosts\"?)");
  CHECK(error_of("resources: {gpus: 1}\n").find("unknown key \"gpus\"") != std::string::npos);
  CHECK(error_of("vfs: {mounts: {src: {host_path: /tmp, mode: ro}}}\n")
            .find("vfs.mounts.src: unknown key \"mode\"") != std::string::npos);
}

TEST_CASE("duplicate keys are errors") {
  CHECK(error_of("image: a\nimage: b\n") == "p.yaml:2:1: duplicate key \"image\"");
  CHECK(error_of("env: {A: 1, A: 2}\n").find("duplicate key \"A\"") != std::string::npos);
}

TEST_CASE("bad types are errors") {
  CHECK(error_of("network: [a]\n").find("network: expected a mapping, found a list") != std::string::npos);
  CHECK(error_of("network: {allowed_hosts: a.com}\n").find("expected a list, found a scalar") != std::string::npos);
  CHECK(error_of("network: {block_private_ips: yes}\n").find("expected true or false") != std::string::npos);
  CHECK(error_of("env: {A: [1]}\n").find("env.A: expected a scalar value, found a list") != std::string::npos);
  CHECK(error_of("- a\n").find("must be a mapping") != std::string::npos);
}

TEST_CASE("syntax errors carry the position") {
  std::string e = error_of("network: {allowed_hosts: [a.com\n");
  CHECK(e.starts_with("p.yaml:"));
  CHECK(e.find("syntax error") != std::string::npos);
}

TEST_CASE("sizes, cpus and timeouts are range-checked") {
  CHECK(load("resources: {memory_mb: 2G}").resources.memory_mb == 2048);
  CHECK(load("resources: {memory_mb: 768M}").resources.memory_mb == 768);
  CHECK(load("resources: {memory_mb: 1.5GiB}").resources.memory_mb == 1536);
  CHECK(error_of("resources: {memory_mb: 64}").find("between 128 and") != std::string::npos);
  CHECK(error_of("resources: {memory_mb: -1}").find("invalid size") != std::string::npos);
  CHECK(error_of("resources: {memory_mb: 12X}").find("invalid size unit") != std::string::npos);
  CHECK(error_of("resources: {memory_mb: 0.5}").find("whole number") != std::string::npos);
  CHECK(error_of("resources: {disk_size_mb: 10}").find("disk size must be") != std::string::npos);
  CHECK(load("resources: {cpus: 0.5}").resources.cpus == 0.5);
  CHECK(error_of("resources: {cpus: 0}").find("cpus must be") != std::string::npos);
  CHECK(error_of("resources: {cpus: 1000}").find("cpus must be") != std::string::npos);
  CHECK(load("resources: {timeout_seconds: 0}").resources.timeout_seconds == 0);
  CHECK(load("resources: {timeout_seconds: 1h}").resources.timeout_seconds == 3600);
  CHECK(error_of("resources: {timeout_seconds: 1d}").find("invalid timeout unit") != std::string::npos);
  CHECK(error_of("resources: {timeout_seconds: 9999999}").find("timeout must be") != std::string::npos);
}

TEST_CASE("CIDRs, IPs, ports and DNS servers are validated") {
  CHECK(error_of("network: {allow_private: [10.0.0.0/33]}").find("network.allow_private[0]") != std::string::npos);
  CHECK(error_of("network: {allow_private: [\"*\"]}").find("expected a CIDR block") != std::string::npos);
  CHECK(error_of("network: {allow_private: [\"db.internal:5432\"]}").find("take no port") != std::string::npos);
  CHECK(error_of("network: {allowed_hosts: [\"a.com:0\"]}").find("invalid host pattern") != std::string::npos);
  CHECK(error_of("network: {allowed_hosts: [\"a.com:70000\"]}").find("invalid host pattern") != std::string::npos);
  CHECK(error_of("network: {dns_servers: [dns.google]}").find("expected an IP address") != std::string::npos);
  CHECK(error_of("network: {dns_servers: [\"1.1.1.1:0\"]}").find("invalid port") != std::string::npos);
  CHECK(error_of("network: {resolve: {a.test: not-an-ip}}").find("network.resolve.a.test") != std::string::npos);
  CHECK(error_of("network: {resolve: {\"a b\": 127.0.0.1}}").find("invalid host name") != std::string::npos);
}

TEST_CASE("secrets need a value and hosts; env values must exist") {
  CHECK(error_of("network: {secrets: {K: {hosts: [a.com]}}}").find("missing value") != std::string::npos);
  CHECK(error_of("network: {secrets: {K: {value: v}}}").find("missing hosts") != std::string::npos);
  CHECK(error_of("network: {secrets: {K: {value: v, hosts: []}}}").find("missing hosts") != std::string::npos);
  CHECK(error_of("network: {secrets: {K: {value_from_env: NOPE_UNSET, hosts: [a.com]}}}")
            .find("environment variable NOPE_UNSET is not set") != std::string::npos);
  CHECK(error_of("network: {secrets: {K: {value: v, value_from_env: OPENAI_API_KEY, hosts: [a.com]}}}")
            .find("not both") != std::string::npos);
  CHECK(error_of("network: {secrets: {1BAD: {value: v, hosts: [a.com]}}}").find("secret name") != std::string::npos);
  CHECK(error_of("network: {secrets: {K: {value: v, placeholder: short, hosts: [a.com]}}}")
            .find("at least 8") != std::string::npos);
}

TEST_CASE("paths are relative to the policy file and must exist") {
  TempDir dir;
  CHECK(error_of("network: {policy_script: missing.lua}", dir.path).find("no such file or folder") != std::string::npos);
  CHECK(error_of("network: {upstream_ca_file: .}", dir.path).find("not a regular file") != std::string::npos);
  CHECK(error_of("vfs: {mounts: {src: {host_path: ./nope}}}", dir.path).find("vfs.mounts.src.host_path") != std::string::npos);
  CHECK(error_of("vfs: {mounts: {src: {readonly: true}}}", dir.path).find("missing host_path") != std::string::npos);
  CHECK(error_of("vfs: {workspace: relative}", dir.path).find("workspace must be") != std::string::npos);
  CHECK(error_of("vfs: {workspace: /}", dir.path).find("workspace must be") != std::string::npos);
  CHECK(error_of("vfs: {mounts: {../etc: {host_path: .}}}", dir.path).find("must not contain '..'") != std::string::npos);
}

TEST_CASE("mount guest paths are relative to the workspace unless inside it") {
  CHECK(mount_guest_path("src", "/workspace") == "/workspace/src");
  CHECK(mount_guest_path("./src/", "/workspace") == "/workspace/src");
  CHECK(mount_guest_path("/workspace/src", "/workspace") == "/workspace/src");
  CHECK(mount_guest_path("/data", "/workspace") == "/workspace/data");
  CHECK(mount_guest_path("/workspace", "/workspace") == "/workspace");
  CHECK(mount_guest_path("/workspacefoo", "/workspace") == "/workspace/workspacefoo");
  CHECK_THROWS_AS(mount_guest_path("a/../../etc", "/workspace"), PolicyError);
}

TEST_CASE("the example policies load") {
  for (const auto& entry : fs::directory_iterator(AIRLOCK_EXAMPLES_DIR)) {
    if (entry.path().extension() != ".yaml") continue;
    CAPTURE(entry.path());
    EnvLookup env = [](const std::string&) { return std::optional<std::string>("example-value"); };
    CHECK_NOTHROW(load_policy_file(entry.path(), env));
  }
}

TEST_CASE("a missing file is a clear error") {
  CHECK_THROWS_WITH_AS(load_policy_file("/nonexistent/p.yaml"),
                       "/nonexistent/p.yaml: cannot open policy file", PolicyError);
}

TEST_CASE("audit: overflow mode and queue size, block by default") {
  CHECK(load("").audit.on_overflow == AuditOverflow::kBlock);
  CHECK(load("").audit.queue_events == 4096);
  Policy p = load("audit: {on_overflow: drop, queue_events: 16}");
  CHECK(p.audit.on_overflow == AuditOverflow::kDrop);
  CHECK(p.audit.queue_events == 16);
  CHECK(load("audit: {on_overflow: block}").audit.on_overflow == AuditOverflow::kBlock);
  std::string bad_mode = error_of("audit:\n  on_overflow: ignore\n");
  CHECK(bad_mode.find("p.yaml:2:") == 0);
  CHECK(bad_mode.find("audit.on_overflow: expected block or drop") != std::string::npos);
  CHECK(error_of("audit: {queue_events: 0}").find("audit.queue_events: queue_events must be") !=
        std::string::npos);
  CHECK(error_of("audit: {queue_events: 2.5}").find("whole number") != std::string::npos);
  CHECK(error_of("audit: {queue_events: 99999999}").find("1048576") != std::string::npos);
  CHECK(error_of("audit: {on_overflw: drop}").find("on_overflw") != std::string::npos);
}
