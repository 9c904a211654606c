// IpGuard: decides whether an address a flow would reach is public.
//
// Every resolved upstream address and every literal IP a guest names passes through
// IpGuard::check before anything is dialled. The special-purpose set covers IPv4
// (0/8, 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12, 192.0.0/24, 192.0.2/24,
// 192.88.99/24, 192.168/16, 198.18/15, 198.51.100/24, 203.0.113/24, 224/4, 240/4,
// 255.255.255.255) and IPv6 (::, ::1, fc00::/7, fe80::/10, ff00::/8, 2001:db8::/32,
// 100::/64), plus well-known cloud metadata addresses. IPv6 forms that carry an IPv4
// address (IPv4-mapped, IPv4-compatible, NAT64 64:ff9b::/96 and 64:ff9b:1::/48, 6to4
// 2002::/16, Teredo 2001::/32) are judged by the IPv4 address they carry as well.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "policy/ip_address.hpp"

namespace airlock::policy {

// Why an address is not public. Stable snake_case names via to_string().
enum class AddressClass {
  public_address,
  unspecified,        // 0.0.0.0/8, ::
  loopback,           // 127/8, ::1
  private_network,    // 10/8, 172.16/12, 192.168/16, fc00::/7
  shared_address,     // 100.64/10 (carrier-grade NAT)
  link_local,         // 169.254/16, fe80::/10
  cloud_metadata,     // 169.254.169.254, fd00:ec2::254, 100.100.100.200, ...
  documentation,      // 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32
  benchmarking,       // 198.18/15
  protocol_assignment,// 192.0.0/24
  relay_anycast,      // 192.88.99/24
  multicast,          // 224/4, ff00::/8
  reserved,           // 240/4
  broadcast,          // 255.255.255.255
  discard_only,       // 100::/64
};

std::string_view to_string(AddressClass c);

struct IpVerdict {
  AddressClass address_class = AddressClass::public_address;
  // The IPv4 address an IPv6 address embeds, when it was what decided.
  std::optional<IpAddress> embedded_v4;
  // Whether a flow may be dialled to this address: public, or not public but let
  // through by an allow_private entry (exception=true) or block_private_ips=false.
  bool allowed = true;
  bool exception = false;

  bool is_public() const { return address_class == AddressClass::public_address; }
};

class IpGuard {
 public:
  IpGuard() = default;
  // block_private=false turns the guard off (every address allowed; the verdict still
  // says what the address is). allow_private lists the exceptions (CIDRs; a bare
  // address is a /32 or /128).
  IpGuard(bool block_private, std::vector<Cidr> allow_private);

  // Pure classification, no exceptions applied.
  static IpVerdict classify(const IpAddress& address);

  // Classification with this guard's settings applied.
  IpVerdict check(const IpAddress& address) const;

 private:
  bool block_private_ = true;
  std::vector<Cidr> allow_private_;
};

}  // namespace airlock::policy
