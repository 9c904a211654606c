// IpGuard: is an address public, and if not, may a flow reach it anyway?
//
// Handles every IPv4 and IPv6 address: the IANA special-purpose blocks listed in
// ip_guard.hpp, well-known cloud metadata endpoints, and the IPv6 forms that carry an
// IPv4 address (mapped, compatible, NAT64, 6to4, Teredo), which are judged by that IPv4
// address too, since a relay or translator would deliver the flow there.
//
// Refuses by classification, never by error: there is no input it cannot judge. Choices
// made on the safe side:
//  - 64:ff9b:1::/48 (RFC 8215) is for local NAT64 deployments, so all of it is
//    private_network instead of guessing where its operator put the IPv4 bits.
//  - fec0::/10 (deprecated site-local, RFC 3879) is private_network: stacks still route it
//    locally.
//  - Teredo is judged by its client and its server address, client first.
//  - A cloud metadata address is let through only by an allow_private entry naming
//    exactly that address; a broad "169.254.0.0/16" for local devices does not open it.
//  - An allow_private entry covers an address and its IPv4-mapped twin (::ffff:a.b.c.d),
//    which reach the same host; NAT64, 6to4 and Teredo forms must be listed themselves.
#include "policy/ip_guard.hpp"

#include <algorithm>
#include <utility>

