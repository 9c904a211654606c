// Normalised output: defaults filled in, canonical patterns, secrets redacted.
#include <doctest/doctest.h>

#include <filesystem>

#include "policy/loader.hpp"
#include "policy/serialize.hpp"

using namespace airlock::policy;

TEST_CASE("secret values never appear in normalised output") {
  Policy p = load_policy_text(
      "network: {allowed_hosts: [API.Example.com.], secrets: {K: {value: hunter2-secret, hosts: [api.example.com]}}}",
      "p.yaml", std::filesystem::temp_directory_path(), [](const std::string&) { return std::nullopt; });
  std::string yaml = to_yaml(p);
  std::string json = to_json(p).dump();
  CHECK(yaml.find("hunter2-secret") == std::string::npos);
  CHECK(json.find("hunter2-secret") == std::string::npos);
  CHECK(json.find("[REDACTED]") != std::string::npos);
  CHECK(to_json(p)["network"]["allowed_hosts"][0] == "api.example.com");
  CHECK(to_json(p)["resources"]["memory_mb"] == 512);
  CHECK(to_json(p)["vfs"]["workspace"] == "/workspace");
}

TEST_CASE("normalised YAML loads back to the same policy") {
  Policy p = load_policy_text("resources: {cpus: 2, memory_mb: 1G}\nnetwork: {allowed_hosts: [a.com:443, '*.b.com']}\nenv: {A: x}\n",
                              "p.yaml", std::filesystem::temp_directory_path(),
                              [](const std::string&) { return std::nullopt; });
  Policy again = load_policy_text(to_yaml(p), "again.yaml", std::filesystem::temp_directory_path(),
                                  [](const std::string&) { return std::nullopt; });
  CHECK(to_json(again) == to_json(p));
}

TEST_CASE("the audit section round-trips") {
  Policy p = load_policy_text("audit: {on_overflow: drop, queue_events: 64}\n", "p.yaml",
                              std::filesystem::temp_directory_path(),
                              [](const std::string&) { return std::nullopt; });
  CHECK(to_json(p)["audit"]["on_overflow"] == "drop");
  CHECK(to_json(p)["audit"]["queue_events"] == 64);
  Policy again = load_policy_text(to_yaml(p), "again.yaml", std::filesystem::temp_directory_path(),
                                  [](const std::string&) { return std::nullopt; });
  CHECK(again.audit.on_overflow == AuditOverflow::kDrop);
  CHECK(again.audit.queue_events == 64);
}
