// Fuzzes IP literals, CIDRs, guest hosts and host patterns (policy/ip_address, ip_guard,
// host_pattern). Besides "no crash", each parser's output must read back as itself, a
// pattern must match the host it names, and the inet_aton dialect must agree with glibc.
// Input: one text; if it holds a '\n', the part before is also tried as a pattern against
// the part after as a host.
#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "policy/host_pattern.hpp"
#include "policy/ip_guard.hpp"

using namespace airlock::policy;

namespace {

void require(bool condition) {
  if (!condition) __builtin_trap();
}

bool is_plain_ascii(std::string_view text) {
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return false;
  }
  return true;
}

void check_verdict(const IpAddress& address) {
  IpVerdict verdict = IpGuard::classify(address);
  require(!verdict.embedded_v4 || (!address.is_v4() && !verdict.is_public()));
  require(!verdict.embedded_v4 || verdict.embedded_v4->is_v4());
  require(IpGuard().check(address).allowed == verdict.is_public());
  require(IpGuard(false, {}).check(address).allowed);
}

void check_address(std::string_view text) {
  auto address = IpAddress::parse(text);
  if (!address) return;
  std::string canonical = address->to_string();
  require(IpAddress::parse(canonical) == address);
  require(IpAddress::parse_host_literal(canonical) == address);
  require(IpAddress::parse_host_literal(text) == address);  // canonical is a subset
  auto cidr = Cidr::parse(canonical);
  require(cidr && cidr->contains(*address) && cidr->prefix_length() == address->bit_length());
  check_verdict(*address);
}

void check_host_literal(std::string_view text) {
  auto address = IpAddress::parse_host_literal(text);
  if (address) {
    require(IpAddress::parse(address->to_string()) == address);
    auto host = Host::parse(text);
    require(host.ok() && host->is_ip() && host->ip() == *address);
  }
  // The hand-written IPv4 parser must agree with glibc, except that glibc ignores
  // anything after whitespace, which is refused here (is_plain_ascii leaves none).
  if (text.size() > 255 || !is_plain_ascii(text) || text.find_first_of("[]:") != text.npos)
    return;
  in_addr expected{};
  bool libc = inet_aton(std::string(text).c_str(), &expected) != 0;
  require(libc == address.has_value());
  if (libc) require(address->v4_value() == ntohl(expected.s_addr));
}

void check_cidr(std::string_view text) {
  auto cidr = Cidr::parse(text);
  if (!cidr) return;
  require(Cidr::parse(cidr->to_string()) == cidr);
  require(cidr->contains(cidr->base()));
  require(Cidr(cidr->base(), cidr->prefix_length()) == *cidr);
}

void check_host(std::string_view text) {
  auto host = Host::parse(text);
  if (!host) return;
  auto again = Host::parse(host->to_string());
  require(again.ok() && again->value == host->value);
  if (host->is_ip()) {
    check_verdict(host->ip());
    return;
  }
  const std::string& name = host->name();
  require(!name.empty() && name.size() <= 253);
  require(canonical_host_name(name) == name);
  require(name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-_.") == name.npos);
}

// The pattern's host part as text: to_string() without the port and brackets.
std::string pattern_host(const HostPattern& pattern) {
  std::string text = pattern.to_string();
  if (pattern.port()) text.erase(text.rfind(':'));
  if (!text.empty() && text.front() == '[') text = text.substr(1, text.size() - 2);
  return text;
}

void check_pattern(std::string_view text) {
  auto pattern = HostPattern::parse(text);
  if (!pattern) return;
  auto again = HostPattern::parse(pattern->to_string());
  require(again.ok() && again->to_string() == pattern->to_string());
  require(again->kind() == pattern->kind() && again->port() == pattern->port());

  std::optional<std::uint16_t> port = pattern->port();
  std::optional<std::uint16_t> other =
      port ? std::optional<std::uint16_t>(static_cast<std::uint16_t>(*port % 65535 + 1))
           : std::nullopt;
  std::string base = pattern_host(*pattern);
  auto named = [&](const std::string& host_text) {
    auto host = Host::parse(host_text);
    require(host.ok());
    return *host;
  };
  switch (pattern->kind()) {
    case HostPattern::Kind::any:
      require(pattern->matches(named("example.com"), port));
      break;
    case HostPattern::Kind::exact:
      require(pattern->matches(named(base), port));
      if (auto below = Host::parse("a." + base)) require(!pattern->matches(*below, port));
      break;
    case HostPattern::Kind::wildcard: {
      std::string suffix = base.substr(2);
      require(pattern->matches(named("a." + suffix), port));
      require(!pattern->matches(named(suffix), port));
      if (auto glued = Host::parse("a" + suffix)) require(!pattern->matches(*glued, port));
      break;
    }
    case HostPattern::Kind::ip:
      require(pattern->matches(named(base), port));
      break;
    case HostPattern::Kind::cidr:
      require(pattern->matches(named(base.substr(0, base.find('/'))), port));
      break;
  }
  if (port) {
    require(!pattern->matches(named("example.com"), std::nullopt));
    require(!pattern->matches(named("example.com"), other));
  }
}

// Matching against an independent statement of the rules.
void check_match(std::string_view pattern_text, std::string_view host_text) {
  auto pattern = HostPattern::parse(pattern_text);
  auto host = Host::parse(host_text);
  if (!pattern || !host) return;
  bool matched = pattern->matches(*host, std::nullopt);
  if (pattern->port()) {
    require(!matched);
    return;
  }
  std::string base = pattern_host(*pattern);
  switch (pattern->kind()) {
    case HostPattern::Kind::any:
      require(matched);
      break;
    case HostPattern::Kind::exact:
      require(matched == (!host->is_ip() && host->name() == base));
      break;
    case HostPattern::Kind::wildcard: {
      std::string dotted = base.substr(1);  // ".suffix"
      bool below = !host->is_ip() && host->name().size() > dotted.size() &&
                   host->name().compare(host->name().size() - dotted.size(), dotted.size(),
                                        dotted) == 0;
      require(matched == below);
      break;
    }
    case HostPattern::Kind::ip:
    case HostPattern::Kind::cidr:
      if (!host->is_ip()) require(!matched);
      else if (Cidr::parse(base)->contains(host->ip())) require(matched);
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 1024) return 0;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  check_address(text);
  check_host_literal(text);
  check_cidr(text);
  check_host(text);
  check_pattern(text);
  std::size_t newline = text.find('\n');
  if (newline != std::string_view::npos)
    check_match(text.substr(0, newline), text.substr(newline + 1));
  return 0;
}
