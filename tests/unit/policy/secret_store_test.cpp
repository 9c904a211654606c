// SecretStore and BodySubstituter: placeholder shape and uniqueness, where real values
// may go (host, port, TLS), leaks, and streaming substitution under every split.
#include <doctest/doctest.h>

#include <random>
#include <set>
#include <string>
#include <vector>

#include "policy/secret_store.hpp"

using namespace airlock::policy;

namespace {

std::vector<HostPattern> patterns(std::initializer_list<const char*> texts) {
  std::vector<HostPattern> out;
  for (const char* text : texts) {
    auto pattern = HostPattern::parse(text);
    REQUIRE(pattern.ok());
    out.push_back(*pattern);
  }
  return out;
}

Secret secret(std::string name, std::string value, std::vector<HostPattern> hosts,
              std::optional<std::string> placeholder = std::nullopt) {
  Secret s;
  s.name = std::move(name);
  s.value = SecretValue(std::move(value));
  s.placeholder = std::move(placeholder);
  s.hosts = std::move(hosts);
  return s;
}

Host host(const char* text) {
  auto parsed = Host::parse(text);
  REQUIRE(parsed.ok());
  return *parsed;
}

std::span<const std::uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::string text(const std::vector<std::uint8_t>& v) { return {v.begin(), v.end()}; }

// Two secrets: OPENAI for api.openai.com (any port), GH for github.com on 443 only.
SecretStore two_secrets() {
  return SecretStore({secret("GH_TOKEN", "ghp_real_value", patterns({"github.com:443"})),
                      secret("OPENAI_API_KEY", "sk-real-openai", patterns({"api.openai.com", "*.openai.azure.com"}))});
}

const std::string& placeholder_of(const SecretStore& store, std::string_view name) {
  for (const auto& entry : store.entries())
    if (entry.name == name) return entry.placeholder;
  FAIL("no entry " << name);
  static const std::string none;
  return none;
}

}  // namespace

