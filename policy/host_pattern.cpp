// Host names, hosts named by guests, and allowlist patterns (see host_pattern.hpp).
//
// Handles: canonicalising names (lower-case, one trailing dot dropped), guest hosts that
// are really IP literals in any inet_aton or IPv6 spelling, and the pattern forms
// "name", "*.suffix", "*", IP, CIDR, each with an optional ":port" ("[v6]:port").
//
// Refuses, with a sentence saying why: characters outside [A-Za-z0-9._-] (so "a.com@b.com",
// "a.com/x", "a b" are never names), empty labels, labels over 63 bytes, names over 253,
// non-ASCII names (a policy author is shown the xn-- form, computed with libidn2; guest
// text is never fed to libidn2), '*' anywhere but as the whole leftmost label, ports
// outside 1..65535, CIDRs with host bits set, and IP literals in a pattern that are not
// canonical ("127.1"), which would otherwise silently never match.
//
// A name whose last label is a number ("1.2.3.256", "a.0x10") is refused as a name, as
// the WHATWG URL standard does: no TLD is numeric, and a resolver handed such a name might
// decide it is an address after all.
#include "policy/host_pattern.hpp"

#include <idn2.h>

#include <algorithm>

namespace airlock::policy {

namespace {

constexpr std::size_t kMaxName = 253;
constexpr std::size_t kMaxLabel = 63;
// Nothing longer is read at all: a name, a port and brackets fit well within it.
constexpr std::size_t kMaxInput = 512;
// Error messages quote at most this much of the input.
constexpr std::size_t kMaxQuoted = 80;

bool is_ascii_text(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

bool is_printable(char c) {
  auto u = static_cast<unsigned char>(c);
  return u >= 0x20 && u < 0x7f;
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

char to_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// Guest text ends up in logs and 403 bodies: print it safely and briefly.
std::string quote(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size() && i < kMaxQuoted; ++i) {
    auto u = static_cast<unsigned char>(text[i]);
    if (is_printable(text[i]) && text[i] != '"' && text[i] != '\\') {
      out += text[i];
    } else {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    }
  }
  if (text.size() > kMaxQuoted) out += "...";
  return out + "\"";
}

std::string describe_char(char c) {
  if (c == ' ') return "a space";
  if (is_printable(c) && c != '\'') return std::string("'") + c + "'";
  return "the byte " + quote(std::string_view(&c, 1));
}

// WHATWG "ends in a number": the last label is all digits, or "0x" and hex digits.
bool ends_in_number(std::string_view name) {
  std::size_t dot = name.rfind('.');
  std::string_view last = dot == std::string_view::npos ? name : name.substr(dot + 1);
  if (last.empty()) return false;
  auto digits = [](std::string_view s, auto pred) { return std::all_of(s.begin(), s.end(), pred); };
  if (digits(last, [](char c) { return c >= '0' && c <= '9'; })) return true;
  return last.size() >= 2 && last[0] == '0' && last[1] == 'x' &&
         digits(last.substr(2), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Lower-cases, drops one trailing dot and validates; the error names the first problem.
Result<std::string> canonicalise(std::string_view text) {
  if (text.size() > kMaxInput) return Error{"host name is longer than 253 bytes"};
  std::string name(text);
  std::transform(name.begin(), name.end(), name.begin(), to_lower);
  if (!name.empty() && name.back() == '.') name.pop_back();
  if (name.empty()) return Error{"host name is empty"};
  if (name.size() > kMaxName)
    return Error{"host name " + quote(text) + " is longer than 253 bytes"};
  for (char c : name) {
    if (c != '.' && !is_name_char(c))
      return Error{"host name " + quote(text) + " contains " + describe_char(c) +
                   ", which is not allowed in a host name"};
  }
  std::size_t start = 0;
  while (start <= name.size()) {
    std::size_t end = std::min(name.find('.', start), name.size());
    if (end == start) return Error{"host name " + quote(text) + " has an empty label"};
    if (end - start > kMaxLabel)
      return Error{"host name " + quote(text) + " has a label longer than 63 bytes"};
    start = end + 1;
  }
  if (ends_in_number(name))
    return Error{quote(text) + " ends in a number but is not a valid IPv4 address"};
  return name;
}

Result<std::uint16_t> parse_port(std::string_view text) {
  if (text.empty()) return Error{"the port after ':' is empty"};
  if (!std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return Error{"port " + quote(text) + " is not a number"};
  unsigned value = 0;
  for (char c : text) {
    value = value * 10 + static_cast<unsigned>(c - '0');
    if (value > 65535) return Error{"port " + quote(text) + " is out of range (1-65535)"};
  }
  if (value == 0) return Error{"port 0 is not allowed (ports are 1-65535)"};
  return static_cast<std::uint16_t>(value);
}

struct SplitPattern {
  std::string_view host;
  std::optional<std::uint16_t> port;
  bool bracketed = false;
};

// "host", "host:port", "[v6]", "[v6]:port"; with two or more colons and no brackets
// the whole text is an IPv6 address or block and there is no port.
Result<SplitPattern> split_port(std::string_view text) {
  SplitPattern out;
  std::string_view port_text;
  bool has_port = false;
  if (text.front() == '[') {
    std::size_t close = text.find(']');
    if (close == std::string_view::npos) return Error{"unbalanced '[' in " + quote(text)};
    out.host = text.substr(1, close - 1);
    out.bracketed = true;
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return Error{"unexpected text after ']' in " + quote(text)};
      port_text = rest.substr(1);
      has_port = true;
    }
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    std::size_t colon = text.find(':');
    out.host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    has_port = true;
  } else {
    out.host = text;
  }
  if (has_port) {
    auto port = parse_port(port_text);
    if (!port) return Error{port.error()};
    out.port = *port;
  }
  return out;
}

// Says exactly what is wrong with "address/prefix"; Cidr::parse only says whether.
Result<Cidr> parse_cidr_pattern(std::string_view text) {
  if (auto cidr = Cidr::parse(text)) return *cidr;
  std::size_t slash = text.find('/');
  std::string_view address_text = text.substr(0, slash);
  std::string_view prefix_text = text.substr(slash + 1);
  auto address = IpAddress::parse(address_text);
  if (!address)
    return Error{quote(address_text) + " in " + quote(text) + " is not a canonical IP address"};
  int bits = address->bit_length();
  const char* family = address->is_v4() ? "IPv4" : "IPv6";
  bool digits = !prefix_text.empty() && prefix_text.size() <= 3 &&
                std::all_of(prefix_text.begin(), prefix_text.end(),
                            [](char c) { return c >= '0' && c <= '9'; });
  if (!digits || (prefix_text.size() > 1 && prefix_text[0] == '0'))
    return Error{"CIDR prefix length " + quote(prefix_text) + " in " + quote(text) +
                 " is not a number from 0 to " + std::to_string(bits)};
  int prefix = std::stoi(std::string(prefix_text));  // at most 3 digits: cannot throw
  if (prefix > bits)
    return Error{"CIDR prefix length " + std::to_string(prefix) + " is too long for " +
                 family + " (at most " + std::to_string(bits) + ")"};
  Cidr cidr(*address, prefix);
  return Error{quote(text) + " has host bits set; the block is \"" + cidr.to_string() + "\""};
}

// For a policy author: show the xn-- spelling to write instead.
std::string non_ascii_error(std::string_view host) {
  bool wildcard = host.substr(0, 2) == "*.";
  std::string input(wildcard ? host.substr(2) : host);
  bool plain = std::none_of(host.begin(), host.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f || c == '"';
  });
  char* ascii = nullptr;
  int rc = idn2_to_ascii_8z(input.c_str(), &ascii, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
  std::string message;
  if (rc == IDN2_OK && ascii != nullptr && plain) {
    message = "non-ASCII host name \"" + std::string(host) + "\": write its IDNA ASCII form \"" +
              (wildcard ? "*." : "") + ascii + "\"";
  } else {
    message = "non-ASCII host name " + quote(host) +
              " is not a valid internationalised name; write host names in ASCII (xn--) form";
  }
  idn2_free(ascii);
  return message;
}

// The same destination spelled in the other family: a.b.c.d <-> ::ffff:a.b.c.d.
std::optional<IpAddress> mapped_twin(const IpAddress& address) {
  std::array<std::uint8_t, 16> bytes{};
  bytes[10] = 0xff;
  bytes[11] = 0xff;
  if (address.is_v4()) {
    std::copy_n(address.bytes().begin(), 4, bytes.begin() + 12);
    return IpAddress::v6(bytes);
  }
  const auto& b = address.bytes();
  if (!std::equal(bytes.begin(), bytes.begin() + 12, b.begin())) return std::nullopt;
  return IpAddress::v4((std::uint32_t{b[12]} << 24) | (std::uint32_t{b[13]} << 16) |
                       (std::uint32_t{b[14]} << 8) | b[15]);
}

}  // namespace

std::optional<std::string> canonical_host_name(std::string_view name) {
  auto canonical = canonicalise(name);
  if (!canonical) return std::nullopt;
  return std::move(*canonical);
}

Result<Host> Host::parse(std::string_view text) {
  if (text.empty()) return Error{"empty host"};
  if (text.size() > kMaxInput) return Error{"host is longer than 253 bytes"};
  if (text.front() == '[' || text.find(':') != std::string_view::npos) {
    auto ip = IpAddress::parse_host_literal(text);
    if (ip && !ip->is_v4()) return Host{*ip};
    if (text.find('%') != std::string_view::npos)
      return Error{"IPv6 zone ids are not allowed in a host: " + quote(text)};
    return Error{quote(text) + " is not a valid IPv6 address"};
  }
  if (!is_ascii_text(text))
    return Error{"host name " + quote(text) +
                 " is not ASCII; internationalised names must be sent in IDNA (xn--) form"};
  // "127.0.0.1." is the loopback address to a browser (WHATWG) even if not to inet_aton.
  std::string_view bare = text.back() == '.' ? text.substr(0, text.size() - 1) : text;
  if (auto ip = IpAddress::parse_host_literal(bare)) return Host{*ip};
  auto name = canonicalise(text);
  if (!name) return Error{name.error()};
  return Host{std::move(*name)};
}

std::string Host::to_string() const { return is_ip() ? ip().to_string() : name(); }

Result<HostPattern> HostPattern::parse(std::string_view text) {
  if (text.empty()) return Error{"the pattern is empty"};
  if (text.size() > kMaxInput) return Error{"the pattern is longer than 512 bytes"};
  auto split = split_port(text);
  if (!split) return Error{split.error()};
  std::string_view host = split->host;
  HostPattern pattern;
  pattern.port_ = split->port;
  if (host.empty()) return Error{"there is no host in " + quote(text)};

  if (host == "*" && !split->bracketed) {
    pattern.kind_ = Kind::any;
    return pattern;
  }
  if (host.find('/') != std::string_view::npos) {
    auto cidr = parse_cidr_pattern(host);
    if (!cidr) return Error{cidr.error()};
    if (split->bracketed && cidr->base().is_v4())
      return Error{"only IPv6 goes in [brackets]: " + quote(text)};
    pattern.kind_ = Kind::cidr;
    pattern.cidr_ = *cidr;
    return pattern;
  }
  if (auto ip = IpAddress::parse(host)) {
    if (split->bracketed && ip->is_v4())
      return Error{"only IPv6 goes in [brackets]: " + quote(text)};
    pattern.kind_ = Kind::ip;
    pattern.cidr_ = Cidr(*ip, ip->bit_length());
    return pattern;
  }
  if (split->bracketed || host.find(':') != std::string_view::npos)
    return Error{quote(host) + " is not a valid IPv6 address (with a port, write \"[::1]:443\")"};
  if (auto ip = IpAddress::parse_host_literal(host))
    return Error{quote(host) + " is not a canonical IP address; write it as \"" +
                 ip->to_string() + "\""};

  bool wildcard = host.substr(0, 2) == "*.";
  std::string_view suffix = wildcard ? host.substr(2) : host;
  if (suffix.find('*') != std::string_view::npos)
    return Error{"'*' may only be the whole pattern or its whole leftmost label, as in "
                 "\"*.example.com\", not " + quote(host)};
  if (!is_ascii_text(host)) return Error{non_ascii_error(host)};
  if (wildcard && (suffix.empty() || suffix == "."))
    return Error{"\"*.\" must be followed by a domain, as in \"*.example.com\""};
  auto name = canonicalise(suffix);
  if (!name) return Error{name.error()};
  // "*." plus at least one byte and a dot must still fit in 253.
  if (wildcard && name->size() > kMaxName - 2)
    return Error{"no subdomain of " + quote(*name) + " fits in 253 bytes"};
  pattern.kind_ = wildcard ? Kind::wildcard : Kind::exact;
  pattern.name_ = std::move(*name);
  return pattern;
}

bool HostPattern::matches(const Host& host, std::optional<std::uint16_t> port) const {
  // A port-specific pattern needs that port; an unknown port does not satisfy it.
  if (port_ && port != port_) return false;
  switch (kind_) {
    case Kind::any:
      return true;
    case Kind::exact:
      return !host.is_ip() && host.name() == name_;
    case Kind::wildcard: {
      if (host.is_ip()) return false;
      const std::string& name = host.name();
      // Strictly below: "a.example.com", never "example.com" or "badexample.com".
      return name.size() > name_.size() + 1 &&
             name.compare(name.size() - name_.size(), name_.size(), name_) == 0 &&
             name[name.size() - name_.size() - 1] == '.';
    }
    case Kind::ip:
    case Kind::cidr: {
      if (!host.is_ip() || !cidr_) return false;
      if (cidr_->contains(host.ip())) return true;
      // ::ffff:10.0.0.1 is 10.0.0.1: a blocked_hosts entry must not be dodged by respelling.
      auto twin = mapped_twin(host.ip());
      return twin && cidr_->contains(*twin);
    }
  }
  return false;
}

std::string HostPattern::to_string() const {
  std::string host;
  bool v6 = cidr_ && !cidr_->base().is_v4();
  switch (kind_) {
    case Kind::any: host = "*"; break;
    case Kind::exact: host = name_; break;
    case Kind::wildcard: host = "*." + name_; break;
    case Kind::ip: host = cidr_ ? cidr_->base().to_string() : ""; break;
    case Kind::cidr: host = cidr_ ? cidr_->to_string() : ""; break;
  }
  if (!port_) return host;
  if (v6) host = "[" + host + "]";
  return host + ":" + std::to_string(*port_);
}

const HostPattern* HostMatcher::find(const Host& host, std::optional<std::uint16_t> port) const {
  for (const HostPattern& pattern : patterns_) {
    if (pattern.matches(host, port)) return &pattern;
  }
  return nullptr;
}

}  // namespace airlock::policy
