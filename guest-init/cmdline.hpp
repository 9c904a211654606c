// Boot configuration from the kernel command line (the `airlock.*` keys).
//
// The host controls the command line, so the parser is lenient: unknown airlock.* keys
// and malformed values are skipped with a warning (collected in `warnings`) rather than
// stopping the boot, because a guest that does not boot is harder to diagnose than one
// that boots and says what it ignored. The network keys go further: they are checked
// together, and one bad value drops the whole network (the guest still boots, with
// eth0 down). Pure: unit-tested without a VM.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace airlock::guest {

struct ShareMount {
  std::string tag;         // virtio-9p mount_tag
  std::string guest_path;  // absolute
  bool read_only = false;
};

using Ipv4Address = std::array<std::uint8_t, 4>;  // network byte order: {192, 168, 127, 2}
using MacAddress = std::array<std::uint8_t, 6>;

// eth0's static configuration (airlock.ip / gw / dns / mtu / mac). Only produced when
// every given key is valid and consistent: a half-applied network is harder to reason
// about than none, so one bad value leaves the interface down (with a warning).
struct NetworkConfig {
  Ipv4Address address{};
  unsigned prefix_length = 24;          // 1..32
  std::optional<Ipv4Address> gateway;   // default route; inside the subnet
  std::optional<Ipv4Address> dns;       // the only nameserver in /etc/resolv.conf
  std::optional<unsigned> mtu;          // 68..65535; absent: the driver's default
  std::optional<MacAddress> mac;        // absent: the address QEMU gave the NIC
};

// One extra /etc/hosts line (airlock.hosts=NAME:IP,...).
struct HostEntry {
  std::string name;
  std::string address;  // dotted quad, or IPv6 text
};

struct BootConfig {
  std::string hostname = "airlock";
  std::vector<HostEntry> hosts;
  std::string workspace = "/workspace";
  std::vector<ShareMount> mounts;
  bool probe = false;
  std::uint32_t uid = 1000;  // the sandbox user ("airlock")
  std::optional<NetworkConfig> network;  // absent: only lo comes up
  std::vector<std::string> warnings;
};

// Splits a kernel command line into words, honouring double quotes like the kernel does.
std::vector<std::string> split_cmdline(std::string_view cmdline);

// Parses `airlock.*` keys; everything else is the kernel's business and is ignored.
BootConfig parse_cmdline(std::string_view cmdline);

// Parses one airlock.mounts entry "TAG:GUESTPATH[:ro|rw]"; false if malformed.
bool parse_share_mount(std::string_view text, ShareMount& out);

// Parses one airlock.hosts entry "NAME:IP" (split at the first ':', so IPv6 works);
// false if the name is not a host name or the address not an IPv4/IPv6 address.
bool parse_host_entry(std::string_view text, HostEntry& out);

// Strict dotted quad: four decimal octets 0..255, no leading zeros (inet_aton would read
// "010" as octal), nothing else.
std::optional<Ipv4Address> parse_ipv4(std::string_view text);
// "a.b.c.d/N" with N in 1..32.
bool parse_ipv4_cidr(std::string_view text, Ipv4Address& address, unsigned& prefix_length);
// "52:54:00:12:34:56" (hex, either case); refuses multicast and all-zero addresses.
std::optional<MacAddress> parse_mac(std::string_view text);
std::string format_ipv4(const Ipv4Address& address);
// The netmask of a prefix length, e.g. 24 -> {255, 255, 255, 0}.
Ipv4Address netmask_of(unsigned prefix_length);

}  // namespace airlock::guest