namespace airlock::policy {

namespace {

using Bytes = std::array<std::uint8_t, 16>;

struct V4Block {
  std::uint32_t base;
  int prefix;
  AddressClass address_class;
};

struct V6Block {
  Bytes base;
  int prefix;
  AddressClass address_class;
};

// Checked before the blocks: several sit inside a block with another class, and one
// (Azure's wireserver) inside public space.
constexpr std::uint32_t kV4Metadata[] = {
    0xa9fea9fe,  // 169.254.169.254: AWS, GCP, Azure, OpenStack, DigitalOcean, ...
    0xa9feaa02,  // 169.254.170.2: AWS ECS task metadata
    0x646464c8,  // 100.100.100.200: Alibaba Cloud
    0xc00000c0,  // 192.0.0.192: Oracle Cloud
    0xa83f8110,  // 168.63.129.16: Azure wireserver
};
constexpr Bytes kV6Metadata = {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0,
                               0,    0,    0,    0,    0, 0, 0x02, 0x54};  // fd00:ec2::254

constexpr std::uint32_t kBroadcast = 0xffffffff;

constexpr V4Block kV4Blocks[] = {
    {0x00000000, 8, AddressClass::unspecified},          // 0.0.0.0/8 "this network"
    {0x0a000000, 8, AddressClass::private_network},      // 10/8
    {0x64400000, 10, AddressClass::shared_address},      // 100.64/10
    {0x7f000000, 8, AddressClass::loopback},             // 127/8
    {0xa9fe0000, 16, AddressClass::link_local},          // 169.254/16
    {0xac100000, 12, AddressClass::private_network},     // 172.16/12
    {0xc0000000, 24, AddressClass::protocol_assignment}, // 192.0.0/24
    {0xc0000200, 24, AddressClass::documentation},       // 192.0.2/24 TEST-NET-1
    {0xc0586300, 24, AddressClass::relay_anycast},       // 192.88.99/24 6to4 relays
    {0xc0a80000, 16, AddressClass::private_network},     // 192.168/16
    {0xc6120000, 15, AddressClass::benchmarking},        // 198.18/15
    {0xc6336400, 24, AddressClass::documentation},       // 198.51.100/24 TEST-NET-2
    {0xcb007100, 24, AddressClass::documentation},       // 203.0.113/24 TEST-NET-3
    {0xe0000000, 4, AddressClass::multicast},            // 224/4
    {0xf0000000, 4, AddressClass::reserved},             // 240/4
};

constexpr V6Block kV6Blocks[] = {
    {{0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48, AddressClass::private_network},  // 64:ff9b:1::/48
    {{0xfc}, 7, AddressClass::private_network},                                // fc00::/7
    {{0xfe, 0xc0}, 10, AddressClass::private_network},                         // fec0::/10
    {{0xfe, 0x80}, 10, AddressClass::link_local},                              // fe80::/10
    {{0xff}, 8, AddressClass::multicast},                                      // ff00::/8
    {{0x20, 0x01, 0x0d, 0xb8}, 32, AddressClass::documentation},               // 2001:db8::/32
    {{0x01, 0x00}, 64, AddressClass::discard_only},                            // 100::/64
};

bool has_prefix(const Bytes& address, const Bytes& base, int prefix) {
  for (int i = 0; i < 16 && prefix > 0; ++i, prefix -= 8) {
    unsigned mask = (0xff00U >> std::min(prefix, 8)) & 0xffU;
    if (((address[i] ^ base[i]) & mask) != 0) return false;
  }
  return true;
}

std::uint32_t read_v4(const Bytes& bytes, std::size_t at) {
  return (std::uint32_t{bytes[at]} << 24) | (std::uint32_t{bytes[at + 1]} << 16) |
         (std::uint32_t{bytes[at + 2]} << 8) | bytes[at + 3];
}

AddressClass classify_v4(std::uint32_t v4) {
  if (std::find(std::begin(kV4Metadata), std::end(kV4Metadata), v4) != std::end(kV4Metadata))
    return AddressClass::cloud_metadata;
  if (v4 == kBroadcast) return AddressClass::broadcast;
  for (const V4Block& block : kV4Blocks) {
    std::uint32_t mask = block.prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - block.prefix);
    if ((v4 & mask) == block.base) return block.address_class;
  }
  return AddressClass::public_address;
}

// The IPv4 addresses an IPv6 address carries, in the order they are judged.
std::vector<std::uint32_t> embedded_v4s(const Bytes& b) {
  static constexpr Bytes kMapped = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  static constexpr Bytes kNat64 = {0x00, 0x64, 0xff, 0x9b};
  static constexpr Bytes k6to4 = {0x20, 0x02};
  static constexpr Bytes kTeredo = {0x20, 0x01, 0x00, 0x00};
  if (has_prefix(b, kMapped, 96)) return {read_v4(b, 12)};  // ::ffff:0:0/96
  if (has_prefix(b, Bytes{}, 96)) return {read_v4(b, 12)};  // ::/96, IPv4-compatible
  if (has_prefix(b, kNat64, 96)) return {read_v4(b, 12)};   // 64:ff9b::/96
  if (has_prefix(b, k6to4, 16)) return {read_v4(b, 2)};     // 2002:V4ADDR::/48
  if (has_prefix(b, kTeredo, 32))                           // 2001:0:SERVER:flags:port:~CLIENT
    return {~read_v4(b, 12), read_v4(b, 4)};
  return {};
}

IpVerdict classify_v6(const Bytes& b) {
  static constexpr Bytes kUnspecified{};
  static constexpr Bytes kLoopback = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  IpVerdict verdict;
  if (b == kUnspecified) verdict.address_class = AddressClass::unspecified;
  else if (b == kLoopback) verdict.address_class = AddressClass::loopback;
  else if (b == kV6Metadata) verdict.address_class = AddressClass::cloud_metadata;
  if (!verdict.is_public()) return verdict;

  for (std::uint32_t v4 : embedded_v4s(b)) {
    AddressClass c = classify_v4(v4);
    if (c == AddressClass::public_address) continue;
    verdict.address_class = c;
    verdict.embedded_v4 = IpAddress::v4(v4);
    return verdict;
  }
  for (const V6Block& block : kV6Blocks) {
    if (has_prefix(b, block.base, block.prefix)) {
      verdict.address_class = block.address_class;
      return verdict;
    }
  }
  return verdict;
}

// The same destination in the other family: ::ffff:a.b.c.d <-> a.b.c.d. A socket dialling
// an IPv4-mapped address reaches the IPv4 host, so exceptions apply across the two.
std::optional<IpAddress> other_family_spelling(const IpAddress& address) {
  static constexpr Bytes kMapped = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (address.is_v4()) {
    Bytes b = kMapped;
    std::copy_n(address.bytes().begin(), 4, b.begin() + 12);
    return IpAddress::v6(b);
  }
  if (has_prefix(address.bytes(), kMapped, 96)) return IpAddress::v4(read_v4(address.bytes(), 12));
  return std::nullopt;
}

}  // namespace

std::string_view to_string(AddressClass c) {
  switch (c) {
    case AddressClass::public_address: return "public_address";
    case AddressClass::unspecified: return "unspecified";
    case AddressClass::loopback: return "loopback";
    case AddressClass::private_network: return "private_network";
    case AddressClass::shared_address: return "shared_address";
    case AddressClass::link_local: return "link_local";
    case AddressClass::cloud_metadata: return "cloud_metadata";
    case AddressClass::documentation: return "documentation";
    case AddressClass::benchmarking: return "benchmarking";
    case AddressClass::protocol_assignment: return "protocol_assignment";
    case AddressClass::relay_anycast: return "relay_anycast";
    case AddressClass::multicast: return "multicast";
    case AddressClass::reserved: return "reserved";
    case AddressClass::broadcast: return "broadcast";
    case AddressClass::discard_only: return "discard_only";
  }
  return "unknown";
}

IpGuard::IpGuard(bool block_private, std::vector<Cidr> allow_private)
    : block_private_(block_private), allow_private_(std::move(allow_private)) {}

IpVerdict IpGuard::classify(const IpAddress& address) {
  if (address.is_v4()) {
    IpVerdict verdict;
    verdict.address_class = classify_v4(address.v4_value());
    return verdict;
  }
  return classify_v6(address.bytes());
}

IpVerdict IpGuard::check(const IpAddress& address) const {
  IpVerdict verdict = classify(address);
  if (verdict.is_public() || !block_private_) return verdict;  // allowed, no exception
  std::optional<IpAddress> alias = other_family_spelling(address);
  bool metadata = verdict.address_class == AddressClass::cloud_metadata;
  for (const Cidr& cidr : allow_private_) {
    bool single = cidr.prefix_length() == cidr.base().bit_length();
    if (metadata && !single) continue;
    if (cidr.contains(address) || (alias && cidr.contains(*alias))) {
      verdict.exception = true;
      return verdict;
    }
  }
  verdict.allowed = false;
  return verdict;
}

}  // namespace airlock::policy
