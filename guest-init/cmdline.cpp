// Kernel command line parsing for guest-init (see cmdline.hpp).
#include "guest-init/cmdline.hpp"

#include <algorithm>
#include <charconv>

#include <arpa/inet.h>

namespace airlock::guest {
namespace {

bool valid_tag(std::string_view tag) {
  if (tag.empty() || tag.size() > 31) return false;  // 9p mount tags are short
  for (char c : tag) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

bool valid_abs_path(std::string_view path) {
  return !path.empty() && path.front() == '/' && path.size() < 4096 &&
         path.find('\0') == std::string_view::npos;
}

bool valid_hostname(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

// A DNS name for /etc/hosts: labels of letters, digits and '-' (not at either end).
bool valid_host_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  std::size_t start = 0;
  while (start <= name.size()) {
    std::size_t end = name.find('.', start);
    if (end == std::string_view::npos) end = name.size();
    const std::string_view label = name.substr(start, end - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')) return false;
    }
    start = end + 1;
  }
  return true;
}

// IPv6 text (the guest's /etc/hosts may name v6 addresses even on a v4-only network).
bool valid_ipv6(std::string_view text) {
  if (text.size() < 2 || text.size() > 45) return false;
  in6_addr out{};
  return ::inet_pton(AF_INET6, std::string(text).c_str(), &out) == 1;
}

std::uint32_t to_u32(const Ipv4Address& a) {
  return (std::uint32_t{a[0]} << 24) | (std::uint32_t{a[1]} << 16) | (std::uint32_t{a[2]} << 8) | a[3];
}

// 0.0.0.0/8 ("this network"), 224.0.0.0/4 (multicast) and 240.0.0.0/4 (reserved, with
// the limited broadcast) can never be a host's address or a next hop.
bool unusable(const Ipv4Address& a) { return a[0] == 0 || a[0] >= 224; }

// The network and broadcast addresses of a subnet are not host addresses (except on
// /31 and /32, which have neither).
bool subnet_edge(const Ipv4Address& a, unsigned prefix_length) {
  if (prefix_length >= 31) return false;
  const std::uint32_t host_mask = ~to_u32(netmask_of(prefix_length));
  const std::uint32_t host = to_u32(a) & host_mask;
  return host == 0 || host == host_mask;
}

// The raw airlock.* network values as given, validated together once the whole command
// line is read (a gateway can only be checked against the address's subnet).
struct RawNetwork {
  std::optional<std::string> ip, gw, dns, mtu, mac;
};

std::optional<NetworkConfig> build_network(const RawNetwork& raw, std::vector<std::string>& warnings) {
  if (!raw.ip) {
    if (raw.gw || raw.dns || raw.mtu || raw.mac)
      warnings.push_back("ignoring airlock.gw/dns/mtu/mac without airlock.ip");
    return std::nullopt;
  }
  auto reject = [&](const std::string& why) -> std::optional<NetworkConfig> {
    warnings.push_back("network left down: " + why);
    return std::nullopt;
  };
  NetworkConfig net;
  if (!parse_ipv4_cidr(*raw.ip, net.address, net.prefix_length) || unusable(net.address) ||
      net.address[0] == 127 || subnet_edge(net.address, net.prefix_length))
    return reject("invalid airlock.ip (want a.b.c.d/N)");
  if (raw.gw) {
    const auto gw = parse_ipv4(*raw.gw);
    if (!gw || unusable(*gw) || (*gw)[0] == 127) return reject("invalid airlock.gw");
    const std::uint32_t mask = to_u32(netmask_of(net.prefix_length));
    if ((to_u32(*gw) & mask) != (to_u32(net.address) & mask) || *gw == net.address ||
        subnet_edge(*gw, net.prefix_length))
      return reject("airlock.gw is not a host of airlock.ip's subnet");
    net.gateway = gw;
  }
  if (raw.dns) {
    // Loopback is fine here: a resolver may run inside the guest.
    const auto dns = parse_ipv4(*raw.dns);
    if (!dns || unusable(*dns)) return reject("invalid airlock.dns");
    net.dns = dns;
  }
  if (raw.mtu) {
    unsigned mtu = 0;
    const std::string& v = *raw.mtu;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), mtu);
    // 68: the IPv4 minimum; 65535: the largest frame a virtio-net device takes.
    if (ec != std::errc() || end != v.data() + v.size() || mtu < 68 || mtu > 65535)
      return reject("invalid airlock.mtu (68..65535)");
    net.mtu = mtu;
  }
  if (raw.mac) {
    const auto mac = parse_mac(*raw.mac);
    if (!mac) return reject("invalid airlock.mac");
    net.mac = mac;
  }
  return net;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<Ipv4Address> parse_ipv4(std::string_view text) {
  Ipv4Address out{};
  std::size_t at = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    if (i > 0) {
      if (at >= text.size() || text[at] != '.') return std::nullopt;
      ++at;
    }
    const std::size_t start = at;
    unsigned value = 0;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9' && at - start < 3) {
      value = value * 10 + static_cast<unsigned>(text[at] - '0');
      ++at;
    }
    const std::size_t digits = at - start;
    if (digits == 0 || value > 255 || (digits > 1 && text[start] == '0')) return std::nullopt;
    out[i] = static_cast<std::uint8_t>(value);
  }
  if (at != text.size()) return std::nullopt;
  return out;
}

