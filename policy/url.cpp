// URL and authority splitting for policy decisions (see url.hpp for what is refused).
#include "policy/url.hpp"

#include <algorithm>
#include <charconv>

namespace airlock::policy {

namespace {

constexpr std::size_t kMaxUrlLength = 8192;

bool is_unsafe(char c) {
  auto u = static_cast<unsigned char>(c);
  return u <= 0x20 || u >= 0x7f || c == '\\' || c == '%';
}

Result<std::uint16_t> parse_port(std::string_view text) {
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || text.size() > 5 || ec != std::errc() || ptr != text.data() + text.size() ||
      value == 0 || value > 65535)
    return Error{"invalid port \"" + std::string(text) + "\""};
  return static_cast<std::uint16_t>(value);
}

}  // namespace

Result<std::pair<Host, std::uint16_t>> parse_authority(std::string_view authority,
                                                       std::uint16_t default_port) {
  if (authority.empty()) return Error{"empty host"};
  if (std::any_of(authority.begin(), authority.end(), is_unsafe))
    return Error{"host contains a character that is not allowed"};
  std::string_view host_text = authority;
  std::string_view port_text;
  if (authority.front() == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return Error{"unbalanced '[' in host"};
    host_text = authority.substr(0, close + 1);
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return Error{"unexpected text after ']'"};
      port_text = rest.substr(1);
      if (port_text.empty()) return Error{"empty port"};
    }
  } else {
    std::size_t colon = authority.find(':');
    if (colon != std::string_view::npos) {
      if (authority.find(':', colon + 1) != std::string_view::npos)
        return Error{"IPv6 addresses must be in [brackets]"};
      host_text = authority.substr(0, colon);
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return Error{"empty port"};
    }
  }
  auto host = Host::parse(host_text);
  if (!host) return Error{host.error()};
  std::uint16_t port = default_port;
  if (!port_text.empty()) {
    auto parsed = parse_port(port_text);
    if (!parsed) return Error{parsed.error()};
    port = *parsed;
  }
  if (port == 0) return Error{"missing port"};
  return std::pair<Host, std::uint16_t>{std::move(*host), port};
}

Result<UrlTarget> parse_url(std::string_view url) {
  if (url.size() > kMaxUrlLength) return Error{"URL too long"};
  std::size_t sep = url.find("://");
  std::string scheme;
  std::string_view rest = url;
  std::uint16_t default_port = 0;
  if (sep != std::string_view::npos) {
    scheme.assign(url.substr(0, sep));
    std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (scheme == "http" || scheme == "ws") default_port = 80;
    else if (scheme == "https" || scheme == "wss") default_port = 443;
    else return Error{"unsupported scheme \"" + scheme + "\" (http, https, ws, wss)"};
    rest = url.substr(sep + 3);
  }
  std::size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  std::string path = end == std::string_view::npos ? "/" : std::string(rest.substr(end));
  if (path.front() != '/') path.insert(path.begin(), '/');
  if (std::any_of(path.begin(), path.end(), [](unsigned char c) { return c <= 0x20 || c == 0x7f; }))
    return Error{"URL path contains spaces or control characters"};
  // WHATWG parsers read a backslash as '/' in http(s) URLs, so "http://evil.com\@x.com"
  // names evil.com to a browser; refuse it before userinfo is split off.
  if (authority.find('\\') != std::string_view::npos)
    return Error{"host contains a character that is not allowed"};
  std::size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    if (scheme.empty()) return Error{"userinfo ('@') needs a scheme"};
    authority = authority.substr(at + 1);
  }
  if (authority.empty()) return Error{"empty host"};
  if (scheme.empty() && authority.find(':') == std::string_view::npos && authority.front() != '[')
    return Error{"give a URL (https://host/path) or host:port"};
  auto target = parse_authority(authority, default_port);
  if (!target) return Error{target.error()};
  return UrlTarget{scheme, std::move(target->first), target->second, path};
}

}  // namespace airlock::policy
