// HTTP/1.x message heads as the MITM proxy sees them: plain values filled in by
// RequestParser and ResponseParser, and read or edited by the policy side.
//
// Header names keep the spelling the sender used; every lookup is case-insensitive.
// Values carry no leading or trailing whitespace (RFC 9110 5.5). Headers keep their
// order, and a name may appear more than once (the parsers refuse the repeats that
// matter for framing: Content-Length, Transfer-Encoding, Host).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace airlock::http {

struct Header {
  std::string name;
  std::string value;

  bool operator==(const Header&) const = default;
};

struct RequestHead {
  std::string method;                  // as on the wire, e.g. "GET"
  std::string target;                  // request-target as sent (origin or absolute form);
                                       // HTTP/2: :path (:authority becomes a Host header)
  int version_major = 1;               // 1, or 2 for a request that came over HTTP/2
  int version_minor = 1;               // HTTP/1.<minor>: 1 or 0
  std::vector<Header> headers;
  bool keep_alive = true;              // another request may follow on this connection
  bool chunked = false;                // Transfer-Encoding: chunked
  std::optional<std::uint64_t> content_length;
  bool expect_continue = false;        // Expect: 100-continue
  bool upgrade = false;                // Upgrade + Connection: upgrade, or CONNECT

  bool operator==(const RequestHead&) const = default;
};

struct ResponseHead {
  int status = 0;
  std::string reason;
  int version_major = 1;
  int version_minor = 1;
  std::vector<Header> headers;
  bool keep_alive = true;              // another response may follow on this connection

  bool operator==(const ResponseHead&) const = default;
};

// Caps on what a peer may make a parser hold. A head (start line, headers, the blank
// line, and any empty lines before it) longer than max_head_bytes, or with more than
// max_headers fields, is refused; the same caps apply to the trailer section of a
// chunked message.
struct ParserLimits {
  std::size_t max_head_bytes = 64 * 1024;
  std::size_t max_headers = 128;
};

// ASCII case-insensitive comparison, as header names and tokens compare.
bool iequals(std::string_view a, std::string_view b);

// The first header with this name (case-insensitive), or nullptr.
const Header* find_header(const std::vector<Header>& headers, std::string_view name);

// Removes every header with this name; returns how many went.
std::size_t remove_headers(std::vector<Header>& headers, std::string_view name);

// Replaces every header with this name by one header (at the first one's place, or at
// the end when there was none) carrying the given spelling and value.
void set_header(std::vector<Header>& headers, std::string_view name, std::string_view value);

}  // namespace airlock::http
