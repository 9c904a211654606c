// Kernel command line parsing for guest-init.
#include <doctest/doctest.h>

#include "guest-init/cmdline.hpp"

using namespace airlock::guest;

TEST_CASE("split_cmdline honours quotes") {
  CHECK(split_cmdline("a b  \"c d\" e\"f g\"\n") == std::vector<std::string>{"a", "b", "c d", "ef g"});
  CHECK(split_cmdline("").empty());
}

TEST_CASE("defaults when no airlock keys are given") {
  const BootConfig c = parse_cmdline("console=ttyS0 quiet panic=-1");
  CHECK(c.hostname == "airlock");
  CHECK(c.workspace == "/workspace");
  CHECK(c.mounts.empty());
  CHECK_FALSE(c.probe);
  CHECK(c.uid == 1000);
  CHECK(c.warnings.empty());
}

TEST_CASE("all keys are parsed") {
  const BootConfig c = parse_cmdline(
      "console=ttyS0 airlock.hostname=vm-1 airlock.workspace=/work airlock.probe=1 airlock.uid=1234 "
      "airlock.mounts=fs0:/work/src:ro,fs1:/data:rw,fs2:/x virtio_mmio.device=4K@0xfeb00000:12");
  CHECK(c.hostname == "vm-1");
  CHECK(c.workspace == "/work");
  CHECK(c.probe);
  CHECK(c.uid == 1234);
  REQUIRE(c.mounts.size() == 3);
  CHECK(c.mounts[0].tag == "fs0");
  CHECK(c.mounts[0].guest_path == "/work/src");
  CHECK(c.mounts[0].read_only);
  CHECK(c.mounts[1].guest_path == "/data");
  CHECK_FALSE(c.mounts[1].read_only);
  CHECK(c.mounts[2].guest_path == "/x");
  CHECK_FALSE(c.mounts[2].read_only);
  CHECK(c.warnings.empty());
}

TEST_CASE("bad values are skipped with warnings") {
  const BootConfig c = parse_cmdline(
      "airlock.hostname=bad_name! airlock.workspace=relative airlock.uid=0 airlock.mounts=:/x,fs0:rel,fs1:/ok "
      "airlock.frobnicate=1 airlock.ip=10.0.0.2");
  CHECK(c.hostname == "airlock");
  CHECK(c.workspace == "/workspace");
  CHECK(c.uid == 1000);
  REQUIRE(c.mounts.size() == 1);
  CHECK(c.mounts[0].tag == "fs1");
  CHECK_FALSE(c.network);       // an address without a prefix length
  CHECK(c.warnings.size() == 7);  // hostname, workspace, uid, two mounts, unknown key, ip
}

TEST_CASE("a guest path may contain colons") {
  ShareMount m;
  REQUIRE(parse_share_mount("fs0:/a:b:ro", m));
  CHECK(m.guest_path == "/a:b");
  CHECK(m.read_only);
}

TEST_CASE("network keys") {
  const BootConfig c = parse_cmdline(
      "console=ttyS0 airlock.ip=192.168.127.2/24 airlock.gw=192.168.127.1 airlock.dns=192.168.127.1 "
      "airlock.mtu=65520 airlock.mac=52:54:00:A1:10:0f");
  CHECK(c.warnings.empty());
  REQUIRE(c.network);
  const NetworkConfig& n = *c.network;
  CHECK(n.address == Ipv4Address{192, 168, 127, 2});
  CHECK(n.prefix_length == 24);
  CHECK(n.gateway == Ipv4Address{192, 168, 127, 1});
  CHECK(n.dns == Ipv4Address{192, 168, 127, 1});
  CHECK(n.mtu == 65520u);
  CHECK(n.mac == MacAddress{0x52, 0x54, 0x00, 0xa1, 0x10, 0x0f});
}

TEST_CASE("only airlock.ip is required; an empty airlock.mac keeps the NIC's") {
  const BootConfig c = parse_cmdline("airlock.ip=10.0.2.15/24 airlock.mac=");
  CHECK(c.warnings.empty());
  REQUIRE(c.network);
  CHECK_FALSE(c.network->gateway);
  CHECK_FALSE(c.network->dns);
  CHECK_FALSE(c.network->mtu);
  CHECK_FALSE(c.network->mac);
}

TEST_CASE("no network without airlock.ip") {
  CHECK_FALSE(parse_cmdline("console=ttyS0").network);
  const BootConfig c = parse_cmdline("airlock.gw=10.0.2.2 airlock.mtu=1500");
  CHECK_FALSE(c.network);
  CHECK(c.warnings.size() == 1);
}

