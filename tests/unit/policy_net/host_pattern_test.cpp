// Host names, guest hosts and allowlist patterns: parsing, errors, matching.
#include <doctest/doctest.h>

#include "policy/host_pattern.hpp"

using namespace airlock::policy;

namespace {

Host host(std::string_view text) {
  auto parsed = Host::parse(text);
  std::string why = std::string(text) + ": " + (parsed.ok() ? "" : parsed.error());
  REQUIRE_MESSAGE(parsed.ok(), why);
  return *parsed;
}

HostPattern pattern(std::string_view text) {
  auto parsed = HostPattern::parse(text);
  std::string why = std::string(text) + ": " + (parsed.ok() ? "" : parsed.error());
  REQUIRE_MESSAGE(parsed.ok(), why);
  return *parsed;
}

std::string pattern_error(std::string_view text) {
  auto parsed = HostPattern::parse(text);
  return parsed.ok() ? "<parsed as " + parsed->to_string() + ">" : parsed.error();
}

std::string host_error(std::string_view text) {
  auto parsed = Host::parse(text);
  return parsed.ok() ? "<parsed as " + parsed->to_string() + ">" : parsed.error();
}

bool matches(std::string_view p, std::string_view h, std::optional<std::uint16_t> port = 443) {
  return pattern(p).matches(host(h), port);
}

}  // namespace

TEST_CASE("canonical_host_name lower-cases, drops one trailing dot and validates") {
  CHECK(canonical_host_name("Example.COM") == "example.com");
  CHECK(canonical_host_name("example.com.") == "example.com");
  CHECK(canonical_host_name("xn--bcher-kva.de") == "xn--bcher-kva.de");
  CHECK(canonical_host_name("_dmarc.example.com") == "_dmarc.example.com");
  CHECK(canonical_host_name("localhost") == "localhost");
  CHECK(canonical_host_name("a-b.c-d") == "a-b.c-d");
  CHECK(canonical_host_name(std::string(63, 'a') + ".com").has_value());
  std::string max_name = std::string(63, 'a') + "." + std::string(63, 'b') + "." +
                         std::string(63, 'c') + "." + std::string(61, 'd');
  REQUIRE(max_name.size() == 253);
  CHECK(canonical_host_name(max_name).has_value());
  CHECK(canonical_host_name(max_name + ".").has_value());
  for (std::string bad : {std::string(""), std::string("."), std::string("example.com.."),
                          std::string(".example.com"), std::string("a..b"), std::string("a b"),
                          std::string("a@b.com"), std::string("a/b"), std::string("a:b"),
                          std::string("b\xc3\xbc" "cher.de"), std::string(64, 'a') + ".com",
                          max_name + "d", std::string("*.example.com"),
                          std::string("127.0.0.1"), std::string("1.2.3.256"),
                          std::string("a.0x10"), std::string("a.b\0c", 5)}) {
    INFO(std::string(bad));
    CHECK_FALSE(canonical_host_name(bad).has_value());
  }
}

TEST_CASE("Host::parse canonicalises names") {
  Host h = host("API.Example.COM.");
  CHECK_FALSE(h.is_ip());
  CHECK(h.name() == "api.example.com");
  CHECK(h.to_string() == "api.example.com");
  CHECK(host("a.123x").name() == "a.123x");  // not all digits: a name
}

TEST_CASE("Host::parse turns every inet_aton spelling into an IP") {
  for (const char* text : {"127.0.0.1", "0x7f.1", "2130706433", "0177.0.0.1", "127.1",
                           "0x7f000001", "127.0.1", "127.0.0.1.", "0X7F.0.0.1"}) {
    INFO(std::string(text));
    Host h = host(text);
    REQUIRE(h.is_ip());
    CHECK(h.ip() == *IpAddress::parse("127.0.0.1"));
    CHECK(h.to_string() == "127.0.0.1");
  }
}

TEST_CASE("Host::parse takes IPv6 bracketed or bare and prints it bare") {
  CHECK(host("[::1]").ip() == *IpAddress::parse("::1"));
  CHECK(host("::1").ip() == *IpAddress::parse("::1"));
  CHECK(host("[2001:DB8::1]").to_string() == "2001:db8::1");
  CHECK(host("[::ffff:127.0.0.1]").to_string() == "::ffff:127.0.0.1");
}

