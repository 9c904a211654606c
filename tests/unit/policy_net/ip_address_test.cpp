// IpAddress and Cidr: canonical and inet_aton parsing, RFC 5952 output, CIDR blocks.
#include <arpa/inet.h>
#include <doctest/doctest.h>

#include <vector>

#include "policy/ip_address.hpp"

using namespace airlock::policy;

namespace {

std::string host_literal(std::string_view text) {
  auto ip = IpAddress::parse_host_literal(text);
  return ip ? ip->to_string() : "<none>";
}

std::string canonical(std::string_view text) {
  auto ip = IpAddress::parse(text);
  return ip ? ip->to_string() : "<none>";
}

}  // namespace

TEST_CASE("IPv4 values and bytes are in the expected order") {
  IpAddress a = IpAddress::v4(0x7f000001);
  CHECK(a.is_v4());
  CHECK(a.family() == IpAddress::Family::v4);
  CHECK(a.v4_value() == 0x7f000001U);
  CHECK(a.bytes()[0] == 127);
  CHECK(a.bytes()[3] == 1);
  CHECK(a.bit_length() == 32);
  CHECK(a.to_string() == "127.0.0.1");
  CHECK(IpAddress::v4(0).to_string() == "0.0.0.0");
  CHECK(IpAddress::v4(0xffffffff).to_string() == "255.255.255.255");
}

TEST_CASE("IpAddress::parse takes canonical dotted quads only") {
  CHECK(canonical("8.8.8.8") == "8.8.8.8");
  CHECK(canonical("0.0.0.0") == "0.0.0.0");
  CHECK(canonical("255.255.255.255") == "255.255.255.255");
  CHECK(canonical("10.0.0.10") == "10.0.0.10");
  for (const char* bad : {"", "1", "127.1", "127.0.1", "0x7f.0.0.1", "0177.0.0.1", "01.2.3.4",
                          "1.2.3.04", "00.0.0.0", "256.1.1.1", "1.2.3.4.5", "1.2.3.", ".1.2.3",
                          "1..2.3", "1.2.3.4 ", " 1.2.3.4", "1.2.3.-4", "1.2.3.+4", "2130706433",
                          "1.2.3.4x", "1.2.3.1000", "[1.2.3.4]", "a.b.c.d"}) {
    INFO(std::string(bad));
    CHECK_FALSE(IpAddress::parse(bad).has_value());
  }
}

TEST_CASE("IpAddress::parse takes IPv6, bracketed or not, without zone ids") {
  CHECK(canonical("::1") == "::1");
  CHECK(canonical("[::1]") == "::1");
  CHECK(canonical("::") == "::");
  CHECK(canonical("2001:DB8:0:0:0:0:0:1") == "2001:db8::1");
  CHECK(canonical("::ffff:127.0.0.1") == "::ffff:127.0.0.1");
  CHECK(canonical("fe80::1%eth0") == "<none>");
  CHECK(canonical("[fe80::1%25eth0]") == "<none>");
  CHECK(canonical("[::1") == "<none>");
  CHECK(canonical("::1]") == "<none>");
  CHECK(canonical("[]") == "<none>");
  CHECK(canonical("1:2:3:4:5:6:7:8:9") == "<none>");
  CHECK(canonical("12345::") == "<none>");
  CHECK(canonical(":::") == "<none>");
  CHECK(canonical("::g") == "<none>");
}

TEST_CASE("IPv6 output follows RFC 5952") {
  CHECK(canonical("2001:0db8:0000:0000:0000:0000:0000:0001") == "2001:db8::1");
  CHECK(canonical("2001:db8:0:1:0:0:0:1") == "2001:db8:0:1::1");          // longest run
  CHECK(canonical("2001:db8:0:0:1:0:0:1") == "2001:db8::1:0:0:1");        // first of a tie
  CHECK(canonical("2001:db8:0:1:1:1:1:1") == "2001:db8:0:1:1:1:1:1");     // one zero: no ::
  CHECK(canonical("0:0:0:0:0:0:0:0") == "::");
  CHECK(canonical("1:0:0:0:0:0:0:0") == "1::");
  CHECK(canonical("0:0:0:0:0:0:0:1") == "::1");
  CHECK(canonical("FFFF:ABCD::0A0B") == "ffff:abcd::a0b");
  CHECK(canonical("::ffff:7f00:1") == "::ffff:127.0.0.1");  // mapped: mixed notation
  CHECK(canonical("64:ff9b::a00:1") == "64:ff9b::a00:1");
  CHECK(canonical("::10.0.0.1") == "::a00:1");
}