bool parse_ipv4_cidr(std::string_view text, Ipv4Address& address, unsigned& prefix_length) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) return false;
  const auto addr = parse_ipv4(text.substr(0, slash));
  const std::string_view len = text.substr(slash + 1);
  unsigned n = 0;
  const auto [end, ec] = std::from_chars(len.data(), len.data() + len.size(), n);
  if (!addr || len.empty() || len.size() > 2 || ec != std::errc() || end != len.data() + len.size() || n < 1 ||
      n > 32)
    return false;
  address = *addr;
  prefix_length = n;
  return true;
}

std::optional<MacAddress> parse_mac(std::string_view text) {
  if (text.size() != 17) return std::nullopt;
  MacAddress out{};
  for (std::size_t i = 0; i < 6; ++i) {
    const std::size_t at = i * 3;
    if (i > 0 && text[at - 1] != ':') return std::nullopt;
    const int hi = hex_digit(text[at]);
    const int lo = hex_digit(text[at + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<std::uint8_t>(hi * 16 + lo);
  }
  if ((out[0] & 1) != 0 || out == MacAddress{}) return std::nullopt;  // multicast / unset
  return out;
}

std::string format_ipv4(const Ipv4Address& address) {
  return std::to_string(address[0]) + "." + std::to_string(address[1]) + "." + std::to_string(address[2]) + "." +
         std::to_string(address[3]);
}

Ipv4Address netmask_of(unsigned prefix_length) {
  const std::uint32_t mask = prefix_length == 0 ? 0 : ~std::uint32_t{0} << (32 - std::min(prefix_length, 32u));
  return {static_cast<std::uint8_t>(mask >> 24), static_cast<std::uint8_t>(mask >> 16),
          static_cast<std::uint8_t>(mask >> 8), static_cast<std::uint8_t>(mask)};
}

std::vector<std::string> split_cmdline(std::string_view cmdline) {
  std::vector<std::string> words;
  std::string current;
  bool in_quotes = false;
  bool have_word = false;
  for (char c : cmdline) {
    if (c == '"') {
      in_quotes = !in_quotes;
      have_word = true;
    } else if (!in_quotes && (c == ' ' || c == '\n' || c == '\t')) {
      if (have_word) words.push_back(std::move(current));
      current.clear();
      have_word = false;
    } else {
      current.push_back(c);
      have_word = true;
    }
  }
  if (have_word) words.push_back(std::move(current));
  return words;
}

bool parse_host_entry(std::string_view text, HostEntry& out) {
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) return false;
  const std::string_view name = text.substr(0, colon);
  const std::string_view address = text.substr(colon + 1);
  if (!valid_host_name(name) || !(parse_ipv4(address) || valid_ipv6(address))) return false;
  out = HostEntry{std::string(name), std::string(address)};
  return true;
}

bool parse_share_mount(std::string_view text, ShareMount& out) {
  const auto first = text.find(':');
  if (first == std::string_view::npos) return false;
  ShareMount m;
  m.tag = std::string(text.substr(0, first));
  std::string_view rest = text.substr(first + 1);
  const auto last = rest.rfind(':');
  if (last != std::string_view::npos && (rest.substr(last + 1) == "ro" || rest.substr(last + 1) == "rw")) {
    m.read_only = rest.substr(last + 1) == "ro";
    rest = rest.substr(0, last);
  }
  m.guest_path = std::string(rest);
  if (!valid_tag(m.tag) || !valid_abs_path(m.guest_path)) return false;
  out = std::move(m);
  return true;
}

BootConfig parse_cmdline(std::string_view cmdline) {
  BootConfig config;
  RawNetwork raw_network;
  constexpr std::string_view prefix = "airlock.";
  for (const std::string& word : split_cmdline(cmdline)) {
    if (word.compare(0, prefix.size(), prefix) != 0) continue;
    const auto eq = word.find('=');
    const std::string key = word.substr(prefix.size(), eq == std::string::npos ? std::string::npos : eq - prefix.size());
    const std::string value = eq == std::string::npos ? std::string() : word.substr(eq + 1);
    if (key == "hostname") {
      if (valid_hostname(value)) config.hostname = value;
      else config.warnings.push_back("ignoring invalid airlock.hostname");
    } else if (key == "workspace") {
      if (valid_abs_path(value) && value != "/") config.workspace = value;
      else config.warnings.push_back("ignoring invalid airlock.workspace");
    } else if (key == "mounts") {
      std::string_view rest = value;
      while (!rest.empty()) {
        const auto comma = rest.find(',');
        const std::string_view item = rest.substr(0, comma);
        ShareMount m;
        if (!item.empty()) {
          if (parse_share_mount(item, m)) config.mounts.push_back(std::move(m));
          else config.warnings.push_back("ignoring invalid mount '" + std::string(item) + "'");
        }
        if (comma == std::string_view::npos) break;
        rest = rest.substr(comma + 1);
      }
    } else if (key == "hosts") {
      std::string_view rest = value;
      while (!rest.empty()) {
        const auto comma = rest.find(',');
        const std::string_view item = rest.substr(0, comma);
        HostEntry entry;
        if (!item.empty()) {
          if (parse_host_entry(item, entry)) config.hosts.push_back(std::move(entry));
          else config.warnings.push_back("ignoring invalid hosts entry '" + std::string(item) + "'");
        }
        if (comma == std::string_view::npos) break;
        rest = rest.substr(comma + 1);
      }
    } else if (key == "probe") {
      config.probe = value == "1" || value == "true" || value.empty();
    } else if (key == "uid") {
      std::uint32_t uid = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), uid);
      if (ec == std::errc() && end == value.data() + value.size() && uid > 0 && uid < 65534) config.uid = uid;
      else config.warnings.push_back("ignoring invalid airlock.uid");
    } else if (key == "ip") {
      raw_network.ip = value;
    } else if (key == "gw") {
      raw_network.gw = value;
    } else if (key == "dns") {
      raw_network.dns = value;
    } else if (key == "mtu") {
      raw_network.mtu = value;
    } else if (key == "mac") {
      if (!value.empty()) raw_network.mac = value;  // "airlock.mac=" means "keep QEMU's"
    } else if (key == "env") {
      // Reserved: the environment comes with each exec.
    } else {
      config.warnings.push_back("ignoring unknown key airlock." + key);
    }
  }
  config.network = build_network(raw_network, config.warnings);
  return config;
}

}  // namespace airlock::guest
