// IpGuard: special-purpose blocks, their neighbours, embedded IPv4, metadata, exceptions.
#include <doctest/doctest.h>

#include "policy/ip_guard.hpp"

using namespace airlock::policy;

namespace {

IpAddress ip(std::string_view text) {
  auto parsed = IpAddress::parse(text);
  std::string why(text);
  REQUIRE_MESSAGE(parsed.has_value(), why);
  return *parsed;
}

std::string cls(std::string_view text) {
  return std::string(to_string(IpGuard::classify(ip(text)).address_class));
}

std::string embedded(std::string_view text) {
  auto v = IpGuard::classify(ip(text));
  return v.embedded_v4 ? v.embedded_v4->to_string() : "-";
}

}  // namespace

TEST_CASE("IPv4 special-purpose blocks, first and last address of each") {
  struct Case {
    const char* first;
    const char* last;
    const char* expected;
  };
  for (const Case& c : {
           Case{"0.0.0.0", "0.255.255.255", "unspecified"},
           Case{"10.0.0.0", "10.255.255.255", "private_network"},
           Case{"100.64.0.0", "100.127.255.255", "shared_address"},
           Case{"127.0.0.0", "127.255.255.255", "loopback"},
           Case{"169.254.0.0", "169.254.255.255", "link_local"},
           Case{"172.16.0.0", "172.31.255.255", "private_network"},
           Case{"192.0.0.0", "192.0.0.255", "protocol_assignment"},
           Case{"192.0.2.0", "192.0.2.255", "documentation"},
           Case{"192.88.99.0", "192.88.99.255", "relay_anycast"},
           Case{"192.168.0.0", "192.168.255.255", "private_network"},
           Case{"198.18.0.0", "198.19.255.255", "benchmarking"},
           Case{"198.51.100.0", "198.51.100.255", "documentation"},
           Case{"203.0.113.0", "203.0.113.255", "documentation"},
           Case{"224.0.0.0", "239.255.255.255", "multicast"},
           Case{"240.0.0.0", "255.255.255.254", "reserved"},
       }) {
    INFO(std::string(c.first));
    CHECK(cls(c.first) == c.expected);
    CHECK(cls(c.last) == c.expected);
  }
  CHECK(cls("255.255.255.255") == "broadcast");
  CHECK(cls("127.0.0.1") == "loopback");
}

TEST_CASE("IPv4 neighbours of special-purpose blocks are public") {
  for (const char* text :
       {"1.0.0.0", "9.255.255.255", "11.0.0.0", "100.63.255.255", "100.128.0.0", "126.255.255.255",
        "128.0.0.0", "169.253.255.255", "169.255.0.0", "172.15.255.255", "172.32.0.0",
        "191.255.255.255", "192.0.1.255", "192.0.3.0", "192.88.98.255", "192.88.100.0",
        "192.167.255.255", "192.169.0.0", "198.17.255.255", "198.20.0.0", "198.51.99.255",
        "198.51.101.0", "203.0.112.255", "203.0.114.0", "223.255.255.255", "8.8.8.8", "1.1.1.1",
        "168.63.129.15", "168.63.129.17"}) {
    INFO(std::string(text));
    auto v = IpGuard::classify(ip(text));
    CHECK(v.is_public());
    CHECK(v.allowed);
    CHECK_FALSE(v.embedded_v4.has_value());
  }
}

TEST_CASE("IPv6 special-purpose blocks and their neighbours") {
  CHECK(cls("::") == "unspecified");
  CHECK(cls("::1") == "loopback");
  CHECK(cls("fc00::") == "private_network");
  CHECK(cls("fd12:3456::1") == "private_network");
  CHECK(cls("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff") == "private_network");
  CHECK(cls("fe80::1") == "link_local");
  CHECK(cls("febf:ffff::1") == "link_local");
  CHECK(cls("fec0::1") == "private_network");  // deprecated site-local
  CHECK(cls("feff::1") == "private_network");
  CHECK(cls("ff02::1") == "multicast");
  CHECK(cls("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff") == "multicast");
  CHECK(cls("2001:db8::1") == "documentation");
  CHECK(cls("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff") == "documentation");
  CHECK(cls("100::") == "discard_only");
  CHECK(cls("100::ffff:ffff:ffff:ffff") == "discard_only");
  CHECK(cls("64:ff9b:1::1") == "private_network");
  CHECK(cls("64:ff9b:1:ffff:ffff:ffff:ffff:ffff") == "private_network");

  for (const char* text : {"2606:4700::1111", "2001:4860:4860::8888", "fbff:ffff::1", "fe00::1",
                           "2001:db7:ffff::1", "2001:db9::1", "100:0:0:1::", "64:ff9b:2::1",
                           "64:ff9b:0:1::1", "fe7f::1"}) {
    INFO(std::string(text));
    CHECK(IpGuard::classify(ip(text)).is_public());
  }
}