TEST_CASE("parse_host_literal accepts every inet_aton spelling of IPv4") {
  CHECK(host_literal("127.0.0.1") == "127.0.0.1");
  CHECK(host_literal("2130706433") == "127.0.0.1");
  CHECK(host_literal("0x7f.1") == "127.0.0.1");
  CHECK(host_literal("0X7F.1") == "127.0.0.1");
  CHECK(host_literal("0177.0.0.1") == "127.0.0.1");
  CHECK(host_literal("127.1") == "127.0.0.1");
  CHECK(host_literal("0x7f000001") == "127.0.0.1");
  CHECK(host_literal("127.0.1") == "127.0.0.1");
  CHECK(host_literal("017700000001") == "127.0.0.1");
  CHECK(host_literal("0") == "0.0.0.0");
  CHECK(host_literal("1.256") == "1.0.1.0");              // a.b: b is 24 bits
  CHECK(host_literal("1.16777215") == "1.255.255.255");
  CHECK(host_literal("1.2.65535") == "1.2.255.255");      // a.b.c: c is 16 bits
  CHECK(host_literal("4294967295") == "255.255.255.255");
  CHECK(host_literal("0xffffffff") == "255.255.255.255");
  CHECK(host_literal("0x0a.0x00.0x00.0x01") == "10.0.0.1");
  CHECK(host_literal("00000000000000000000000000000001") == "0.0.0.1");  // leading zeros
  CHECK(host_literal("169.254.43518") == "169.254.169.254");
}

TEST_CASE("parse_host_literal refuses what inet_aton refuses, and trailing garbage") {
  for (const char* bad :
       {"", ".", "256.1.1.1", "1.2.3.256", "1.16777216", "1.2.65536", "4294967296",
        "0x100000000", "99999999999999999999999", "1.2.3.4.5", "0x", "0x.1", "08", "099",
        "0x1g", "127.0.0.1.", "127.1.", ".1", "1..2", "..1", "+1", "-1", "1.+2", " 1",
        "127.0.0.1 ", "127.0.0.1 x", "127.0.0.1\t", "1.2.3.4/8", "a.b.c.d", "localhost",
        "1e3", "0b101", "\x31\x32\x37\xc0\xae\x31"}) {
    INFO(std::string(bad));
    CHECK_FALSE(IpAddress::parse_host_literal(bad).has_value());
  }
  CHECK_FALSE(IpAddress::parse_host_literal(std::string_view("127.0.0.1\0x", 11)).has_value());
  CHECK_FALSE(IpAddress::parse_host_literal(std::string(300, '1')).has_value());
}

TEST_CASE("parse_host_literal agrees with glibc inet_aton on every join of tricky parts") {
  // inet_aton is the oracle here only; the parser under test never calls it.
  const std::vector<std::string> parts = {"",     "0",     "1",      "7",        "8",
                                          "00",   "01",    "08",     "0x",       "0x1",
                                          "0xff", "0X1G",  "255",    "256",      "65535",
                                          "65536", "0377", "0400",   "16777215", "16777216",
                                          "4294967295", "4294967296", "0xffffffff", "1a"};
  std::vector<std::string> texts = {""};
  std::vector<std::string> layer = {""};
  for (int depth = 0; depth < 4; ++depth) {
    std::vector<std::string> next;
    for (const std::string& prefix : layer)
      for (const std::string& part : parts) next.push_back(depth == 0 ? part : prefix + "." + part);
    texts.insert(texts.end(), next.begin(), next.end());
    layer = std::move(next);
  }
  std::size_t mismatches = 0;
  std::string first_mismatch;
  for (const std::string& text : texts) {
    in_addr expected{};
    bool libc = inet_aton(text.c_str(), &expected) != 0;
    auto ours = IpAddress::parse_host_literal(text);
    bool same = libc == ours.has_value() && (!libc || ours->v4_value() == ntohl(expected.s_addr));
    if (!same && mismatches++ == 0) first_mismatch = text;
  }
  INFO(first_mismatch);
  CHECK(mismatches == 0);
  CHECK(texts.size() > 300000);
}

TEST_CASE("parse_host_literal takes IPv6 bracketed or not and refuses zone ids") {
  CHECK(host_literal("::1") == "::1");
  CHECK(host_literal("[::1]") == "::1");
  CHECK(host_literal("[::ffff:127.0.0.1]") == "::ffff:127.0.0.1");
  CHECK(host_literal("[fe80::1%eth0]") == "<none>");
  CHECK(host_literal("fe80::1%eth0") == "<none>");
  CHECK(host_literal("[127.0.0.1]") == "<none>");
  CHECK(host_literal("[0x7f.1]") == "<none>");
  CHECK(host_literal("[::1]:80") == "<none>");
  CHECK(host_literal("[[::1]]") == "<none>");
}

TEST_CASE("to_string round-trips through both parsers") {
  for (const char* text : {"0.0.0.0", "1.2.3.4", "255.255.255.255", "::", "::1", "2001:db8::1",
                           "fe80::1:2", "::ffff:8.8.8.8", "1:2:3:4:5:6:7:8", "64:ff9b::a00:1"}) {
    INFO(std::string(text));
    auto ip = IpAddress::parse(text);
    REQUIRE(ip.has_value());
    CHECK(ip->to_string() == text);
    CHECK(IpAddress::parse(ip->to_string()) == ip);
    CHECK(IpAddress::parse_host_literal(ip->to_string()) == ip);
  }
}