TEST_CASE("one bad network value leaves the network down") {
  const char* bad[] = {
      "airlock.ip=10.0.2.15",                       // no prefix
      "airlock.ip=10.0.2.15/0",                     // prefix out of range
      "airlock.ip=10.0.2.15/33",
      "airlock.ip=10.0.2.15/24x",
      "airlock.ip=10.0.2.0/24",                     // network address
      "airlock.ip=10.0.2.255/24",                   // broadcast address
      "airlock.ip=127.0.0.2/8",                     // loopback
      "airlock.ip=224.0.0.1/24",                    // multicast
      "airlock.ip=0.1.2.3/8",
      "airlock.ip=10.0.2.15/24 airlock.gw=10.0.3.1",    // gateway outside the subnet
      "airlock.ip=10.0.2.15/24 airlock.gw=10.0.2.15",   // gateway is ourselves
      "airlock.ip=10.0.2.15/24 airlock.gw=10.0.2.255",
      "airlock.ip=10.0.2.15/32 airlock.gw=10.0.2.1",
      "airlock.ip=10.0.2.15/24 airlock.gw=",
      "airlock.ip=10.0.2.15/24 airlock.dns=255.255.255.255",
      "airlock.ip=10.0.2.15/24 airlock.dns=dns.example",
      "airlock.ip=10.0.2.15/24 airlock.mtu=67",
      "airlock.ip=10.0.2.15/24 airlock.mtu=65536",
      "airlock.ip=10.0.2.15/24 airlock.mtu=-1",
      "airlock.ip=10.0.2.15/24 airlock.mtu=1500b",
      "airlock.ip=10.0.2.15/24 airlock.mac=01:00:5e:00:00:01",  // multicast
      "airlock.ip=10.0.2.15/24 airlock.mac=52:54:00:12:34",
  };
  for (const char* line : bad) {
    CAPTURE(line);
    const BootConfig c = parse_cmdline(line);
    CHECK_FALSE(c.network);
    CHECK(c.warnings.size() == 1);
  }
}

TEST_CASE("the last occurrence of a key wins") {
  const BootConfig c = parse_cmdline("airlock.ip=10.0.0.2/8 airlock.ip=10.0.2.15/24");
  REQUIRE(c.network);
  CHECK(c.network->address == Ipv4Address{10, 0, 2, 15});
}

TEST_CASE("parse_ipv4 is strict") {
  CHECK(parse_ipv4("0.0.0.0") == Ipv4Address{0, 0, 0, 0});
  CHECK(parse_ipv4("255.255.255.255") == Ipv4Address{255, 255, 255, 255});
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "1.2.3.256", "01.2.3.4", "1.2.3.4 ", " 1.2.3.4", "1..3.4",
                          "1.2.3.", "0x1.2.3.4", "1.2.3.1000", "1.2.3.-4", "1.2.3.4/24"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_ipv4(bad));
  }
}

TEST_CASE("parse_ipv4_cidr, netmask_of and format_ipv4") {
  Ipv4Address a{};
  unsigned len = 0;
  REQUIRE(parse_ipv4_cidr("192.168.127.2/24", a, len));
  CHECK(format_ipv4(a) == "192.168.127.2");
  CHECK(len == 24);
  CHECK_FALSE(parse_ipv4_cidr("192.168.127.2/", a, len));
  CHECK_FALSE(parse_ipv4_cidr("192.168.127.2/024", a, len));
  CHECK(netmask_of(24) == Ipv4Address{255, 255, 255, 0});
  CHECK(netmask_of(1) == Ipv4Address{128, 0, 0, 0});
  CHECK(netmask_of(20) == Ipv4Address{255, 255, 240, 0});
  CHECK(netmask_of(32) == Ipv4Address{255, 255, 255, 255});
}

TEST_CASE("parse_mac") {
  CHECK(parse_mac("52:54:00:12:34:56") == MacAddress{0x52, 0x54, 0x00, 0x12, 0x34, 0x56});
  for (const char* bad : {"", "52:54:00:12:34:5", "52:54:00:12:34:567", "52-54-00-12-34-56", "52:54:00:12:34:5g",
                          "00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_mac(bad));
  }
}

TEST_CASE("airlock.hosts: extra /etc/hosts entries, IPv4 and IPv6") {
  BootConfig c = parse_cmdline("airlock.hosts=db.internal:10.1.2.3,api:2001:db8::7,bad_name:1.2.3.4,x:nope,y:1.2.3");
  REQUIRE(c.hosts.size() == 2);
  CHECK(c.hosts[0].name == "db.internal");
  CHECK(c.hosts[0].address == "10.1.2.3");
  CHECK(c.hosts[1].name == "api");
  CHECK(c.hosts[1].address == "2001:db8::7");
  CHECK(c.warnings.size() == 3);
  HostEntry e;
  CHECK_FALSE(parse_host_entry("-lead:1.2.3.4", e));
  CHECK_FALSE(parse_host_entry("a..b:1.2.3.4", e));
  CHECK_FALSE(parse_host_entry("name:", e));
  CHECK_FALSE(parse_host_entry("name", e));
  CHECK_FALSE(parse_host_entry("name:1.2.3.4\n", e));  // nothing that could add a line
  CHECK(parse_host_entry("name:::1", e));
}
