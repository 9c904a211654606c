// Network decisions: blocklist over allowlist, the IP guard on literal and resolved
// addresses, allow_private exceptions, and the stable reason codes.
#include <doctest/doctest.h>

#include <filesystem>

#include "policy/evaluator.hpp"
#include "policy/loader.hpp"
#include "policy/url.hpp"

using namespace airlock::policy;

namespace {

Evaluator evaluator(const std::string& yaml) {
  static Policy keep;  // Evaluator copies what it needs; keep is only for the load
  keep = load_policy_text(yaml, "p.yaml", std::filesystem::temp_directory_path(),
                          [](const std::string&) { return std::nullopt; });
  return Evaluator(keep.network);
}

Decision eval_url(const Evaluator& e, const std::string& url, const char* resolved = nullptr) {
  auto target = parse_url(url);
  REQUIRE_MESSAGE(target.ok(), url);
  std::optional<IpAddress> ip;
  if (resolved) ip = IpAddress::parse(resolved);
  return e.evaluate(target->host, target->port, ip);
}

}  // namespace

TEST_CASE("allowlist, wildcard and port rules") {
  Evaluator e = evaluator(R"(network: {allowed_hosts: ["api.openai.com", "*.githubusercontent.com", "pypi.org:443"]})");
  CHECK(eval_url(e, "https://api.openai.com/v1").allowed);
  CHECK(eval_url(e, "https://API.OPENAI.COM./v1").allowed);
  CHECK(eval_url(e, "https://api.openai.com/v1").rule.to_string() == "allowed_hosts: api.openai.com");
  CHECK(eval_url(e, "https://raw.githubusercontent.com/x").allowed);
  CHECK_FALSE(eval_url(e, "https://githubusercontent.com/x").allowed);  // apex not listed
  CHECK(eval_url(e, "https://pypi.org/simple").allowed);
  CHECK_FALSE(eval_url(e, "http://pypi.org/simple").allowed);  // port 80
  CHECK(eval_url(e, "http://pypi.org/simple").reason == reason::host_not_allowed);
}

TEST_CASE("look-alike spellings never match") {
  Evaluator e = evaluator(R"(network: {allowed_hosts: ["allowed.com"]})");
  for (const char* url : {"https://allowed.com.evil.com/", "https://evilallowed.com/",
                          "https://allowed.com@evil.com/", "https://user:allowed.com@evil.com/",
                          "https://sub.allowed.com/"}) {
    CAPTURE(std::string(url));
    Decision d = eval_url(e, url);
    CHECK_FALSE(d.allowed);
    CHECK(d.reason == reason::host_not_allowed);
  }
  CHECK(eval_url(e, "https://evil.com@allowed.com/").allowed);  // userinfo is not the host
}

TEST_CASE("blocked_hosts wins over the allowlist") {
  Evaluator e = evaluator(R"(network: {allowed_hosts: ["*.example.com"], blocked_hosts: ["ads.example.com"]})");
  CHECK(eval_url(e, "https://www.example.com/").allowed);
  Decision d = eval_url(e, "https://ads.example.com/");
  CHECK_FALSE(d.allowed);
  CHECK(d.reason == reason::blocked_host);
  CHECK(d.rule.to_string() == "blocked_hosts: ads.example.com");
  CHECK(d.rule.source == Rule::Source::blocked_hosts);
}

TEST_CASE("resolved addresses go through the IP guard") {
  Evaluator e = evaluator(R"(network: {allowed_hosts: ["api.example.com", "*"]})");
  CHECK(eval_url(e, "https://api.example.com/", "93.184.216.34").allowed);
  for (const char* ip : {"127.0.0.1", "10.0.0.5", "169.254.169.254", "::1", "::ffff:10.0.0.1",
                         "100.64.0.1", "fd00::1"}) {
    CAPTURE(std::string(ip));
    Decision d = eval_url(e, "https://api.example.com/", ip);
    CHECK_FALSE(d.allowed);
    CHECK(d.reason == reason::private_address);
  }
  CHECK(eval_url(e, "https://api.example.com/", "100.63.255.255").allowed);
  CHECK(eval_url(e, "https://api.example.com/", "100.128.0.0").allowed);
}

TEST_CASE("literal IPs are judged as IPs in every spelling") {
  Evaluator e = evaluator(R"(network: {allowed_hosts: ["*"]})");
  for (const char* url : {"http://127.0.0.1/", "http://2130706433/", "http://0x7f.1/",
                          "http://0177.0.0.1/", "http://127.1/", "http://[::1]/",
                          "http://[::ffff:127.0.0.1]/", "http://169.254.169.254/latest/meta-data"}) {
    CAPTURE(std::string(url));
    Decision d = eval_url(e, url);
    CHECK_FALSE(d.allowed);
    CHECK(d.reason == reason::private_address);
    REQUIRE(d.address);
  }
  CHECK(eval_url(e, "http://8.8.8.8/").allowed);
}

TEST_CASE("a public literal IP still needs an allow rule") {
  Evaluator e = evaluator(R"(network: {allowed_hosts: ["example.com", "203.0.113.0/24"]})");
  Decision d = eval_url(e, "http://8.8.8.8/");
  CHECK_FALSE(d.allowed);
  CHECK(d.reason == reason::host_not_allowed);
}

TEST_CASE("allow_private exceptions by CIDR and by name") {
  Evaluator e = evaluator(R"(network:
  allowed_hosts: ["api.test", "other.test", "127.0.0.1"]
  allow_private: ["127.0.0.1/32", "api.test"])");
  CHECK(eval_url(e, "http://127.0.0.1:8080/").allowed);
  CHECK(eval_url(e, "http://api.test/", "10.1.2.3").allowed);      // by name
  CHECK(eval_url(e, "http://other.test/", "127.0.0.1").allowed);   // by CIDR
  CHECK_FALSE(eval_url(e, "http://other.test/", "10.1.2.3").allowed);
}

TEST_CASE("block_private_ips: false turns the guard off") {
  Evaluator e = evaluator(R"(network: {allowed_hosts: ["*"], block_private_ips: false})");
  Decision d = eval_url(e, "http://10.0.0.1/");
  CHECK(d.allowed);
  CHECK(d.rule.to_string() == "allowed_hosts: *");
  CHECK_FALSE(d.rule.names_port);
  REQUIRE(d.verdict);
  CHECK(d.verdict->address_class == AddressClass::private_network);
}

TEST_CASE("an empty allowlist allows nothing") {
  Evaluator e = evaluator("");
  CHECK_FALSE(eval_url(e, "https://example.com/").allowed);
  CHECK_FALSE(eval_url(e, "http://8.8.8.8/").allowed);
}