TEST_CASE("an IPv4 address never equals its IPv4-mapped IPv6 form") {
  CHECK(IpAddress::parse("1.2.3.4") != IpAddress::parse("::ffff:1.2.3.4"));
  CHECK(IpAddress::parse("0.0.0.0") != IpAddress::parse("::"));
}

TEST_CASE("Cidr::parse reads blocks and bare addresses") {
  auto c = Cidr::parse("10.0.0.0/8");
  REQUIRE(c.has_value());
  CHECK(c->prefix_length() == 8);
  CHECK(c->to_string() == "10.0.0.0/8");
  CHECK(Cidr::parse("1.2.3.4")->to_string() == "1.2.3.4/32");
  CHECK(Cidr::parse("::1")->to_string() == "::1/128");
  CHECK(Cidr::parse("fc00::/7")->to_string() == "fc00::/7");
  CHECK(Cidr::parse("0.0.0.0/0")->to_string() == "0.0.0.0/0");
  CHECK(Cidr::parse("::/0")->to_string() == "::/0");
  CHECK(Cidr::parse("[2001:db8::]/32")->to_string() == "2001:db8::/32");
}

TEST_CASE("Cidr::parse refuses host bits, bad prefixes and non-canonical addresses") {
  for (const char* bad : {"10.0.0.1/8", "fc00::1/7", "10.0.0.0/33", "::/129", "10.0.0.0/",
                          "10.0.0.0/-1", "10.0.0.0/08", "10.0.0.0/8x", "10.0.0.0/ 8",
                          "10.0.0.0/8/8", "10/8", "012.0.0.0/8", "/8", "", "10.0.0.0/1000"}) {
    INFO(std::string(bad));
    CHECK_FALSE(Cidr::parse(bad).has_value());
  }
}

TEST_CASE("Cidr::contains respects the prefix and the family") {
  auto ten = *Cidr::parse("10.0.0.0/8");
  CHECK(ten.contains(*IpAddress::parse("10.255.255.255")));
  CHECK(ten.contains(*IpAddress::parse("10.0.0.0")));
  CHECK_FALSE(ten.contains(*IpAddress::parse("11.0.0.0")));
  CHECK_FALSE(ten.contains(*IpAddress::parse("9.255.255.255")));
  CHECK_FALSE(ten.contains(*IpAddress::parse("::ffff:10.0.0.1")));  // other family
  auto odd = *Cidr::parse("100.64.0.0/10");
  CHECK(odd.contains(*IpAddress::parse("100.127.255.255")));
  CHECK_FALSE(odd.contains(*IpAddress::parse("100.128.0.0")));
  auto ula = *Cidr::parse("fc00::/7");
  CHECK(ula.contains(*IpAddress::parse("fdff:ffff::1")));
  CHECK_FALSE(ula.contains(*IpAddress::parse("fe00::")));
  CHECK(Cidr::parse("0.0.0.0/0")->contains(*IpAddress::parse("255.255.255.255")));
  CHECK_FALSE(Cidr::parse("0.0.0.0/0")->contains(*IpAddress::parse("::")));
  CHECK(Cidr::parse("::/0")->contains(*IpAddress::parse("ffff::")));
  auto one = *Cidr::parse("2001:db8::1");
  CHECK(one.contains(*IpAddress::parse("2001:db8::1")));
  CHECK_FALSE(one.contains(*IpAddress::parse("2001:db8::2")));
}

TEST_CASE("the Cidr constructor clears host bits and clamps the prefix") {
  Cidr c(*IpAddress::parse("10.1.2.3"), 8);
  CHECK(c.to_string() == "10.0.0.0/8");
  CHECK(Cidr(*IpAddress::parse("10.1.2.3"), 99).prefix_length() == 32);
  CHECK(Cidr(*IpAddress::parse("10.1.2.3"), -1).to_string() == "0.0.0.0/0");
  CHECK(Cidr(*IpAddress::parse("2001:db8:ffff::1"), 33).to_string() == "2001:db8:8000::/33");
  CHECK(Cidr(*IpAddress::parse("10.255.255.255"), 13).to_string() == "10.248.0.0/13");
}

TEST_CASE("Cidr to_string round-trips") {
  for (const char* text : {"10.0.0.0/8", "100.64.0.0/10", "192.0.2.7/32", "fe80::/10",
                           "2001:db8::/32", "::ffff:0.0.0.0/96", "::1/128", "0.0.0.0/0"}) {
    INFO(std::string(text));
    auto c = Cidr::parse(text);
    REQUIRE(c.has_value());
    CHECK(c->to_string() == text);
    CHECK(Cidr::parse(c->to_string()) == c);
  }
}