TEST_CASE("random placeholders: prefix, 32 hex characters, unique, no name inside") {
  const SecretStore store = two_secrets();
  REQUIRE(store.entries().size() == 2);
  std::set<std::string> seen;
  for (const auto& entry : store.entries()) {
    const std::string& p = entry.placeholder;
    CHECK(p.starts_with(SecretStore::kPlaceholderPrefix));
    REQUIRE(p.size() == SecretStore::kPlaceholderPrefix.size() + 32);
    for (char c : p.substr(SecretStore::kPlaceholderPrefix.size()))
      CHECK(((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')));
    CHECK(p.find(entry.name) == std::string::npos);
    CHECK(p.find(entry.value.reveal()) == std::string::npos);
    seen.insert(p);
  }
  CHECK(seen.size() == 2);
  CHECK(store.max_placeholder_size() == SecretStore::kPlaceholderPrefix.size() + 32);

  // Per VM: another store draws other placeholders.
  const SecretStore other = two_secrets();
  CHECK(placeholder_of(other, "GH_TOKEN") != placeholder_of(store, "GH_TOKEN"));
}

TEST_CASE("a fixed placeholder is kept; guest_env maps names to placeholders") {
  const SecretStore store({secret("A_KEY", "real-a", patterns({"a.test"}), "MY_FIXED_PLACEHOLDER"),
                           secret("B_KEY", "real-b", patterns({"b.test"}))});
  const auto env = store.guest_env();
  REQUIRE(env.size() == 2);
  CHECK(env.at("A_KEY") == "MY_FIXED_PLACEHOLDER");
  CHECK(env.at("B_KEY") == placeholder_of(store, "B_KEY"));
  CHECK(env.at("B_KEY").starts_with("AIRLOCK_PLACEHOLDER_"));
  CHECK(store.entries()[0].name == "A_KEY");  // policy order kept
  CHECK(store.max_placeholder_size() == env.at("B_KEY").size());
}

TEST_CASE("placeholders never equal or contain one another") {
  // Fixed ones that clash are the user's mistake; the message names secrets, not values.
  try {
    SecretStore store({secret("A", "value-a-123", patterns({"a.test"}), "PLACEHOLDER_X"),
                       secret("B", "value-b-456", patterns({"b.test"}), "MY_PLACEHOLDER_X_2")});
    FAIL("expected PolicyError");
  } catch (const PolicyError& e) {
    const std::string what = e.what();
    CHECK(what.find("A and B") != std::string::npos);
    CHECK(what.find("value-") == std::string::npos);
  }
  CHECK_THROWS_AS(SecretStore({secret("A", "1", patterns({"a.test"}), "SAME_PLACEHOLDER"),
                               secret("B", "2", patterns({"b.test"}), "SAME_PLACEHOLDER")}),
                  PolicyError);

  // A random draw that clashes is drawn again.
  int calls = 0;
  auto repeating = [&](std::size_t n) {
    ++calls;
    return std::string(n, calls <= 2 ? 'a' : 'b');
  };
  const SecretStore redrawn({secret("A", "1", patterns({"a.test"})), secret("B", "2", patterns({"b.test"}))},
                            repeating);
  CHECK(placeholder_of(redrawn, "A") == "AIRLOCK_PLACEHOLDER_" + std::string(32, 'a'));
  CHECK(placeholder_of(redrawn, "B") == "AIRLOCK_PLACEHOLDER_" + std::string(32, 'b'));
  CHECK(calls == 3);

  // A draw clashing with a fixed placeholder is drawn again too.
  calls = 0;
  const SecretStore around_fixed(
      {secret("A", "1", patterns({"a.test"})),
       secret("B", "2", patterns({"b.test"}), "AIRLOCK_PLACEHOLDER_" + std::string(32, 'a'))},
      repeating);
  CHECK(placeholder_of(around_fixed, "A") == "AIRLOCK_PLACEHOLDER_" + std::string(32, 'b'));

  // A source that never yields a unique (or valid) value is a setup error.
  CHECK_THROWS_AS(SecretStore({secret("A", "1", patterns({"a.test"})), secret("B", "2", patterns({"b.test"}))},
                              [](std::size_t n) { return std::string(n, '7'); }),
                  PolicyError);
  CHECK_THROWS_AS(SecretStore({secret("A", "1", patterns({"a.test"}))},
                              [](std::size_t) { return std::string("not hex"); }),
                  PolicyError);
}

TEST_CASE("substitute in a header value and a URL for an authorized host") {
  const SecretStore store = two_secrets();
  const std::string openai = placeholder_of(store, "OPENAI_API_KEY");

  std::string header = "Bearer " + openai;
  auto scan = store.substitute(header, host("api.openai.com"), 443, true);
  CHECK(header == "Bearer sk-real-openai");
  CHECK(scan.swapped == std::vector<std::string>{"OPENAI_API_KEY"});
  CHECK_FALSE(scan.leaked);

  std::string url = "/v1/models?key=" + openai + "&again=" + openai;
  scan = store.substitute(url, host("x.openai.azure.com"), 8443, true);
  CHECK(url == "/v1/models?key=sk-real-openai&again=sk-real-openai");
  CHECK(scan.swapped == std::vector<std::string>{"OPENAI_API_KEY"});

  std::string plain = "no placeholders here, AIRLOCK_PLACEHOLDER_ alone";
  scan = store.substitute(plain, host("evil.test"), 443, true);
  CHECK(plain == "no placeholders here, AIRLOCK_PLACEHOLDER_ alone");
  CHECK(scan.swapped.empty());
  CHECK_FALSE(scan.leaked);
}

TEST_CASE("the port in a host pattern is part of the authorization") {
  const SecretStore store = two_secrets();
  const std::string gh = placeholder_of(store, "GH_TOKEN");
  std::string on_443 = "token " + gh;
  CHECK_FALSE(store.substitute(on_443, host("github.com"), 443, true).leaked);
  CHECK(on_443 == "token ghp_real_value");

  std::string on_8443 = "token " + gh;
  auto scan = store.substitute(on_8443, host("github.com"), 8443, true);
  CHECK(scan.leaked == "GH_TOKEN");
  CHECK(on_8443 == "token " + gh);
  CHECK(store.authorized(store.entries()[0], host("github.com"), 443, true));
  CHECK_FALSE(store.authorized(store.entries()[0], host("github.com"), 8443, true));
}

TEST_CASE("a placeholder bound for another host is a leak; text stays untouched") {
  const SecretStore store = two_secrets();
  const std::string openai = placeholder_of(store, "OPENAI_API_KEY");
  for (const char* elsewhere : {"evil.test", "openai.com", "api.openai.com.evil.test", "203.0.113.9"}) {
    CAPTURE(elsewhere);
    std::string value = "Bearer " + openai;
    auto scan = store.substitute(value, host(elsewhere), 443, true);
    CHECK(scan.leaked == "OPENAI_API_KEY");
    CHECK(scan.swapped.empty());
    CHECK(value == "Bearer " + openai);
  }
}

TEST_CASE("plain HTTP to an authorized host is a leak") {
  const SecretStore store = two_secrets();
  std::string value = placeholder_of(store, "OPENAI_API_KEY");
  auto scan = store.substitute(value, host("api.openai.com"), 80, false);
  CHECK(scan.leaked == "OPENAI_API_KEY");
  CHECK(value == placeholder_of(store, "OPENAI_API_KEY"));
  CHECK_FALSE(store.authorized(store.entries()[1], host("api.openai.com"), 443, false));
}

TEST_CASE("several secrets in one string") {
  const SecretStore store({secret("A", "alpha-real", patterns({"*.multi.test"})),
                           secret("B", "beta-real", patterns({"*.multi.test"})),
                           secret("C", "gamma-real", patterns({"other.test"}))});
  const std::string a = placeholder_of(store, "A");
  const std::string b = placeholder_of(store, "B");
  const std::string c = placeholder_of(store, "C");

  std::string both = b + ":" + a + ":" + b;
  auto scan = store.substitute(both, host("x.multi.test"), 443, true);
  CHECK(both == "beta-real:alpha-real:beta-real");
  CHECK(scan.swapped == std::vector<std::string>{"B", "A"});

  std::string mixed = a + " " + c;
  scan = store.substitute(mixed, host("x.multi.test"), 443, true);
  CHECK(scan.leaked == "C");
  CHECK(mixed == a + " " + c);
}

TEST_CASE("no secrets: nothing to find, nothing held") {
  const SecretStore store(std::vector<Secret>{});
  CHECK(store.max_placeholder_size() == 0);
  CHECK(store.guest_env().empty());
  std::string value = "AIRLOCK_PLACEHOLDER_0123";
  CHECK(store.substitute(value, host("a.test"), 443, true).swapped.empty());
  BodySubstituter body(store, host("a.test"), 443, true);
  std::vector<std::uint8_t> out;
  body.feed(bytes("AIRLOCK_PLACEHOLDER_"), out);
  CHECK(body.held() == 0);
  CHECK(text(out) == "AIRLOCK_PLACEHOLDER_");
}

TEST_CASE("BodySubstituter equals whole-string substitute at every split point") {
  const SecretStore store = two_secrets();
  const std::string gh = placeholder_of(store, "GH_TOKEN");
  const std::string input = "{\"a\":\"" + gh + "\",\"b\":\"AIRLOCK_PLACEHOLDER_x\",\"c\":\"A" + gh +
                            gh + "AIRLOCK_\"}AIRLOCK_PLACEHO";
  std::string whole = input;
  const auto scan = store.substitute(whole, host("github.com"), 443, true);
  REQUIRE_FALSE(scan.leaked);
  REQUIRE(whole.find("ghp_real_value") != std::string::npos);

  for (std::size_t split = 0; split <= input.size(); ++split) {
    CAPTURE(split);
    BodySubstituter body(store, host("github.com"), 443, true);
    std::vector<std::uint8_t> out;
    body.feed(bytes(std::string_view(input).substr(0, split)), out);
    body.feed(bytes(std::string_view(input).substr(split)), out);
    body.finish(out);
    CHECK(text(out) == whole);
    CHECK(body.swapped() == std::set<std::string>{"GH_TOKEN"});
    CHECK_FALSE(body.leaked());
  }
  // And for two split points at once, and byte by byte.
  for (std::size_t first = 0; first <= input.size(); first += 3) {
    for (std::size_t second = first; second <= input.size(); second += 5) {
      BodySubstituter body(store, host("github.com"), 443, true);
      std::vector<std::uint8_t> out;
      const std::string_view view = input;
      body.feed(bytes(view.substr(0, first)), out);
      body.feed(bytes(view.substr(first, second - first)), out);
      body.feed(bytes(view.substr(second)), out);
      body.finish(out);
      CHECK(text(out) == whole);
    }
  }
  BodySubstituter bytewise(store, host("github.com"), 443, true);
  std::vector<std::uint8_t> out;
  for (char c : input) bytewise.feed(bytes(std::string_view(&c, 1)), out);
  bytewise.finish(out);
  CHECK(text(out) == whole);
}

TEST_CASE("a leak is detected across a split, and the placeholder is not emitted") {
  const SecretStore store = two_secrets();
  const std::string openai = placeholder_of(store, "OPENAI_API_KEY");
  const std::string gh = placeholder_of(store, "GH_TOKEN");
  const std::string input = "prefix " + gh + " middle " + openai + " suffix";
  for (std::size_t split = 0; split <= input.size(); ++split) {
    CAPTURE(split);
    BodySubstituter body(store, host("github.com"), 443, true);
    std::vector<std::uint8_t> out;
    body.feed(bytes(std::string_view(input).substr(0, split)), out);
    body.feed(bytes(std::string_view(input).substr(split)), out);
    body.finish(out);
    CHECK(body.leaked() == "OPENAI_API_KEY");
    const std::string emitted = text(out);
    CHECK(emitted.find(openai) == std::string::npos);
    CHECK(emitted.find("sk-real-openai") == std::string::npos);
    CHECK(emitted.find(" suffix") == std::string::npos);
    // Nothing more comes out once the leak is known.
    const std::size_t before = out.size();
    body.feed(bytes("more"), out);
    body.finish(out);
    CHECK(out.size() == before);
  }
}

TEST_CASE("hold-back is bounded by the placeholder size") {
  const SecretStore store = two_secrets();
  const std::size_t limit = store.max_placeholder_size() - 1;
  BodySubstituter body(store, host("github.com"), 443, true);
  std::vector<std::uint8_t> out;
  std::size_t fed = 0;
  // A body made of near-placeholders: every piece ends in something that could start one.
  const std::string near = "AIRLOCK_PLACEHOLDER_0123456789abcdef0123456789abcde";
  std::mt19937 rng(7);
  std::uniform_int_distribution<std::size_t> size(1, 80);
  std::string body_text;
  for (int i = 0; i < 2000; ++i) body_text += near.substr(0, size(rng) % near.size()) + "x";
  for (std::size_t pos = 0; pos < body_text.size();) {
    const std::size_t n = std::min(size(rng), body_text.size() - pos);
    body.feed(bytes(std::string_view(body_text).substr(pos, n)), out);
    fed += n;
    pos += n;
    CHECK(body.held() <= limit);
    CHECK(out.size() + body.held() == fed);  // nothing swapped: bytes only move through
  }
  body.finish(out);
  CHECK(body.held() == 0);
  CHECK(text(out) == body_text);
}
