// ResponseScrubber: real values never reach the guest, whatever the split.
#include <doctest/doctest.h>

#include "proxy/mitm/response_scrubber.hpp"
#include "tests/unit/mitm/harness.hpp"

namespace airlock::mitm::testing {
namespace {

std::vector<policy::Secret> secrets(const std::string& long_value, const std::string& short_value) {
  policy::Secret a;
  a.name = "LONG";
  a.value = policy::SecretValue(long_value);
  a.hosts = {pattern("api.test")};
  policy::Secret b;
  b.name = "SHORT";
  b.value = policy::SecretValue(short_value);
  b.hosts = {pattern("api.test")};
  return {a, b};
}

std::string scrub_in_pieces(ResponseScrubber& s, const std::string& input, std::size_t piece) {
  Bytes out;
  for (std::size_t at = 0; at < input.size(); at += piece)
    s.feed(bytes(input.substr(at, piece)), out);
  s.flush(out);
  return text(out);
}

TEST_CASE("scrubber: a long value goes back as its same-length placeholder") {
  const std::string real = "sk-live-0123456789abcdef0123456789abcdef";  // 40 bytes
  policy::SecretStore store(secrets(real, "short-1"));
  const std::string& placeholder = store.entries()[0].placeholder;
  REQUIRE(store.entries()[0].name == "LONG");
  CHECK(placeholder.size() == real.size());
  CHECK(placeholder.rfind("AIRLOCK_PLACEHOLDER_", 0) == 0);
  const std::string response = "HTTP/1.1 302 Found\r\nLocation: /x?key=" + real +
                               "\r\nContent-Length: 40\r\n\r\n" + real;
  const std::string expected = "HTTP/1.1 302 Found\r\nLocation: /x?key=" + placeholder +
                               "\r\nContent-Length: 40\r\n\r\n" + placeholder;
  for (std::size_t piece : {1u, 3u, 7u, 39u, 40u, 41u, 1000u}) {
    ResponseScrubber s(store, host("api.test"), 443);
    REQUIRE(s.active());
    CHECK(scrub_in_pieces(s, response, piece) == expected);
    CHECK(s.scrubbed().count("LONG") == 1);
    CHECK_FALSE(s.echoed());
  }
}

TEST_CASE("scrubber: a short value can't be replaced in place and is reported") {
  policy::SecretStore store(secrets("sk-live-0123456789abcdef0123456789abcdef", "short-1"));
  ResponseScrubber s(store, host("api.test"), 443);
  const std::string out = scrub_in_pieces(s, "hello short-1 world", 4);
  CHECK(s.echoed() == std::optional<std::string>("SHORT"));
  CHECK(out == "hello ");
}

TEST_CASE("scrubber: only a possible prefix is held back") {
  policy::SecretStore store(secrets("sk-live-0123456789abcdef0123456789abcdef", "short-1"));
  ResponseScrubber s(store, host("api.test"), 443);
  Bytes out;
  s.feed(bytes("data: {\"token\": 5}\n\n"), out);
  CHECK(text(out) == "data: {\"token\": 5}\n\n");  // nothing delayed
  out.clear();
  s.feed(bytes("abc sk-li"), out);
  CHECK(text(out) == "abc ");
  s.feed(bytes("ght"), out);
  CHECK(text(out) == "abc sk-light");
}

TEST_CASE("scrubber: hosts no secret may reach are not scrubbed") {
  policy::SecretStore store(secrets("sk-live-0123456789abcdef0123456789abcdef", "short-1"));
  ResponseScrubber s(store, host("other.test"), 443);
  CHECK_FALSE(s.active());
}

}  // namespace
}  // namespace airlock::mitm::testing