TEST_CASE("Host::parse refusals say what is wrong") {
  CHECK(host_error("") == "empty host");
  CHECK(host_error("allowed.com@evil.com").find("'@'") != std::string::npos);
  CHECK(host_error("a b.com").find("a space") != std::string::npos);
  CHECK(host_error("a..com").find("empty label") != std::string::npos);
  CHECK(host_error(std::string(64, 'a') + ".com").find("longer than 63") != std::string::npos);
  CHECK(host_error(std::string(300, 'a')).find("longer than 253") != std::string::npos);
  CHECK(host_error("b\xc3\xbc" "cher.de").find("not ASCII") != std::string::npos);
  CHECK(host_error("[fe80::1%eth0]").find("zone") != std::string::npos);
  CHECK(host_error("[127.0.0.1]").find("not a valid IPv6") != std::string::npos);
  CHECK(host_error("[::1").find("not a valid IPv6") != std::string::npos);
  CHECK(host_error("example.com:443").find("not a valid IPv6") != std::string::npos);
  CHECK(host_error("1.2.3.256").find("ends in a number") != std::string::npos);
  CHECK(host_error("256.0.0.1").find("ends in a number") != std::string::npos);
  CHECK(host_error("99999999999").find("ends in a number") != std::string::npos);
  CHECK(host_error("127.0.0.1..").find("empty label") != std::string::npos);
  CHECK(host_error("127.0.0.1 ").find("a space") != std::string::npos);
  CHECK(host_error("*.example.com").find("'*'") != std::string::npos);
  CHECK(host_error(std::string_view("a\0b", 3)).find("\\x00") != std::string::npos);
  CHECK(host_error("a\"b").find("\\x22") != std::string::npos);  // quoted safely
}

TEST_CASE("exact patterns match the name only, on any port unless one is given") {
  CHECK(matches("example.com", "example.com"));
  CHECK(matches("example.com", "EXAMPLE.com."));
  CHECK(matches("Example.COM.", "example.com"));
  CHECK(matches("example.com", "example.com", 80));
  CHECK(matches("example.com", "example.com", std::nullopt));
  CHECK_FALSE(matches("example.com", "www.example.com"));
  CHECK_FALSE(matches("example.com", "example.org"));
  CHECK(pattern("example.com").kind() == HostPattern::Kind::exact);
}

TEST_CASE("lookalike spellings never match allowed.com") {
  HostPattern p = pattern("allowed.com");
  HostPattern w = pattern("*.allowed.com");
  for (const char* text : {"allowed.com.evil.com", "evilallowed.com", "allowed.co", "allowed.com.",
                           "allowed.comm", "xallowed.com", "allowed-com"}) {
    auto h = Host::parse(text);
    REQUIRE(h.ok());
    INFO(std::string(text));
    CHECK(p.matches(*h, 443) == (std::string_view(text) == "allowed.com."));
    CHECK_FALSE(w.matches(*h, 443));
  }
  for (const char* text : {"allowed.com@evil.com", "evil.com@allowed.com", "allowed.com/evil.com",
                           "allowed.com\\evil.com", "allowed.com evil.com", "allowed.com%2f"}) {
    INFO(std::string(text));
    CHECK_FALSE(Host::parse(text).ok());  // not a host at all, so it can match nothing
  }
}

TEST_CASE("wildcards match strictly below the apex") {
  HostPattern p = pattern("*.example.com");
  CHECK(p.kind() == HostPattern::Kind::wildcard);
  CHECK(p.matches(host("a.example.com"), 443));
  CHECK(p.matches(host("a.b.example.com"), 443));
  CHECK(p.matches(host("A.EXAMPLE.COM."), 443));
  CHECK_FALSE(p.matches(host("example.com"), 443));        // the apex must be listed itself
  CHECK_FALSE(p.matches(host("badexample.com"), 443));
  CHECK_FALSE(p.matches(host("example.com.evil.com"), 443));
  CHECK_FALSE(p.matches(host("a.example.co"), 443));
  CHECK(matches("*.com", "example.com"));
  CHECK_FALSE(matches("*.com", "example.org"));
  HostMatcher both({pattern("example.com"), pattern("*.example.com")});
  CHECK(both.find(host("example.com"), 443) == &both.patterns()[0]);
  CHECK(both.find(host("www.example.com"), 443) == &both.patterns()[1]);
}

