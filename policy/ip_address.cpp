// IpAddress and Cidr: reading and printing IPv4/IPv6 addresses and CIDR blocks.
//
// Handles two dialects. IpAddress::parse takes the canonical spellings a policy file
// should use: four decimal IPv4 parts without leading zeros, or IPv6 text (optionally
// [bracketed]). IpAddress::parse_host_literal takes what a C resolver would treat as an
// address rather than a name, so guest-chosen spellings ("0x7f.1", "2130706433") are
// judged as the IP they reach instead of going to DNS: every inet_aton(3) form of IPv4,
// and IPv6 text bracketed or not.
//
// Refuses: IPv6 zone ids ("%eth0"), trailing garbage (glibc's inet_aton ignores anything
// after a space; we do not), empty parts, trailing dots, parts that overflow their
// width, and any text longer than kMaxLiteral. IPv4 is parsed here, by hand, so the
// rules are explicit and bounded; IPv6 text goes through inet_pton(3), which is strict.
// Output is RFC 5952 for IPv6, with IPv4-mapped addresses as "::ffff:a.b.c.d".
#include "policy/ip_address.hpp"

#include <arpa/inet.h>

#include <algorithm>

namespace airlock::policy {

namespace {

// Longer than any host name (253) and any IPv6 text (45); longer input is never an IP.
constexpr std::size_t kMaxLiteral = 255;
// inet_pton needs a NUL-terminated copy; valid IPv6 text is at most 45 bytes.
constexpr std::size_t kMaxV6Text = 63;

int digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// One canonical IPv4 part: 1-3 decimal digits, no leading zero unless it is "0".
std::optional<std::uint8_t> parse_canonical_octet(std::string_view part) {
  if (part.empty() || part.size() > 3) return std::nullopt;
  if (part.size() > 1 && part[0] == '0') return std::nullopt;
  unsigned value = 0;
  for (char c : part) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 255) return std::nullopt;
  return static_cast<std::uint8_t>(value);
}

std::optional<IpAddress> parse_canonical_v4(std::string_view text) {
  std::uint32_t value = 0;
  for (int i = 0; i < 4; ++i) {
    std::size_t dot = text.find('.');
    if ((i < 3) != (dot != std::string_view::npos)) return std::nullopt;
    auto octet = parse_canonical_octet(text.substr(0, dot));
    if (!octet) return std::nullopt;
    value = (value << 8) | *octet;
    text = i < 3 ? text.substr(dot + 1) : std::string_view{};
  }
  return IpAddress::v4(value);
}

// One inet_aton part, as strtoul(.., 0) reads it after inet_aton's "starts with a digit"
// check: hex after "0x"/"0X" (at least one hex digit), octal after a leading "0",
// decimal otherwise. The whole part must be consumed and fit 32 bits.
std::optional<std::uint32_t> parse_aton_part(std::string_view part) {
  if (part.empty()) return std::nullopt;
  unsigned base = 10;
  if (part.size() >= 2 && part[0] == '0' && (part[1] == 'x' || part[1] == 'X')) {
    base = 16;
    part.remove_prefix(2);
    if (part.empty()) return std::nullopt;
  } else if (part[0] == '0') {
    base = 8;
  }
  std::uint64_t value = 0;
  for (char c : part) {
    int d = digit_value(c);
    if (d < 0 || static_cast<unsigned>(d) >= base) return std::nullopt;
    value = value * base + static_cast<unsigned>(d);
    if (value > 0xffffffffULL) return std::nullopt;  // checked each step: no overflow
  }
  return static_cast<std::uint32_t>(value);
}

// inet_aton's forms: a.b.c.d (bytes), a.b.c (c is 16 bits), a.b (b is 24 bits),
// a (32 bits). Every part but the last must fit a byte.
std::optional<IpAddress> parse_aton_v4(std::string_view text) {
  std::array<std::uint32_t, 4> parts{};
  std::size_t count = 0;
  while (true) {
    if (count == parts.size()) return std::nullopt;  // a fifth part
    std::size_t dot = text.find('.');
    auto part = parse_aton_part(text.substr(0, dot));
    if (!part) return std::nullopt;
    parts[count++] = *part;
    if (dot == std::string_view::npos) break;
    text.remove_prefix(dot + 1);  // "1.2." leaves an empty part, refused above
  }
  static constexpr std::array<std::uint32_t, 4> kLastMax = {0xffffffffU, 0xffffffU, 0xffffU,
                                                            0xffU};
  std::uint32_t last = parts[count - 1];
  if (last > kLastMax[count - 1]) return std::nullopt;
  std::uint32_t value = 0;
  for (std::size_t i = 0; i + 1 < count; ++i) {
    if (parts[i] > 0xff) return std::nullopt;
    value |= parts[i] << (24 - 8 * i);
  }
  return IpAddress::v4(value | last);
}

std::optional<IpAddress> parse_v6(std::string_view text) {
  if (text.empty() || text.size() > kMaxV6Text) return std::nullopt;
  // A zone id names a local interface; a policy can't reason about it, so refuse it.
  if (text.find('%') != std::string_view::npos) return std::nullopt;
  std::array<char, kMaxV6Text + 1> buffer{};
  std::copy(text.begin(), text.end(), buffer.begin());
  std::array<std::uint8_t, 16> bytes{};
  if (inet_pton(AF_INET6, buffer.data(), bytes.data()) != 1) return std::nullopt;
  return IpAddress::v6(bytes);
}

// "[...]" holds IPv6 only; returns the inside, or nullopt when the brackets are unbalanced.
std::optional<std::string_view> strip_brackets(std::string_view text) {
  bool open = !text.empty() && text.front() == '[';
  bool close = !text.empty() && text.back() == ']';
  if (!open && !close) return text;
  if (!open || !close || text.size() < 2) return std::nullopt;
  return text.substr(1, text.size() - 2);
}

std::string format_v4(std::uint32_t value) {
  std::string out;
  for (int shift = 24; shift >= 0; shift -= 8) {
    if (!out.empty()) out += '.';
    out += std::to_string((value >> shift) & 0xff);
  }
  return out;
}

void append_hex_group(std::string& out, unsigned group) {
  static constexpr char kHex[] = "0123456789abcdef";
  bool started = false;
  for (int shift = 12; shift >= 0; shift -= 4) {
    unsigned nibble = (group >> shift) & 0xf;
    if (nibble == 0 && !started && shift != 0) continue;  // RFC 5952: no leading zeros
    started = true;
    out += kHex[nibble];
  }
}

// RFC 5952: lower-case, no leading zeros, the longest run of two or more zero groups
// (the first on a tie) shortened to "::".
std::string format_v6(const std::array<std::uint8_t, 16>& bytes) {
  static constexpr std::array<std::uint8_t, 12> kMappedPrefix = {0, 0, 0, 0, 0, 0,
                                                                 0, 0, 0, 0, 0xff, 0xff};
  if (std::equal(kMappedPrefix.begin(), kMappedPrefix.end(), bytes.begin())) {
    std::uint32_t v4 = (std::uint32_t{bytes[12]} << 24) | (std::uint32_t{bytes[13]} << 16) |
                       (std::uint32_t{bytes[14]} << 8) | bytes[15];
    return "::ffff:" + format_v4(v4);
  }
  std::array<unsigned, 8> groups{};
  for (std::size_t i = 0; i < 8; ++i) groups[i] = (unsigned{bytes[2 * i]} << 8) | bytes[2 * i + 1];
  int best_start = -1, best_len = 0;
  for (int i = 0; i < 8;) {
    if (groups[i] != 0) {
      ++i;
      continue;
    }
    int j = i;
    while (j < 8 && groups[j] == 0) ++j;
    if (j - i > best_len) {
      best_start = i;
      best_len = j - i;
    }
    i = j;
  }
  if (best_len < 2) best_start = -1;
  std::string out;
  for (int i = 0; i < 8; ++i) {
    if (i == best_start) {
      out += "::";
      i += best_len - 1;
      continue;
    }
    if (!out.empty() && out.back() != ':') out += ':';
    append_hex_group(out, groups[i]);
  }
  return out;
}

// Prefix lengths are written in decimal without leading zeros ("/08" is refused).
std::optional<int> parse_prefix_length(std::string_view text, int max) {
  if (text.empty() || text.size() > 3 || (text.size() > 1 && text[0] == '0'))
    return std::nullopt;
  int value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  if (value > max) return std::nullopt;
  return value;
}

IpAddress masked(const IpAddress& address, int prefix) {
  std::array<std::uint8_t, 16> bytes = address.bytes();
  int length = address.bit_length() / 8;
  for (int i = 0; i < length; ++i) {
    int keep = std::clamp(prefix - 8 * i, 0, 8);
    bytes[i] = static_cast<std::uint8_t>(bytes[i] & (0xff00U >> keep));
  }
  if (address.is_v4()) {
    return IpAddress::v4((std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) |
                         (std::uint32_t{bytes[2]} << 8) | bytes[3]);
  }
  return IpAddress::v6(bytes);
}

}  // namespace

