// CLI flag parsing and merging over a policy.
#include <doctest/doctest.h>

#include <filesystem>

#include "policy/loader.hpp"
#include "policy/overrides.hpp"

using namespace airlock::policy;
namespace fs = std::filesystem;

namespace {
EnvLookup env_with(std::string name, std::string value) {
  return [name, value](const std::string& n) -> std::optional<std::string> {
    if (n == name) return value;
    return std::nullopt;
  };
}
std::string error_of(auto fn) {
  try {
    fn();
  } catch (const PolicyError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("--secret NAME=VALUE@hosts") {
  Secret s = parse_secret_flag("API_KEY=abc=def@api.example.com,*.example.org", env_with("X", "y"));
  CHECK(s.name == "API_KEY");
  CHECK(s.value.reveal() == "abc=def");
  CHECK_FALSE(s.value_from_env);
  REQUIRE(s.hosts.size() == 2);
  CHECK(s.hosts[1].to_string() == "*.example.org");
}

TEST_CASE("--secret value may contain '@': hosts follow the last one") {
  Secret s = parse_secret_flag("PW=p@ss@db.example.com", env_with("X", "y"));
  CHECK(s.value.reveal() == "p@ss");
  CHECK(s.hosts.at(0).to_string() == "db.example.com");
}

TEST_CASE("--secret NAME@hosts takes the value from $NAME") {
  Secret s = parse_secret_flag("TOKEN@api.github.com", env_with("TOKEN", "ghp_x"));
  CHECK(s.value.reveal() == "ghp_x");
  CHECK(s.value_from_env == "TOKEN");
  CHECK(error_of([] { parse_secret_flag("TOKEN@api.github.com", env_with("X", "y")); })
            .find("environment variable TOKEN is not set") != std::string::npos);
}

TEST_CASE("--secret errors never echo the value") {
  std::string e = error_of([] { parse_secret_flag("K=supersecret@bad host", env_with("X", "y")); });
  CHECK(e.find("invalid host pattern") != std::string::npos);
  CHECK(e.find("supersecret") == std::string::npos);
  CHECK(error_of([] { parse_secret_flag("K=supersecret", env_with("X", "y")); }).find("supersecret") == std::string::npos);
  CHECK(error_of([] { parse_secret_flag("K=v@", env_with("X", "y")); }).find("no hosts") != std::string::npos);
  CHECK(error_of([] { parse_secret_flag("=v@a.com", env_with("X", "y")); }).find("name must be") != std::string::npos);
  CHECK(error_of([] { parse_secret_flag("K=@a.com", env_with("X", "y")); }).find("empty value") != std::string::npos);
}

TEST_CASE("-v HOST:GUEST[:ro]") {
  fs::path tmp = fs::temp_directory_path();
  Mount m = parse_volume_flag(tmp.string() + ":src:ro", "/workspace");
  CHECK(m.host_path == tmp);
  CHECK(m.guest_path == "/workspace/src");
  CHECK(m.readonly);
  CHECK_FALSE(parse_volume_flag(tmp.string() + ":/workspace/a:rw", "/workspace").readonly);
  CHECK(parse_volume_flag(tmp.string() + ":/opt/data", "/workspace").guest_path == "/workspace/opt/data");
  CHECK(error_of([&] { parse_volume_flag(tmp.string() + ":src:rx", "/workspace"); }).find("mode must be ro or rw") != std::string::npos);
  CHECK(error_of([] { parse_volume_flag("/nonexistent-dir:src", "/workspace"); }).find("no such folder") != std::string::npos);
  CHECK(error_of([] { parse_volume_flag("justone", "/workspace"); }).find("expected HOST:GUEST") != std::string::npos);
  CHECK(error_of([&] { parse_volume_flag(tmp.string() + ":", "/workspace"); }).find("empty") != std::string::npos);
}

TEST_CASE("-e K=V and K") {
  CHECK(parse_env_flag("A=b=c") == std::pair<std::string, std::string>{"A", "b=c"});
  CHECK(parse_env_flag("A=") == std::pair<std::string, std::string>{"A", ""});
  CHECK(parse_env_flag("HOME2", env_with("HOME2", "/h")).second == "/h");
  CHECK(error_of([] { parse_env_flag("1A=b"); }).find("invalid environment variable name") != std::string::npos);
}

TEST_CASE("overrides merge over the file") {
  Policy p = load_policy_text(
      "resources: {cpus: 2}\nnetwork: {allowed_hosts: [a.com], secrets: {K: {value: old, hosts: [a.com]}}}\n"
      "env: {A: file}\n",
      "p.yaml", fs::temp_directory_path(), env_with("X", "y"));
  CliOverrides o;
  o.allow_hosts = {"b.com:443"};
  o.secrets = {"K=new@b.com"};
  o.env = {"A=flag", "B=2"};
  o.memory = "2G";
  o.timeout = "90s";
  apply_overrides(p, o, env_with("X", "y"));
  CHECK(p.resources.cpus == 2);  // untouched
  CHECK(p.resources.memory_mb == 2048);
  CHECK(p.resources.timeout_seconds == 90);
  REQUIRE(p.network.allowed_hosts.size() == 2);
  CHECK(p.network.allowed_hosts[1].to_string() == "b.com:443");
  REQUIRE(p.network.secrets.size() == 1);
  CHECK(p.network.secrets[0].value.reveal() == "new");
  CHECK(p.env.at("A") == "flag");
  CHECK(p.env.at("B") == "2");

  CliOverrides bad;
  bad.memory = "12";
  CHECK(error_of([&] { apply_overrides(p, bad, env_with("X", "y")); }).starts_with("--memory \"12\": memory must be between"));
  CliOverrides bad_cpus;
  bad_cpus.cpus = "many";
  CHECK(error_of([&] { apply_overrides(p, bad_cpus, env_with("X", "y")); }).starts_with("--cpus \"many\""));
  CliOverrides bad_host;
  bad_host.allow_hosts = {"a.com@evil.com"};
  CHECK(error_of([&] { apply_overrides(p, bad_host, env_with("X", "y")); }).starts_with("--allow-host"));
}
