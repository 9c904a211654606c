// Host names and allowlist patterns.
//
// Matching works on canonical names only: lower-case ASCII, no trailing dot, labels of
// [a-z0-9-] (and '_', which real DNS names carry), 1..63 bytes each, 253 in all.
// Internationalised names are accepted only in their ASCII (xn--) form; anything else
// (userinfo, '@', '/', spaces, empty labels, non-ASCII) is not a host name at all, so
// spellings like "allowed.com@evil.com" can never match "allowed.com".
//
// Pattern forms (with an optional ":port" on each; IPv6 with a port as "[::1]:443"):
//   example.com        that exact name
//   *.example.com      any name strictly below example.com (not the apex itself)
//   203.0.113.7        that IP literal          (canonical spellings only)
//   203.0.113.0/24     any IP literal in the CIDR block, IPv4 or IPv6
//   *                  any host name or IP (still subject to the IP guard)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.hpp"
#include "policy/ip_address.hpp"

namespace airlock::policy {

// Lower-cases, strips one trailing dot and validates. Returns nullopt for anything that
// is not a well-formed ASCII host name. IP literals are not host names: callers check
// IpAddress::parse_host_literal first.
std::optional<std::string> canonical_host_name(std::string_view name);

// A host as a flow or request names it: either a canonical name or an IP.
struct Host {
  std::variant<std::string, IpAddress> value;

  // Parses what a guest sent (URL authority host, Host header host, SNI): IP literals in
  // every inet_aton spelling and bracketed IPv6 become IpAddress; names are
  // canonicalised. Error text says what is wrong.
  static Result<Host> parse(std::string_view text);

  bool is_ip() const { return std::holds_alternative<IpAddress>(value); }
  const std::string& name() const { return std::get<std::string>(value); }
  const IpAddress& ip() const { return std::get<IpAddress>(value); }
  std::string to_string() const;  // name, or the canonical IP text (IPv6 unbracketed)
  // Same canonical name, or same address.
  friend bool operator==(const Host&, const Host&) = default;
};

class HostPattern {
 public:
  enum class Kind : std::uint8_t { exact, wildcard, any, ip, cidr };

  // Parses a pattern as written in a policy file or --allow-host. The error text is a
  // sentence fit to follow "invalid host pattern: ".
  static Result<HostPattern> parse(std::string_view text);

  bool matches(const Host& host, std::optional<std::uint16_t> port) const;

  Kind kind() const { return kind_; }
  std::optional<std::uint16_t> port() const { return port_; }
  // Canonical text of the pattern, e.g. "*.example.com:443".
  std::string to_string() const;

 private:
  Kind kind_ = Kind::exact;
  std::string name_;                  // exact: the name; wildcard: the suffix without "*."
  std::optional<Cidr> cidr_;          // ip and cidr
  std::optional<std::uint16_t> port_;
};

// An ordered list of patterns; returns the first that matches (for "which rule").
class HostMatcher {
 public:
  HostMatcher() = default;
  explicit HostMatcher(std::vector<HostPattern> patterns) : patterns_(std::move(patterns)) {}

  const HostPattern* find(const Host& host, std::optional<std::uint16_t> port) const;
  const std::vector<HostPattern>& patterns() const { return patterns_; }
  bool empty() const { return patterns_.empty(); }

 private:
  std::vector<HostPattern> patterns_;
};

}  // namespace airlock::policy