TEST_CASE("port-specific patterns match that port only") {
  HostPattern p = pattern("pypi.org:443");
  CHECK(p.port() == 443);
  CHECK(p.matches(host("pypi.org"), 443));
  CHECK_FALSE(p.matches(host("pypi.org"), 80));
  CHECK_FALSE(p.matches(host("pypi.org"), std::nullopt));  // unknown port: no match
  CHECK(matches("*.pypi.org:8443", "files.pypi.org", 8443));
  CHECK_FALSE(matches("*.pypi.org:8443", "files.pypi.org", 443));
  CHECK(matches("*:443", "anything.example", 443));
  CHECK_FALSE(matches("*:443", "anything.example", 80));
  CHECK(matches("10.0.0.0/8:22", "10.1.1.1", 22));
  CHECK_FALSE(matches("10.0.0.0/8:22", "10.1.1.1", 23));
  CHECK(matches("[::1]:8080", "[::1]", 8080));
  CHECK_FALSE(matches("[::1]:8080", "::1", 8081));
  CHECK(matches("example.com:00443", "example.com", 443));
}

TEST_CASE("'*' alone matches every name and IP") {
  HostPattern p = pattern("*");
  CHECK(p.kind() == HostPattern::Kind::any);
  CHECK(p.matches(host("example.com"), 443));
  CHECK(p.matches(host("127.0.0.1"), 1));
  CHECK(p.matches(host("::1"), std::nullopt));
}

TEST_CASE("IP and CIDR patterns match IP hosts in any spelling, never names") {
  CHECK(pattern("127.0.0.1").kind() == HostPattern::Kind::ip);
  CHECK(pattern("10.0.0.0/8").kind() == HostPattern::Kind::cidr);
  CHECK(matches("127.0.0.1", "0x7f.1"));
  CHECK(matches("127.0.0.1", "2130706433"));
  CHECK(matches("127.0.0.1", "127.1"));
  CHECK_FALSE(matches("127.0.0.1", "127.0.0.2"));
  CHECK(matches("10.0.0.0/8", "012.1"));  // octal 10
  CHECK(matches("10.0.0.0/8", "10.255.255.255"));
  CHECK_FALSE(matches("10.0.0.0/8", "11.0.0.0"));
  CHECK_FALSE(matches("10.0.0.0/8", "ten.example.com"));
  CHECK_FALSE(matches("127.0.0.1", "localhost"));
  CHECK(matches("::1", "[::1]"));
  CHECK(matches("[::1]", "::1"));
  CHECK(matches("2001:db8::/32", "[2001:db8:1::5]"));
  CHECK(matches("[2001:db8::/32]:443", "[2001:db8:1::5]"));
  CHECK_FALSE(matches("2001:db8::/32", "[2001:db9::1]"));
  CHECK_FALSE(matches("example.com", "93.184.216.34"));
}

TEST_CASE("IPv4-mapped IPv6 hosts match IPv4 patterns and vice versa") {
  CHECK(matches("10.0.0.0/8", "[::ffff:10.0.0.1]"));
  CHECK(matches("1.2.3.4", "::ffff:102:304"));
  CHECK(matches("::ffff:1.2.3.4", "1.2.3.4"));
  CHECK_FALSE(matches("10.0.0.0/8", "[64:ff9b::a00:1]"));
  CHECK_FALSE(matches("::1", "0.0.0.1"));
}

