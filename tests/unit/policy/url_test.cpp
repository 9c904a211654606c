// URL and authority splitting.
#include <doctest/doctest.h>

#include <string>

#include "policy/url.hpp"

using namespace airlock::policy;

TEST_CASE("URLs split into scheme, host, port and path") {
  auto t = parse_url("https://API.example.com:8443/v1/x?q=1");
  REQUIRE(t.ok());
  CHECK(t->scheme == "https");
  CHECK(t->host.to_string() == "api.example.com");
  CHECK(t->port == 8443);
  CHECK(t->path == "/v1/x?q=1");
  CHECK(parse_url("http://a.com")->port == 80);
  CHECK(parse_url("wss://a.com")->port == 443);
  CHECK(parse_url("http://a.com")->path == "/");
  CHECK(parse_url("a.com:22")->port == 22);
  CHECK(parse_url("HTTP://a.com?x")->path == "/?x");
}

TEST_CASE("userinfo is dropped; the host is after the last '@'") {
  CHECK(parse_url("https://allowed.com@evil.com/")->host.to_string() == "evil.com");
  CHECK(parse_url("https://a@b@evil.com/")->host.to_string() == "evil.com");
  CHECK(parse_url("https://evil.com/@allowed.com")->host.to_string() == "evil.com");
}

TEST_CASE("IPv6 literals must be bracketed") {
  auto t = parse_url("http://[::1]:8080/");
  REQUIRE(t.ok());
  CHECK(t->host.is_ip());
  CHECK(t->port == 8080);
  CHECK_FALSE(parse_url("http://::1/").ok());
  CHECK_FALSE(parse_url("http://[::1/").ok());
  CHECK_FALSE(parse_url("http://[::1]x/").ok());
}

TEST_CASE("ambiguous or malformed URLs are refused") {
  for (const char* url : {"ftp://a.com/", "http://", "http:///x", "http://a.com:/", "http://a.com:0/",
                          "http://a.com:65536/", "http://a.com:8x/", "http://evil.com\\@allowed.com/",
                          "http://allowed.com%2eevil.com/", "http://a b.com/", "a.com",
                          "http://a.com/ x", "http://bücher.de/"}) {
    CAPTURE(std::string(url));
    CHECK_FALSE(parse_url(url).ok());
  }
}

TEST_CASE("authorities from Host headers") {
  auto a = parse_authority("Example.COM:8080", 80);
  REQUIRE(a.ok());
  CHECK(a->first.to_string() == "example.com");
  CHECK(a->second == 8080);
  CHECK(parse_authority("example.com", 443)->second == 443);
  CHECK_FALSE(parse_authority("", 80).ok());
  CHECK_FALSE(parse_authority("a.com:", 80).ok());
}
