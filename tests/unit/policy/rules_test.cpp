// network.rules: loading (with precise errors), first-match judgement of requests by
// host, port, method and normalised path, admission of flows and names before a request
// is known, and the round trip through the normalised form.
#include <doctest/doctest.h>

#include <filesystem>

#include "policy/evaluator.hpp"
#include "policy/loader.hpp"
#include "policy/serialize.hpp"

using namespace airlock::policy;

namespace {

Policy load(const std::string& yaml) {
  return load_policy_text(yaml, "p.yaml", std::filesystem::temp_directory_path(),
                          [](const std::string&) { return std::nullopt; });
}

std::string error_of(const std::string& yaml) {
  try {
    load(yaml);
  } catch (const PolicyError& e) {
    return e.what();
  }
  return "";
}

struct Judge {
  Policy policy;
  Evaluator evaluator;
  explicit Judge(const std::string& yaml) : policy(load(yaml)), evaluator(policy.network) {}
  Decision request(const std::string& host, std::uint16_t port, const std::string& method,
                   const std::string& target) const {
    return evaluator.evaluate_request(Host{host}, port, method, target);
  }
  Decision flow(const std::string& host, std::uint16_t port) const { return evaluator.evaluate(Host{host}, port); }
};

const char* kGit = R"(
network:
  rules:
    - {host: github.com, methods: [GET], paths: ["/*/info/refs", "/*/git-upload-pack"]}
    - {host: github.com, paths: ["/*/git-receive-pack"], action: deny, name: no-push}
    - {host: github.com, methods: [POST], paths: ["/*/git-upload-pack"]}
    - {host: api.example.com, action: allow}
    - {host: "*.example.com", ports: [443], methods: [POST], action: deny}
  allowed_hosts: [pypi.org, "*.example.com"]
)";

}  // namespace

TEST_CASE("rules load with their fields normalised") {
  Policy p = load(kGit);
  REQUIRE(p.network.rules.size() == 5);
  const NetworkRule& first = p.network.rules[0];
  CHECK(first.host.to_string() == "github.com");
  CHECK(first.methods == std::vector<std::string>{"GET"});
  CHECK(first.paths.size() == 2);
  CHECK(first.action == NetworkRule::Action::allow);
  CHECK(first.http_only());
  CHECK(p.network.rules[1].name == "no-push");
  CHECK(p.network.rules[1].action == NetworkRule::Action::deny);
  CHECK_FALSE(p.network.rules[3].http_only());
  CHECK(p.network.rules[4].ports == std::vector<std::uint16_t>{443});
  Policy lower = load("network: {rules: [{host: a.com, methods: [get, Get, POST], ports: [443, 80, 443]}]}");
  CHECK(lower.network.rules[0].methods == std::vector<std::string>{"GET", "POST"});
  CHECK(lower.network.rules[0].ports == std::vector<std::uint16_t>{80, 443});
}

