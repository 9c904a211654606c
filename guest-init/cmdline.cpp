// Kernel command line parsing for guest-init (see cmdline.hpp).
#include "guest-init/cmdline.hpp"

#include <charconv>

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

}  // namespace

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
    } else if (key == "probe") {
      config.probe = value == "1" || value == "true" || value.empty();
    } else if (key == "uid") {
      std::uint32_t uid = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), uid);
      if (ec == std::errc() && end == value.data() + value.size() && uid > 0 && uid < 65534) config.uid = uid;
      else config.warnings.push_back("ignoring invalid airlock.uid");
    } else if (key == "ip" || key == "gw" || key == "dns" || key == "mtu" || key == "env") {
      // Reserved for the network configuration and not acted on yet.
    } else {
      config.warnings.push_back("ignoring unknown key airlock." + key);
    }
  }
  return config;
}

}  // namespace airlock::guest