TEST_CASE("cloud metadata addresses") {
  for (const char* text : {"169.254.169.254", "169.254.170.2", "100.100.100.200", "192.0.0.192",
                           "168.63.129.16", "fd00:ec2::254"}) {
    INFO(std::string(text));
    CHECK(cls(text) == "cloud_metadata");
  }
  CHECK(cls("169.254.169.253") == "link_local");
  CHECK(cls("100.100.100.201") == "shared_address");
  CHECK(cls("fd00:ec2::253") == "private_network");
  CHECK(cls("::ffff:169.254.169.254") == "cloud_metadata");
  CHECK(embedded("::ffff:169.254.169.254") == "169.254.169.254");
  CHECK(cls("64:ff9b::a9fe:a9fe") == "cloud_metadata");
}

TEST_CASE("IPv4-mapped addresses are judged by their IPv4 address") {
  CHECK(cls("::ffff:127.0.0.1") == "loopback");
  CHECK(embedded("::ffff:127.0.0.1") == "127.0.0.1");
  CHECK(cls("::ffff:10.1.2.3") == "private_network");
  CHECK(cls("::ffff:0.0.0.0") == "unspecified");
  CHECK(cls("::ffff:255.255.255.255") == "broadcast");
  CHECK(cls("::ffff:8.8.8.8") == "public_address");
  CHECK(embedded("::ffff:8.8.8.8") == "-");
}

TEST_CASE("IPv4-compatible addresses are judged by their IPv4 address") {
  CHECK(cls("::127.0.0.1") == "loopback");
  CHECK(embedded("::127.0.0.1") == "127.0.0.1");
  CHECK(cls("::10.0.0.1") == "private_network");
  CHECK(cls("::0.0.0.2") == "unspecified");
  CHECK(cls("::8.8.8.8") == "public_address");
  CHECK(embedded("::1") == "-");  // loopback itself, not 0.0.0.1
  CHECK(embedded("::") == "-");
}

TEST_CASE("NAT64 addresses are judged by their IPv4 address") {
  CHECK(cls("64:ff9b::a00:1") == "private_network");
  CHECK(embedded("64:ff9b::a00:1") == "10.0.0.1");
  CHECK(cls("64:ff9b::127.0.0.1") == "loopback");
  CHECK(cls("64:ff9b::808:808") == "public_address");
  CHECK(embedded("64:ff9b:1::808:808") == "-");  // local-use /48: private as a whole
}

TEST_CASE("6to4 addresses are judged by their IPv4 address") {
  CHECK(cls("2002:7f00:1::1") == "loopback");
  CHECK(embedded("2002:7f00:1::1") == "127.0.0.1");
  CHECK(cls("2002:a9fe:a9fe::") == "cloud_metadata");
  CHECK(cls("2002:c0a8:101::1") == "private_network");
  CHECK(cls("2002:808:808::1") == "public_address");
}