IpAddress IpAddress::v4(std::uint32_t host_order) {
  IpAddress a;
  a.family_ = Family::v4;
  a.bytes_[0] = static_cast<std::uint8_t>(host_order >> 24);
  a.bytes_[1] = static_cast<std::uint8_t>(host_order >> 16);
  a.bytes_[2] = static_cast<std::uint8_t>(host_order >> 8);
  a.bytes_[3] = static_cast<std::uint8_t>(host_order);
  return a;
}

IpAddress IpAddress::v6(const std::array<std::uint8_t, 16>& bytes) {
  IpAddress a;
  a.family_ = Family::v6;
  a.bytes_ = bytes;
  return a;
}

std::uint32_t IpAddress::v4_value() const {
  return (std::uint32_t{bytes_[0]} << 24) | (std::uint32_t{bytes_[1]} << 16) |
         (std::uint32_t{bytes_[2]} << 8) | bytes_[3];
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  if (text.size() > kMaxLiteral) return std::nullopt;
  auto inner = strip_brackets(text);
  if (!inner) return std::nullopt;
  if (inner->size() != text.size()) return parse_v6(*inner);  // brackets: IPv6 only
  if (text.find(':') != std::string_view::npos) return parse_v6(text);
  return parse_canonical_v4(text);
}