TEST_CASE("pattern to_string is canonical and round-trips") {
  struct Case {
    const char* input;
    const char* canonical;
  };
  for (const Case& c : {
           Case{"Example.COM.", "example.com"},
           Case{"*.Example.com", "*.example.com"},
           Case{"*.example.com.:443", "*.example.com:443"},
           Case{"*", "*"},
           Case{"*:8080", "*:8080"},
           Case{"203.0.113.7", "203.0.113.7"},
           Case{"203.0.113.7:22", "203.0.113.7:22"},
           Case{"203.0.113.0/24", "203.0.113.0/24"},
           Case{"203.0.113.0/24:443", "203.0.113.0/24:443"},
           Case{"2001:DB8::1", "2001:db8::1"},
           Case{"[2001:db8::1]", "2001:db8::1"},
           Case{"[2001:db8::1]:443", "[2001:db8::1]:443"},
           Case{"2001:db8::/32", "2001:db8::/32"},
           Case{"[2001:db8::/32]:443", "[2001:db8::/32]:443"},
           Case{"example.com:0443", "example.com:443"},
           Case{"xn--bcher-kva.de", "xn--bcher-kva.de"},
       }) {
    INFO(std::string(c.input));
    HostPattern p = pattern(c.input);
    CHECK(p.to_string() == c.canonical);
    HostPattern again = pattern(p.to_string());
    CHECK(again.to_string() == p.to_string());
    CHECK(again.kind() == p.kind());
    CHECK(again.port() == p.port());
  }
}

TEST_CASE("pattern errors: ports") {
  CHECK(pattern_error("example.com:") == "the port after ':' is empty");
  CHECK(pattern_error("example.com:0") == "port 0 is not allowed (ports are 1-65535)");
  CHECK(pattern_error("example.com:65536") == "port \"65536\" is out of range (1-65535)");
  CHECK(pattern_error("example.com:99999999999999999999").find("out of range") != std::string::npos);
  CHECK(pattern_error("example.com:http") == "port \"http\" is not a number");
  CHECK(pattern_error("example.com:+80") == "port \"+80\" is not a number");
  CHECK(pattern_error("example.com:-1") == "port \"-1\" is not a number");
  CHECK(pattern_error("example.com: 80") == "port \" 80\" is not a number");
  CHECK(pattern_error("[::1]:") == "the port after ':' is empty");
  CHECK(pattern("example.com:65535").port() == 65535);
  CHECK(pattern("example.com:1").port() == 1);
}

TEST_CASE("pattern errors: wildcards") {
  for (const char* bad : {"a*.com", "*a.com", "*.*.com", "foo.*", "**.com", "a.*.com", "**",
                          "*.example.*", "*:*"}) {
    INFO(std::string(bad));
    std::string error = pattern_error(bad);
    CHECK((error.find("'*'") != std::string::npos || error.find("port") != std::string::npos));
  }
  CHECK(pattern_error("a*.com").find("whole leftmost label") != std::string::npos);
  CHECK(pattern_error("*.") == "\"*.\" must be followed by a domain, as in \"*.example.com\"");
  CHECK(pattern_error("*..") == "\"*.\" must be followed by a domain, as in \"*.example.com\"");
  CHECK(pattern_error("*.a..com").find("empty label") != std::string::npos);
  CHECK(pattern_error("*.1.2.3.4").find("ends in a number") != std::string::npos);
  CHECK(pattern_error("*." + std::string(63, 'a') + "." + std::string(63, 'b') + "." +
                      std::string(63, 'c') + "." + std::string(61, 'd'))
            .find("fits in 253") != std::string::npos);
  CHECK(pattern("*.com").kind() == HostPattern::Kind::wildcard);
}

TEST_CASE("pattern errors: names") {
  CHECK(pattern_error("") == "the pattern is empty");
  CHECK(pattern_error(":443") == "there is no host in \":443\"");
  CHECK(pattern_error("[]:443") == "there is no host in \"[]:443\"");
  CHECK(pattern_error(".") == "host name is empty");
  CHECK(pattern_error("a..com") == "host name \"a..com\" has an empty label");
  CHECK(pattern_error(".a.com") == "host name \".a.com\" has an empty label");
  CHECK(pattern_error(std::string(64, 'a') + ".com").find("label longer than 63 bytes") !=
        std::string::npos);
  CHECK(pattern_error(std::string(254, 'a')).find("longer than 253 bytes") != std::string::npos);
  CHECK(pattern_error(std::string(2000, 'a')) == "the pattern is longer than 512 bytes");
  CHECK(pattern_error("allowed.com@evil.com") ==
        "host name \"allowed.com@evil.com\" contains '@', which is not allowed in a host name");
  CHECK(pattern_error("a b").find("contains a space") != std::string::npos);
  CHECK(pattern_error("https://example.com") == "port \"//example.com\" is not a number");
  CHECK(pattern_error("example.com/path").find("is not a canonical IP address") !=
        std::string::npos);
  CHECK(pattern_error("1.2.3.256").find("ends in a number") != std::string::npos);
}