TEST_CASE("bad rules are errors naming file, line, column and key") {
  CHECK(error_of("network:\n  rules:\n    - {host: a.com, paths: [\"x/*\"]}\n") ==
        "p.yaml:3:29: network.rules[0].paths[0]: invalid path glob \"x/*\": a path glob starts with /");
  CHECK(error_of("network:\n  rules:\n    - {host: a.com, methods: [\"GE T\"]}\n") ==
        "p.yaml:3:31: network.rules[0].methods[0]: invalid HTTP method \"GE T\"");
  CHECK(error_of("network:\n  rules:\n    - {host: a.com, ports: [0]}\n") ==
        "p.yaml:3:29: network.rules[0].ports[0]: expected a port number (1-65535), found \"0\"");
  CHECK(error_of("network:\n  rules:\n    - {host: a.com, ports: [70000]}\n").find("expected a port number") !=
        std::string::npos);
  CHECK(error_of("network:\n  rules:\n    - {host: a.com, action: maybe}\n") ==
        "p.yaml:3:29: network.rules[0].action: expected allow or deny, found \"maybe\"");
  CHECK(error_of("network:\n  rules:\n    - {host: a.com, action: ask}\n").find("needs an approver") !=
        std::string::npos);
  CHECK(error_of("network:\n  rules:\n    - {paths: [/a]}\n") ==
        "p.yaml:3:7: network.rules[0]: missing host: a rule names the host pattern it covers");
  CHECK(error_of("network:\n  rules:\n    - {host: \"a*.com\"}\n").find("network.rules[0].host: invalid host pattern") !=
        std::string::npos);
  CHECK(error_of("network:\n  rules:\n    - {host: \"a.com:443\", ports: [443]}\n").find("not both") !=
        std::string::npos);
  CHECK(error_of("network:\n  rules:\n    - {host: a.com, method: [GET]}\n").find("(did you mean \"methods\"?)") !=
        std::string::npos);
  CHECK(error_of("network:\n  rules:\n    - {host: a.com, name: x}\n    - {host: b.com, name: x}\n")
            .find("network.rules[1].name: rule name \"x\" is used twice") != std::string::npos);
  CHECK(error_of("network:\n  rules:\n    - {host: a.com, paths: []}\n").find("matches nothing") != std::string::npos);
  CHECK(error_of("network:\n  rules:\n    - a.com\n").find("network.rules[0]: expected a mapping") != std::string::npos);
  CHECK(error_of("network:\n  rules:\n    - {host: a.com, paths: [\"/a/../b\"]}\n").find("invalid path glob") !=
        std::string::npos);
}

TEST_CASE("requests: the first rule that covers host, port, method and path decides") {
  Judge j(kGit);
  Decision fetch = j.request("github.com", 443, "GET", "/owner/repo.git/info/refs?service=git-upload-pack");
  CHECK(fetch.allowed);
  CHECK(fetch.rule.to_string() == "rules: [0] github.com");
  CHECK(j.request("github.com", 443, "POST", "/owner/repo.git/git-upload-pack").allowed);
  Decision push = j.request("github.com", 443, "POST", "/owner/repo.git/git-receive-pack");
  CHECK_FALSE(push.allowed);
  CHECK(push.reason == reason::denied_by_rule);
  CHECK(push.rule.to_string() == "rules: no-push");
  // Nothing covers it and github.com is not in allowed_hosts.
  Decision other = j.request("github.com", 443, "GET", "/owner/repo");
  CHECK_FALSE(other.allowed);
  CHECK(other.reason == reason::host_not_allowed);
  // An unconditional rule, then a method rule before the allowlist.
  CHECK(j.request("api.example.com", 443, "DELETE", "/x").allowed);
  Decision post = j.request("www.example.com", 443, "POST", "/form");
  CHECK(post.reason == reason::denied_by_rule);
  CHECK(j.request("www.example.com", 443, "GET", "/form").allowed);
  CHECK(j.request("www.example.com", 443, "GET", "/form").rule.to_string() == "allowed_hosts: *.example.com");
  CHECK(j.request("www.example.com", 8443, "POST", "/form").allowed);  // the rule names 443 only
  CHECK(j.request("pypi.org", 443, "PUT", "/simple").allowed);
}