std::optional<IpAddress> IpAddress::parse_host_literal(std::string_view text) {
  if (text.size() > kMaxLiteral) return std::nullopt;
  auto inner = strip_brackets(text);
  if (!inner) return std::nullopt;
  if (inner->size() != text.size()) return parse_v6(*inner);
  if (text.find(':') != std::string_view::npos) return parse_v6(text);
  return parse_aton_v4(text);
}

std::string IpAddress::to_string() const {
  return is_v4() ? format_v4(v4_value()) : format_v6(bytes_);
}

Cidr::Cidr(IpAddress base, int prefix_length)
    : base_(base), prefix_(std::clamp(prefix_length, 0, base.bit_length())) {
  base_ = masked(base_, prefix_);
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
  std::size_t slash = text.find('/');
  auto address = IpAddress::parse(text.substr(0, slash));
  if (!address) return std::nullopt;
  if (slash == std::string_view::npos) return Cidr(*address, address->bit_length());
  auto prefix = parse_prefix_length(text.substr(slash + 1), address->bit_length());
  if (!prefix) return std::nullopt;
  Cidr cidr(*address, *prefix);
  // "10.0.0.1/8" is most likely a typo for a host or for 10.0.0.0/8; refuse to guess.
  if (cidr.base() != *address) return std::nullopt;
  return cidr;
}

bool Cidr::contains(const IpAddress& address) const {
  if (address.family() != base_.family()) return false;
  return masked(address, prefix_) == base_;
}

std::string Cidr::to_string() const {
  return base_.to_string() + "/" + std::to_string(prefix_);
}

}  // namespace airlock::policy