TEST_CASE("Teredo addresses are judged by client and server") {
  // Client 10.0.0.1 is stored inverted: ~0x0a000001 = 0xf5fffffe.
  CHECK(cls("2001:0:4136:e378:8000:63bf:f5ff:fffe") == "private_network");
  CHECK(embedded("2001:0:4136:e378:8000:63bf:f5ff:fffe") == "10.0.0.1");
  // Client 127.0.0.1 (~ = 80ff:fffe).
  CHECK(cls("2001:0:4136:e378:8000:63bf:80ff:fffe") == "loopback");
  // Public client 8.8.8.8 (~ = f7f7:f7f7) and public server 65.54.227.120: public.
  CHECK(cls("2001:0:4136:e378:8000:63bf:f7f7:f7f7") == "public_address");
  // Private server 192.168.1.1 with a public client.
  CHECK(cls("2001:0:c0a8:101::f7f7:f7f7") == "private_network");
  CHECK(embedded("2001:0:c0a8:101::f7f7:f7f7") == "192.168.1.1");
  // Both private: the client decides.
  CHECK(embedded("2001:0:c0a8:101::80ff:fffe") == "127.0.0.1");
  // 2001:db8::/32 is not Teredo.
  CHECK(cls("2001:db8::f5ff:fffe") == "documentation");
}

TEST_CASE("to_string names every class") {
  CHECK(to_string(AddressClass::public_address) == "public_address");
  CHECK(to_string(AddressClass::discard_only) == "discard_only");
  CHECK(to_string(AddressClass::protocol_assignment) == "protocol_assignment");
}

TEST_CASE("check blocks non-public addresses by default") {
  IpGuard guard;
  auto v = guard.check(ip("10.0.0.1"));
  CHECK_FALSE(v.allowed);
  CHECK_FALSE(v.exception);
  CHECK(v.address_class == AddressClass::private_network);
  CHECK(guard.check(ip("8.8.8.8")).allowed);
  CHECK_FALSE(guard.check(ip("::ffff:127.0.0.1")).allowed);
  CHECK_FALSE(guard.check(ip("169.254.169.254")).allowed);
}

TEST_CASE("block_private=false allows everything but still classifies") {
  IpGuard guard(false, {});
  auto v = guard.check(ip("127.0.0.1"));
  CHECK(v.allowed);
  CHECK_FALSE(v.exception);
  CHECK(v.address_class == AddressClass::loopback);
  CHECK(guard.check(ip("169.254.169.254")).allowed);
}

TEST_CASE("allow_private exceptions") {
  IpGuard guard(true, {*Cidr::parse("10.1.0.0/16"), *Cidr::parse("fd00::/8"),
                       *Cidr::parse("169.254.0.0/16"), *Cidr::parse("192.168.1.5")});
  auto v = guard.check(ip("10.1.2.3"));
  CHECK(v.allowed);
  CHECK(v.exception);
  CHECK(v.address_class == AddressClass::private_network);
  CHECK_FALSE(guard.check(ip("10.2.0.1")).allowed);
  CHECK(guard.check(ip("fd12::1")).allowed);
  CHECK_FALSE(guard.check(ip("fc00::1")).allowed);
  CHECK(guard.check(ip("192.168.1.5")).allowed);
  CHECK_FALSE(guard.check(ip("192.168.1.6")).allowed);
  CHECK(guard.check(ip("169.254.1.1")).allowed);
  // The IPv4-mapped form reaches the same host, so the exception covers it.
  CHECK(guard.check(ip("::ffff:10.1.2.3")).exception);
  // NAT64 and 6to4 forms must be listed themselves.
  CHECK_FALSE(guard.check(ip("64:ff9b::a01:203")).allowed);
  CHECK_FALSE(guard.check(ip("2002:a01:203::")).allowed);
  // A public address is never an "exception".
  auto pub = guard.check(ip("8.8.8.8"));
  CHECK(pub.allowed);
  CHECK_FALSE(pub.exception);
  // A broad block does not open the metadata endpoint inside it...
  CHECK_FALSE(guard.check(ip("169.254.169.254")).allowed);
  CHECK_FALSE(guard.check(ip("fd00:ec2::254")).allowed);
  // ...but naming it exactly does.
  IpGuard metadata(true, {*Cidr::parse("169.254.169.254")});
  CHECK(metadata.check(ip("169.254.169.254")).exception);
  CHECK(metadata.check(ip("::ffff:169.254.169.254")).exception);
}

TEST_CASE("exceptions written as IPv4-mapped IPv6 cover the IPv4 address") {
  IpGuard guard(true, {*Cidr::parse("::ffff:10.0.0.0/104")});
  CHECK(guard.check(ip("10.9.9.9")).exception);
  CHECK_FALSE(guard.check(ip("172.16.0.1")).allowed);
}