TEST_CASE("pattern errors: non-ASCII names show the xn-- form") {
  CHECK(pattern_error("bücher.de") ==
        "non-ASCII host name \"bücher.de\": write its IDNA ASCII form \"xn--bcher-kva.de\"");
  CHECK(pattern_error("*.bücher.de:443") ==
        "non-ASCII host name \"*.bücher.de\": write its IDNA ASCII form \"*.xn--bcher-kva.de\"");
  CHECK(pattern_error("BÜCHER.de").find("\"xn--bcher-kva.de\"") != std::string::npos);
  // Not valid UTF-8: no suggestion, and the bytes are escaped.
  CHECK(pattern_error("b\xfc" "cher.de") ==
        "non-ASCII host name \"b\\xfccher.de\" is not a valid internationalised name; "
        "write host names in ASCII (xn--) form");
}

TEST_CASE("pattern errors: IP literals and CIDRs") {
  CHECK(pattern_error("127.1") == "\"127.1\" is not a canonical IP address; write it as \"127.0.0.1\"");
  CHECK(pattern_error("0x7f.0.0.1").find("write it as \"127.0.0.1\"") != std::string::npos);
  CHECK(pattern_error("010.0.0.1").find("write it as \"8.0.0.1\"") != std::string::npos);
  CHECK(pattern_error("10.0.0.1/8") ==
        "\"10.0.0.1/8\" has host bits set; the block is \"10.0.0.0/8\"");
  CHECK(pattern_error("fc00::1/7") == "\"fc00::1/7\" has host bits set; the block is \"fc00::/7\"");
  CHECK(pattern_error("10.0.0.0/33") == "CIDR prefix length 33 is too long for IPv4 (at most 32)");
  CHECK(pattern_error("::/129") == "CIDR prefix length 129 is too long for IPv6 (at most 128)");
  CHECK(pattern_error("10.0.0.0/") ==
        "CIDR prefix length \"\" in \"10.0.0.0/\" is not a number from 0 to 32");
  CHECK(pattern_error("10.0.0.0/x").find("is not a number from 0 to 32") != std::string::npos);
  CHECK(pattern_error("10.0.0.0/08").find("is not a number") != std::string::npos);
  CHECK(pattern_error("10.0.0.0/1000").find("is not a number") != std::string::npos);
  CHECK(pattern_error("10/8") == "\"10\" in \"10/8\" is not a canonical IP address");
  CHECK(pattern_error("[10.0.0.1]") == "only IPv6 goes in [brackets]: \"[10.0.0.1]\"");
  CHECK(pattern_error("[10.0.0.0/8]") == "only IPv6 goes in [brackets]: \"[10.0.0.0/8]\"");
  CHECK(pattern_error("[example.com]").find("not a valid IPv6 address") != std::string::npos);
  CHECK(pattern_error("[::1").find("unbalanced '['") != std::string::npos);
  CHECK(pattern_error("[::1]x").find("unexpected text after ']'") != std::string::npos);
  CHECK(pattern_error("fe80::1%eth0").find("not a valid IPv6 address") != std::string::npos);
  CHECK(pattern_error("example.com:443:80").find("not a valid IPv6 address") != std::string::npos);
  CHECK(pattern("0.0.0.0/0").kind() == HostPattern::Kind::cidr);
}

TEST_CASE("an empty matcher finds nothing") {
  HostMatcher m;
  CHECK(m.empty());
  CHECK(m.find(host("example.com"), 443) == nullptr);
}
