// IP addresses and CIDR blocks as the policy sees them.
//
// Two parsers on purpose:
//  - IpAddress::parse accepts the canonical spellings only (dotted-quad IPv4 with four
//    decimal parts, RFC 4291 IPv6 text, optionally in [brackets]). Policy files use it.
//  - IpAddress::parse_host_literal accepts everything a C library resolver would take as
//    an address instead of a name: all inet_aton(3) spellings of IPv4 ("2130706433",
//    "0x7f.1", "0177.0.0.1", "127.1") and IPv6 (bracketed or not, with %zone refused).
//    Hosts coming from guests (URLs, Host headers, SNI) go through it, so such a host is
//    judged as an IP and never sent to DNS.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace airlock::policy {

class IpAddress {
 public:
  enum class Family : std::uint8_t { v4, v6 };

  static IpAddress v4(std::uint32_t host_order);
  static IpAddress v6(const std::array<std::uint8_t, 16>& bytes);

  static std::optional<IpAddress> parse(std::string_view text);
  static std::optional<IpAddress> parse_host_literal(std::string_view text);

  Family family() const { return family_; }
  bool is_v4() const { return family_ == Family::v4; }
  // IPv4 as a host-order integer; only meaningful when is_v4().
  std::uint32_t v4_value() const;
  // Network-order bytes: 4 used for IPv4, 16 for IPv6.
  const std::array<std::uint8_t, 16>& bytes() const { return bytes_; }
  int bit_length() const { return is_v4() ? 32 : 128; }

  std::string to_string() const;  // canonical text (RFC 5952 for IPv6)

  friend bool operator==(const IpAddress&, const IpAddress&) = default;

 private:
  Family family_ = Family::v4;
  std::array<std::uint8_t, 16> bytes_{};
};

class Cidr {
 public:
  Cidr(IpAddress base, int prefix_length);  // host bits are cleared

  // "10.0.0.0/8", "fc00::/7", or a bare address (a /32 or /128). Host bits set in the
  // text ("10.0.0.1/8") are an error: nullopt.
  static std::optional<Cidr> parse(std::string_view text);

  bool contains(const IpAddress& address) const;
  const IpAddress& base() const { return base_; }
  int prefix_length() const { return prefix_; }
  std::string to_string() const;

  friend bool operator==(const Cidr&, const Cidr&) = default;

 private:
  IpAddress base_;
  int prefix_;
};

}  // namespace airlock::policy
