// Splitting a URL (or "host:port") into the parts policy decisions need.
//
// Only what a decision needs: scheme, host, port, path. The authority's host is taken
// after the last '@' (userinfo is dropped, so "https://allowed.com@evil.com/" names
// evil.com), IPv6 literals must be bracketed, and anything a browser and a C library
// might read differently ('\\', '%' in the host, spaces, control bytes) is refused
// rather than guessed at.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "policy/host_pattern.hpp"

namespace airlock::policy {

struct UrlTarget {
  std::string scheme;        // lower-case; "" for a bare host:port
  Host host;
  std::uint16_t port = 0;    // explicit, or the scheme's default
  std::string path;          // path and query as given ("/" if absent)
};

// RFC 3986 unreserved: ALPHA DIGIT - . _ ~ (the bytes a percent-escape never needs).
inline bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

// Accepts http, https, ws and wss URLs, or "host:port".
Result<UrlTarget> parse_url(std::string_view url);

// "host[:port]" as in a Host header or an authority. default_port is used when absent.
Result<std::pair<Host, std::uint16_t>> parse_authority(std::string_view authority,
                                                       std::uint16_t default_port);

}  // namespace airlock::policy
