// Secret matching: the forms of a real value, the rewriter's invariance under any split,
// and the request/response sets a SecretStore builds.
#include <doctest/doctest.h>

#include <random>

#include <openssl/evp.h>

#include "policy/secret_scan.hpp"
#include "policy/secret_store.hpp"

using namespace airlock::policy;

namespace {

HostPattern pattern(const char* text) { return *HostPattern::parse(text); }

std::string run(const MatchSet& set, const std::string& text, std::size_t piece, std::optional<Finding>* stopped = nullptr) {
  SecretRewriter rewriter(std::make_shared<MatchSet>(set));
  std::string out;
  for (std::size_t at = 0; at < text.size(); at += piece) rewriter.feed(std::string_view(text).substr(at, piece), out);
  rewriter.finish(out);
  if (stopped) *stopped = rewriter.stopped();
  return out;
}

}  // namespace

TEST_CASE("secret scan: the forms of a value a client decodes by itself") {
  auto forms = value_forms("a/b+c=d");
  std::vector<std::string> names;
  bool has_percent = false, has_json = false, has_b64 = false;
  for (const auto& f : forms) {
    if (f.form == "percent") has_percent = has_percent || f.bytes == "a%2Fb%2Bc%3Dd" || f.bytes == "a%2fb%2bc%3dd";
    if (f.form == "json") has_json = has_json || f.bytes == "a\\/b+c=d";
    if (f.form == "base64") has_b64 = true;
  }
  CHECK(forms.front().bytes == "a/b+c=d");
  CHECK(has_percent);
  CHECK(has_json);
  CHECK(has_b64);
  bool tiny_b64 = false;  // 4 bytes: every base64 middle is under the noise floor
  for (const auto& f : value_forms("a/b+")) tiny_b64 = tiny_b64 || f.form == "base64";
  CHECK_FALSE(tiny_b64);
  // A value made only of unreserved characters is its own percent and JSON form.
  auto plain = value_forms("abcdefghijklmnopqrstuvwxyz0123456789");
  for (const auto& f : plain) CHECK(f.form != "percent");
  bool b64 = false;
  for (const auto& f : plain) b64 = b64 || (f.form == "base64" && !f.replaceable);
  CHECK(b64);
}

TEST_CASE("secret scan: the rewriter's output is the same however the input is split") {
  MatchSet set({{"needle", MatchAction::replace, "N", "S", "value"},
                {"needles", MatchAction::replace, "NS", "S2", "value"},
                {"nee", MatchAction::replace, "x", "S3", "value"}});
  const std::string text = "a needle, needles, nee, needl, neneedle end needle";
  const std::string whole = run(set, text, text.size());
  CHECK(whole == "a N, NS, x, xdl, neN end N");
  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) {
    const std::size_t piece = 1 + rng() % 9;
    CHECK(run(set, text, piece) == whole);
  }
}

TEST_CASE("secret scan: a leak stops the output and names the secret only") {
  MatchSet set({{"topsecretvalue", MatchAction::leak, "", "KEY", "value"}});
  std::optional<Finding> stopped;
  const std::string out = run(set, "abc topsecret" "value xyz", 3, &stopped);
  REQUIRE(stopped);
  CHECK(stopped->secret == "KEY");
  CHECK(out.find("topsecret") == std::string::npos);
  std::string text = "to topsecretvalue";
  auto result = rewrite_string(set, text);
  CHECK(result.stopped);
  CHECK(text == "to topsecretvalue");  // left as it was
}

TEST_CASE("secret scan: what a store asks of requests and responses") {
  Secret s;
  s.name = "API_KEY";
  s.value = SecretValue("sk-0123456789abcdef0123456789abcdef01");
  s.hosts = {pattern("api.test")};
  SecretStore store({s});
  const std::string placeholder = store.entries()[0].placeholder;
  auto home = store.request_matches(*Host::parse("api.test"), 443, true);
  std::string text = "Bearer " + placeholder;
  auto swapped = rewrite_string(*home, text);
  CHECK_FALSE(swapped.stopped);
  CHECK(text == "Bearer sk-0123456789abcdef0123456789abcdef01");
  auto elsewhere = store.request_matches(*Host::parse("other.test"), 443, true);
  for (std::string carried : {placeholder, std::string("sk-0123456789abcdef0123456789abcdef01")}) {
    auto r = rewrite_string(*elsewhere, carried);
    REQUIRE(r.stopped);
    CHECK(r.stopped->action == MatchAction::leak);
  }
  auto plain_home = store.request_matches(*Host::parse("api.test"), 80, false);
  std::string over_http = placeholder;
  CHECK(rewrite_string(*plain_home, over_http).stopped);
  auto response = store.response_matches();
  std::string echoed = "x sk-0123456789abcdef0123456789abcdef01 y";
  CHECK_FALSE(rewrite_string(*response, echoed).stopped);
  CHECK(echoed == "x " + placeholder + " y");
  CHECK(store.any_authorized(*Host::parse("api.test"), 443, true));
  CHECK_FALSE(store.any_authorized(*Host::parse("api.test"), 443, false));
}

TEST_CASE("secret scan: the real value base64-encoded in a request to another host is a leak") {
  // The shape a guest tries: a value with '/' and '+' (so every alphabet matters), encoded
  // whole, in a form body, fed in any split.
  const std::string real = "sk/live+0123456789abcdef0123456789abcdef==";
  Secret s;
  s.name = "API_KEY";
  s.value = SecretValue(real);
  s.hosts = {pattern("api.test")};
  SecretStore store({s});
  auto elsewhere = store.request_matches(*Host::parse("other.test"), 443, true);
  auto b64 = [](std::string_view in) {  // whole, with padding: what a guest's encoder writes
    std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
  };
  for (const std::string& prefix : {std::string("k="), std::string("x"), std::string("ab"), std::string()}) {
    const std::string body = prefix + b64(prefix.size() % 2 ? "z" + real : real) + "&more";
    for (std::size_t piece : {std::size_t{1}, std::size_t{5}, body.size()}) {
      std::optional<Finding> stopped;
      run(*elsewhere, body, piece, &stopped);
      INFO(body, " piece ", piece);
      REQUIRE(stopped);
      CHECK(stopped->action == MatchAction::leak);
    }
  }
}
