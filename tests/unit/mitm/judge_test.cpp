// RequestJudge decisions, called directly on request heads (no sockets, no TLS).
#include <doctest/doctest.h>

#include "policy/evaluator.hpp"
#include "policy/secret_store.hpp"
#include "proxy/mitm/judge.hpp"
#include "tests/unit/mitm/harness.hpp"

namespace airlock::mitm::testing {
namespace {

struct Judging {
  policy::NetworkPolicy network;
  std::shared_ptr<policy::PolicyEngine> engine;
  std::unique_ptr<RequestJudge> judge;

  explicit Judging(std::string lua = "", std::vector<policy::NetworkRule> rules = {}) {
    network.rules = std::move(rules);
    network.allowed_hosts = {pattern("api.test"), pattern("*.cdn.test:443")};
    network.blocked_hosts = {pattern("bad.cdn.test")};
    policy::Secret secret;
    secret.name = "TOKEN";
    secret.value = policy::SecretValue("s3cr3t");
    secret.placeholder = "PLACEHOLDER_TOKEN_0123456789";
    secret.hosts = {pattern("api.test")};
    network.secrets.push_back(secret);
    std::unique_ptr<policy::PolicyScript> script;
    if (!lua.empty()) {
      auto loaded = policy::PolicyScript::load_source(lua, "test.lua");
      REQUIRE(loaded.ok());
      script = std::move(*loaded);
    }
    engine = policy::PolicyEngine::create(network, std::move(script));
    judge = std::make_unique<RequestJudge>(*engine);
  }

  const policy::SecretStore& secrets() const { return engine->secrets(); }