TEST_CASE("paths are judged in normal form; spellings of a denied path are denied") {
  Judge j(kGit);
  for (const char* target : {"/o/r/git-receive-pack", "/o/r/./git-receive-pack", "//o/r//git-receive-pack",
                             "/o/x/../r/git-receive-pack", "/o/r/%67it-receive-pack", "/o/r/git%2Dreceive%2dpack",
                             "/o/r/%2e/git-receive-pack", "/o%2Fr/git-receive-pack", "/o/r/git-receive-pack?x=1"}) {
    Decision d = j.request("github.com", 443, "POST", target);
    CHECK_MESSAGE(d.reason == reason::denied_by_rule, target);
  }
  // Methods compare case-insensitively: "post" is POST to many origins.
  CHECK(j.request("www.example.com", 443, "post", "/form").reason == reason::denied_by_rule);
  // A path that can't be put in normal form is refused by the first rule that needs it.
  for (const char* target : {"/o/r\\git-receive-pack", "/o/r/%5Cgit", "/../etc", "/a%00", "/a%zz", "*", "o/r"}) {
    Decision d = j.request("github.com", 443, "GET", target);
    CHECK_MESSAGE(d.reason == reason::unsafe_path, target);
    CHECK_FALSE(d.detail.empty());
  }
  // No rule with paths covers pypi.org: its paths are not judged at all.
  CHECK(j.request("pypi.org", 443, "GET", "/a\\b").allowed);
}

TEST_CASE("blocked_hosts and the IP guard keep their places around rules") {
  Judge j(R"(
network:
  blocked_hosts: [bad.example.com]
  rules:
    - {host: "*.example.com"}
    - {host: "10.0.0.5"}
)");
  CHECK(j.request("bad.example.com", 443, "GET", "/").reason == reason::blocked_host);
  CHECK(j.request("ok.example.com", 443, "GET", "/").allowed);
  CHECK(j.evaluator.evaluate(Host::parse("10.0.0.5").value(), 443).reason == reason::private_address);
  auto resolved = IpAddress::parse("127.0.0.1");
  CHECK(j.evaluator.evaluate(Host{"ok.example.com"}, 443, resolved).reason == reason::private_address);
}

TEST_CASE("flows: admission before any request, and which rules let opaque bytes through") {
  Judge j(R"(
network:
  rules:
    - {host: git.test, paths: ["/*/git-receive-pack"], action: deny}
    - {host: git.test, ports: [22]}
    - {host: db.test, ports: [5432]}
    - {host: api.test, methods: [GET]}
    - {host: gone.test, action: deny}
  allowed_hosts: ["git.test:443", "gone.test"]
)");
  Decision git22 = j.flow("git.test", 22);
  CHECK(git22.allowed);
  CHECK_FALSE(git22.rule.names_port);  // a path rule might have refused what opaque bytes carry
  Decision git443 = j.flow("git.test", 443);
  CHECK(git443.allowed);
  CHECK(git443.rule.to_string() == "allowed_hosts: git.test:443");
  CHECK_FALSE(git443.rule.names_port);
  Decision db = j.flow("db.test", 5432);
  CHECK(db.allowed);
  CHECK(db.rule.names_port);
  CHECK_FALSE(j.flow("db.test", 5433).allowed);
  Decision api = j.flow("api.test", 443);
  CHECK(api.allowed);  // admitted for HTTP; each request is judged
  CHECK_FALSE(api.rule.names_port);
  CHECK(j.request("api.test", 443, "POST", "/").reason == reason::host_not_allowed);
  CHECK(j.flow("gone.test", 443).reason == reason::denied_by_rule);  // before allowed_hosts
}

TEST_CASE("the normalised form round-trips through the loader") {
  Policy p = load(kGit);
  std::string yaml = to_yaml(p);
  Policy back = load(yaml);
  REQUIRE(back.network.rules.size() == p.network.rules.size());
  for (std::size_t i = 0; i < p.network.rules.size(); ++i) {
    const NetworkRule& a = p.network.rules[i];
    const NetworkRule& b = back.network.rules[i];
    CHECK(a.host.to_string() == b.host.to_string());
    CHECK(a.ports == b.ports);
    CHECK(a.methods == b.methods);
    CHECK(a.paths == b.paths);
    CHECK(a.action == b.action);
    CHECK(a.name == b.name);
  }
  CHECK(to_yaml(back) == yaml);
  CHECK(to_json(p)["network"]["rules"][1]["name"] == "no-push");
  CHECK(to_json(p)["network"]["rules"][1]["action"] == "deny");
}