  Verdict run(const std::string& flow_host, std::uint16_t port, bool tls, http::RequestHead& head,
              std::optional<std::string> sni = std::nullopt) {
    FlowTarget flow;
    flow.host = host(flow_host);
    flow.port = port;
    flow.rule = policy::Rule{policy::Rule::Source::allowed_hosts, flow_host};
    flow.tls = tls;
    if (sni) flow.sni = host(*sni);
    auto set = engine->secrets().request_matches(flow.host, port, tls);
    return judge->judge(flow, head, set.get());
  }
};

http::RequestHead get(std::string target, std::vector<http::Header> headers) {
  http::RequestHead head;
  head.method = "GET";
  head.target = std::move(target);
  head.version_minor = 1;
  head.headers = std::move(headers);
  return head;
}

TEST_CASE("judge: agreement between flow, SNI, Host and target") {
  Judging j;
  auto ok = get("/", {{"Host", "API.test."}});
  CHECK(j.run("api.test", 443, true, ok, "api.test").allowed);

  auto port_rewrite = get("/", {{"Host", "api.test:8443"}});
  auto v = j.run("api.test", 443, true, port_rewrite, "api.test");
  CHECK_FALSE(v.allowed);
  CHECK(v.reason == "sni_host_mismatch");

  auto fronted = get("/", {{"Host", "x.cdn.test"}});
  v = j.run("api.test", 443, true, fronted, "api.test");
  CHECK(v.reason == "sni_host_mismatch");

  auto plain = get("/", {{"Host", "x.cdn.test"}});
  v = j.run("api.test", 80, false, plain);
  CHECK(v.reason == "host_mismatch");

  auto absolute = get("http://api.test/p?q=1", {{"Host", "api.test"}});
  v = j.run("api.test", 80, false, absolute);
  CHECK(v.allowed);
  CHECK(absolute.target == "/p?q=1");  // origin-form toward upstream

  auto absolute_other = get("http://x.cdn.test/", {{"Host", "api.test"}});
  CHECK(j.run("api.test", 80, false, absolute_other).reason == "host_mismatch");

  auto connect = get("api.test:443", {{"Host", "api.test"}});
  connect.method = "CONNECT";
  CHECK(j.run("api.test", 443, true, connect, "api.test").reason == "unsupported_method");
}

TEST_CASE("judge: allowlist, blocklist and ports per request") {
  Judging j;
  auto blocked = get("/", {{"Host", "bad.cdn.test"}});
  auto v = j.run("bad.cdn.test", 443, true, blocked, "bad.cdn.test");
  CHECK(v.reason == "blocked_host");
  auto wrong_port = get("/", {{"Host", "a.cdn.test:8443"}});
  v = j.run("a.cdn.test", 8443, true, wrong_port, "a.cdn.test");
  CHECK(v.reason == "host_not_allowed");
  auto fine = get("/x", {{"Host", "a.cdn.test"}});
  v = j.run("a.cdn.test", 443, true, fine, "a.cdn.test");
  CHECK(v.allowed);
  CHECK(v.rule == "allowed_hosts: *.cdn.test:443");
  CHECK(v.url == "https://a.cdn.test/x");
}

TEST_CASE("judge: secrets are swapped only on TLS to their hosts") {
  Judging j;
  auto head = get("/v1?key=PLACEHOLDER_TOKEN_0123456789",
                  {{"Host", "api.test"}, {"Authorization", "Bearer PLACEHOLDER_TOKEN_0123456789"}});
  auto v = j.run("api.test", 443, true, head, "api.test");
  REQUIRE(v.allowed);
  CHECK(head.target == "/v1?key=s3cr3t");
  CHECK(head.headers[1].value == "Bearer s3cr3t");
  REQUIRE(v.swaps.size() == 2);
  CHECK(v.swaps[0].location == "url");
  CHECK(v.swaps[1].location == "header:authorization");
  CHECK(v.url == "https://api.test/v1?key=[REDACTED]");

  auto plain = get("/", {{"Host", "api.test"}, {"X", "PLACEHOLDER_TOKEN_0123456789"}});
  v = j.run("api.test", 80, false, plain);
  CHECK(v.reason == "secret_leak");
  CHECK(plain.headers[1].value == "PLACEHOLDER_TOKEN_0123456789");  // untouched

  auto elsewhere = get("/?t=PLACEHOLDER_TOKEN_0123456789", {{"Host", "a.cdn.test"}});
  v = j.run("a.cdn.test", 443, true, elsewhere, "a.cdn.test");
  CHECK(v.reason == "secret_leak");
  CHECK(v.detail.find("s3cr3t") == std::string::npos);
}

TEST_CASE("judge: a secret's real value bound elsewhere is a leak, in any form a client decodes") {
  Judging j;
  for (std::string carried : {"s3cr3t", "czNjcjN0", "x-s3cr3t-y"}) {
    auto head = get("/", {{"Host", "a.cdn.test"}, {"X-Data", carried}});
    auto v = j.run("a.cdn.test", 443, true, head, "a.cdn.test");
    CHECK_MESSAGE(v.reason == "secret_leak", carried);
    CHECK(v.detail.find("its real value") != std::string::npos);
    CHECK(v.detail.find("s3cr3t") == std::string::npos);
  }
  auto in_url = get("/upload?k=s3cr3t", {{"Host", "a.cdn.test"}});
  CHECK(j.run("a.cdn.test", 443, true, in_url, "a.cdn.test").reason == "secret_leak");
  // To its own host the value is no leak (the guest can't hold it, but a redirect may).
  auto home = get("/?echo=s3cr3t", {{"Host", "api.test"}});
  CHECK(j.run("api.test", 443, true, home, "api.test").allowed);
}

TEST_CASE("judge: a real value the guest writes into Host or the path is not echoed in the verdict") {
  // The verdict's host, URL and detail go into the guest's refusal and the audit trail.
  Judging j;
  auto host = get("/", {{"Host", "api.tes3cr3t"}});
  auto v = j.run("api.test", 443, true, host, "api.test");
  CHECK_FALSE(v.allowed);
  for (const std::string* text : {&v.host, &v.url, &v.detail}) CHECK(text->find("s3cr3t") == std::string::npos);
  auto path = get("/s3cr3t/x", {{"Host", "api.test"}});
  v = j.run("api.test", 443, true, path, "api.test");
  CHECK(v.allowed);
  CHECK(v.url.find("s3cr3t") == std::string::npos);
  CHECK(v.url.find("PLACEHOLDER_TOKEN_0123456789") != std::string::npos);
}

TEST_CASE("judge: rules see the request's method and normalised path, and run before the script") {
  policy::NetworkRule no_admin;
  no_admin.host = pattern("api.test");
  no_admin.paths = {"/admin/*"};
  no_admin.action = policy::NetworkRule::Action::deny;
  no_admin.name = "no-admin";
  policy::NetworkRule read_only;
  read_only.host = pattern("api.test");
  read_only.methods = {"GET"};
  Judging j("function on_request(req) return false, 'script saw it' end", {no_admin, read_only});
  auto admin = get("/x/..//admin/%75sers?q=1", {{"Host", "api.test"}});
  Verdict v = j.run("api.test", 443, true, admin, "api.test");
  CHECK_FALSE(v.allowed);
  CHECK(v.reason == "denied_by_rule");
  CHECK(v.rule == "rules: no-admin");
  CHECK(admin.target == "/x/..//admin/%75sers?q=1");  // refused: nothing rewritten

  // Absolute-form targets are judged by their path.
  auto absolute = get("https://api.test/admin/x", {});
  CHECK(j.run("api.test", 443, true, absolute, "api.test").reason == "denied_by_rule");

  auto unsafe = get("/a\\b", {{"Host", "api.test"}});
  v = j.run("api.test", 443, true, unsafe, "api.test");
  CHECK(v.reason == "unsafe_path");
  CHECK_FALSE(v.detail.empty());

  // Allowed by the rules, then the script has its say.
  auto fine = get("/ok", {{"Host", "api.test"}});
  v = j.run("api.test", 443, true, fine, "api.test");
  CHECK(v.reason == "policy_script");
  CHECK(v.detail == "script saw it");
  CHECK(v.rule == "rules: [1] api.test");
}

TEST_CASE("judge: the policy script can deny, never allow") {
  Judging j("function on_request(r)\n"
            "  if r.method == 'DELETE' then return false, 'no deletes' end\n"
            "  if r.headers['x-mode'] == 'deny' then return false end\n"
            "end\n");
  auto del = get("/", {{"Host", "api.test"}});
  del.method = "DELETE";
  auto v = j.run("api.test", 443, true, del, "api.test");
  CHECK(v.reason == "policy_script");
  CHECK(v.detail == "no deletes");
  auto header = get("/", {{"Host", "api.test"}, {"X-Mode", "deny"}});
  CHECK(j.run("api.test", 443, true, header, "api.test").reason == "policy_script");
  auto fine = get("/", {{"Host", "api.test"}});
  CHECK(j.run("api.test", 443, true, fine, "api.test").allowed);
  auto outside = get("/", {{"Host", "nowhere.test"}});
  CHECK(j.run("nowhere.test", 443, true, outside, "nowhere.test").reason == "host_not_allowed");
}

TEST_CASE("judge: TRACE, non-WebSocket upgrades, placeholder header names, Host port") {
  Judging j;
  auto trace = get("/", {{"Host", "api.test"}});
  trace.method = "TRACE";
  CHECK(j.run("api.test", 443, true, trace, "api.test").reason == "unsupported_method");

  auto h2c = get("/", {{"Host", "api.test"}, {"Connection", "Upgrade"}, {"Upgrade", "h2c"}});
  h2c.upgrade = true;
  CHECK(j.run("api.test", 443, true, h2c, "api.test").reason == "h2c_refused");
  auto irc = get("/", {{"Host", "api.test"}, {"Connection", "Upgrade"}, {"Upgrade", "irc/6.9"}});
  irc.upgrade = true;
  CHECK(j.run("api.test", 443, true, irc, "api.test").reason == "unsupported_upgrade");
  auto ws = get("/", {{"Host", "api.test"}, {"Connection", "Upgrade"}, {"Upgrade", "WebSocket"}});
  ws.upgrade = true;
  CHECK(j.run("api.test", 443, true, ws, "api.test").allowed);

  auto named = get("/", {{"Host", "a.cdn.test"}, {"PLACEHOLDER_TOKEN_0123456789", "1"}});
  CHECK(j.run("a.cdn.test", 443, true, named, "a.cdn.test").reason == "secret_leak");
  auto named_home = get("/", {{"Host", "api.test"}, {"PLACEHOLDER_TOKEN_0123456789", "1"}});
  CHECK(j.run("api.test", 443, true, named_home, "api.test").reason == "secret_leak");

  auto absolute = get("http://api.test/", {{"Host", "api.test:8080"}});
  CHECK(j.run("api.test", 80, false, absolute).reason == "host_mismatch");
}

}  // namespace
}  // namespace airlock::mitm::testing
