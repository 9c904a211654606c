// Policy file loader: YAML (yaml-cpp) -> Policy, with precise errors.
//
// yaml-cpp gives us a node tree with marks (line, column); everything else is ours to
// check, because yaml-cpp accepts duplicate keys and converts types loosely. A Cursor
// carries the node together with its key path so that every error can say exactly where
// the user has to look. Nothing here is on the data plane: errors are exceptions.
#include "policy/loader.hpp"

#include "policy/http_path.hpp"
#include "policy/script.hpp"

#include <yaml-cpp/yaml.h>

#include "common/edit_distance.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

namespace airlock::policy {
namespace fs = std::filesystem;

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

namespace {

bool has_control_bytes(const std::string& text) {
  for (unsigned char c : text)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

constexpr std::uint32_t kMinMemoryMb = 128;
constexpr std::uint32_t kMaxMemoryMb = 1024 * 1024;
constexpr std::uint32_t kMinDiskMb = 256;
constexpr std::uint32_t kMaxDiskMb = 16 * 1024 * 1024;
constexpr double kMaxCpus = 256;
constexpr std::uint32_t kMaxTimeoutSeconds = 7 * 24 * 3600;
constexpr std::uint32_t kMinAuditQueueEvents = 1;
constexpr std::uint32_t kMaxAuditQueueEvents = 1u << 20;


std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null: return "null";
    case YAML::NodeType::Scalar: return "a scalar";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a mapping";
    default: return "nothing";
  }
}

// A node plus where it is: the file and the key path, for error messages.
class Cursor {
 public:
  Cursor(YAML::Node node, std::string path, const std::string* source, YAML::Mark mark)
      : node_(std::move(node)), path_(std::move(path)), source_(source), mark_(mark) {
    if (node_.IsDefined() && !node_.Mark().is_null()) mark_ = node_.Mark();
  }

  const YAML::Node& node() const { return node_; }
  const std::string& path() const { return path_; }
  bool is_null() const { return !node_.IsDefined() || node_.IsNull(); }

  [[noreturn]] void fail(const std::string& message) const {
    std::ostringstream out;
    out << *source_ << ':' << mark_.line + 1 << ':' << mark_.column + 1 << ": ";
    if (!path_.empty()) out << path_ << ": ";
    out << message;
    throw PolicyError(out.str());
  }

  Cursor child(const YAML::Node& node, const std::string& key) const {
    return Cursor(node, path_.empty() ? key : path_ + "." + key, source_, mark_);
  }
  Cursor element(const YAML::Node& node, std::size_t index) const {
    return Cursor(node, path_ + "[" + std::to_string(index) + "]", source_, mark_);
  }

  std::string scalar() const {
    if (!node_.IsScalar()) fail("expected a scalar value, found " + describe(node_));
    return node_.Scalar();
  }

  std::string string() const {
    std::string value = scalar();
    if (value.find('\0') != std::string::npos) fail("NUL byte in value");
    return value;
  }

  bool boolean() const {
    std::string value = scalar();
    if (value == "true") return true;
    if (value == "false") return false;
    fail("expected true or false, found \"" + value + "\"");
  }

  // Converts with fn (which throws PolicyError without location) and adds location.
  template <typename Fn>
  auto convert(Fn fn) const {
    std::string text = scalar();
    try {
      return fn(text);
    } catch (const PolicyError& e) {
      fail(e.what());
    }
  }

  std::vector<Cursor> list() const {
    std::vector<Cursor> items;
    if (is_null()) return items;
    if (!node_.IsSequence()) fail("expected a list, found " + describe(node_));
    std::size_t i = 0;
    for (const auto& item : node_) items.push_back(element(item, i++));
    return items;
  }

  // Map entries in file order. Keys must be scalars and unique; when `known` is
  // non-empty, every key must be one of them.
  std::vector<std::pair<std::string, Cursor>> entries(
      std::initializer_list<std::string_view> known = {}) const {
    std::vector<std::pair<std::string, Cursor>> out;
    if (is_null()) return out;
    if (!node_.IsMap()) fail("expected a mapping, found " + describe(node_));
    std::set<std::string> seen;
    for (const auto& kv : node_) {
      Cursor key_cursor(kv.first, path_, source_, mark_);
      std::string key = key_cursor.scalar();
      Cursor value = child(kv.second, key);
      if (!seen.insert(key).second) key_cursor.fail("duplicate key \"" + key + "\"");
      if (known.size() != 0 &&
          std::find(known.begin(), known.end(), key) == known.end()) {
        std::string message = "unknown key \"" + key + "\"";
        std::string_view best;
        std::size_t best_distance = 3;
        for (std::string_view candidate : known) {
          std::size_t d = edit_distance(key, candidate);
          if (d < best_distance) best = candidate, best_distance = d;
        }
        if (!best.empty()) message += " (did you mean \"" + std::string(best) + "\"?)";
        else {
          message += " (known keys:";
          for (std::string_view candidate : known) message += " " + std::string(candidate);
          message += ")";
        }
        key_cursor.fail(message);
      }
      out.emplace_back(key, value);
    }
    return out;
  }

 private:
  YAML::Node node_;
  std::string path_;
  const std::string* source_;
  YAML::Mark mark_;
};

// Parses "<number><unit>" into a double and the unit; throws on junk.
std::pair<double, std::string> number_and_unit(std::string_view text, std::string_view what) {
  std::size_t end = 0;
  while (end < text.size() && (std::isdigit(static_cast<unsigned char>(text[end])) || text[end] == '.'))
    ++end;
  double value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + end, value);
  if (end == 0 || ec != std::errc() || ptr != text.data() + end || !std::isfinite(value))
    throw PolicyError("invalid " + std::string(what) + " \"" + std::string(text) + "\"");
  std::string unit(text.substr(end));
  while (!unit.empty() && unit.front() == ' ') unit.erase(unit.begin());
  std::transform(unit.begin(), unit.end(), unit.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return {value, unit};
}

fs::path resolve_path(const Cursor& at, const fs::path& base_dir, bool must_be_file) {
  std::string text = at.string();
  if (text.empty()) at.fail("empty path");
  fs::path path = fs::path(text).is_absolute() ? fs::path(text) : base_dir / text;
  path = path.lexically_normal();
  std::error_code ec;
  fs::file_status status = fs::status(path, ec);
  if (ec || !fs::exists(status)) at.fail("no such file or folder: " + path.string());
  if (must_be_file && !fs::is_regular_file(status)) at.fail("not a regular file: " + path.string());
  return path;
}

HostPattern host_pattern(const Cursor& at) {
  auto parsed = HostPattern::parse(at.string());
  if (!parsed) at.fail("invalid host pattern: " + parsed.error());
  return *parsed;
}

std::vector<HostPattern> host_patterns(const Cursor& at) {
  std::vector<HostPattern> out;
  for (const Cursor& item : at.list()) out.push_back(host_pattern(item));
  return out;
}

class Loader {
 public:
  Loader(std::string source, fs::path base_dir, const EnvLookup& env)
      : source_(std::move(source)), base_dir_(std::move(base_dir)), env_(env) {}

  Policy load(std::string_view text) {
    YAML::Node root;
    try {
      root = YAML::Load(std::string(text));
    } catch (const YAML::Exception& e) {
      std::ostringstream out;
      out << source_ << ':' << e.mark.line + 1 << ':' << e.mark.column + 1
          << ": syntax error: " << e.msg;
      throw PolicyError(out.str());
    }
    Policy policy;
    policy.source = source_;
    Cursor top(root, "", &source_, YAML::Mark());
    if (top.is_null()) return policy;  // an empty file is the default policy
    if (!root.IsMap()) top.fail("a policy file must be a mapping, found " + describe(root));
    // vfs first: mounts and workspace don't depend on anything else, but keep the
    // workspace known before paths are checked.
    for (auto& [key, value] : top.entries({"image", "resources", "network", "vfs", "env", "audit"})) {
      if (key == "image") policy.image = image_name(value);
      else if (key == "resources") resources(value, policy.resources);
      else if (key == "network") network(value, policy.network);
      else if (key == "vfs") vfs(value, policy.vfs);
      else if (key == "env") env(value, policy.env);
      else if (key == "audit") audit(value, policy.audit);
    }
    return policy;
  }

 private:
  static std::string image_name(const Cursor& at) {
    std::string name = at.string();
    bool ok = !name.empty() && name.size() <= 64 &&
              std::all_of(name.begin(), name.end(), [](unsigned char c) {
                return std::isalnum(c) || c == '-' || c == '_' || c == '.';
              }) && name.front() != '.';
    if (!ok) at.fail("invalid image name \"" + name + "\" (letters, digits, '-', '_', '.')");
    return name;
  }

  static void resources(const Cursor& at, Resources& out) {
    for (auto& [key, value] :
         at.entries({"cpus", "memory_mb", "disk_size_mb", "timeout_seconds"})) {
      if (key == "cpus") out.cpus = value.convert(parse_cpus);
      else if (key == "memory_mb") out.memory_mb = memory(value);
      else if (key == "disk_size_mb") out.disk_size_mb = disk(value);
      else if (key == "timeout_seconds") out.timeout_seconds = value.convert(parse_timeout_seconds);
    }
  }

  static std::uint32_t memory(const Cursor& at) {
    return at.convert([](const std::string& v) { return check_memory_mb(parse_size_mb(v)); });
  }

  static std::uint32_t disk(const Cursor& at) {
    return at.convert([](const std::string& v) { return check_disk_mb(parse_size_mb(v)); });
  }

  void network(const Cursor& at, NetworkPolicy& out) {
    for (auto& [key, value] :
         at.entries({"rules", "allowed_hosts", "blocked_hosts", "block_private_ips", "allow_private",
                     "secrets", "policy_script", "dns_servers", "upstream_ca_file", "resolve"})) {
      if (key == "rules") rules(value, out.rules);
      else if (key == "allowed_hosts") out.allowed_hosts = host_patterns(value);
      else if (key == "blocked_hosts") out.blocked_hosts = host_patterns(value);
      else if (key == "block_private_ips") out.block_private_ips = value.boolean();
      else if (key == "allow_private") allow_private(value, out);
      else if (key == "secrets") secrets(value, out.secrets);
      else if (key == "policy_script") {
        if (!value.is_null()) {
          out.policy_script = resolve_path(value, base_dir_, true);
          // Compiled and run once now, so a broken script is a policy error ("FILE:LINE: ...").
          auto script = PolicyScript::load_file(*out.policy_script);
          if (!script) value.fail("the script does not load: " + script.error());
        }
      } else if (key == "dns_servers") dns_servers(value, out.dns_servers);
      else if (key == "upstream_ca_file") {
        if (!value.is_null()) out.upstream_ca_file = resolve_path(value, base_dir_, true);
      } else if (key == "resolve") resolve(value, out.resolve);
    }
  }

  static void rules(const Cursor& at, std::vector<NetworkRule>& out) {
    std::set<std::string> names;
    for (const Cursor& item : at.list()) {
      NetworkRule rule;
      bool has_host = false;
      for (auto& [key, value] : item.entries({"host", "ports", "methods", "paths", "action", "name"})) {
        if (key == "host") {
          rule.host = host_pattern(value);
          has_host = true;
        } else if (key == "ports") {
          for (const Cursor& p : value.list()) {
            std::uint16_t port = p.convert([](const std::string& text) {
              unsigned long n = 0;
              auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
              if (ec != std::errc() || ptr != text.data() + text.size() || n == 0 || n > 65535)
                throw PolicyError("expected a port number (1-65535), found \"" + text + "\"");
              return static_cast<std::uint16_t>(n);
            });
            rule.ports.push_back(port);
          }
          if (rule.ports.empty()) value.fail("an empty list of ports matches nothing (leave ports out for any port)");
          std::sort(rule.ports.begin(), rule.ports.end());
          rule.ports.erase(std::unique(rule.ports.begin(), rule.ports.end()), rule.ports.end());
        } else if (key == "methods") {
          for (const Cursor& m : value.list()) {
            std::string method = m.string();
            // An HTTP token (RFC 9110 tchar), compared case-insensitively.
            bool ok = !method.empty() && method.size() <= 32 &&
                      std::all_of(method.begin(), method.end(), [](unsigned char c) {
                        return std::isalnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
                      });
            if (!ok) m.fail("invalid HTTP method \"" + method + "\"");
            std::transform(method.begin(), method.end(), method.begin(),
                           [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
            if (std::find(rule.methods.begin(), rule.methods.end(), method) == rule.methods.end())
              rule.methods.push_back(method);
          }
          if (rule.methods.empty()) value.fail("an empty list of methods matches nothing (leave methods out for any method)");
        } else if (key == "paths") {
          for (const Cursor& p : value.list()) {
            std::string glob = p.string();
            if (std::string why = check_path_glob(glob); !why.empty())
              p.fail("invalid path glob \"" + glob + "\": " + why);
            rule.paths.push_back(glob);
          }
          if (rule.paths.empty()) value.fail("an empty list of paths matches nothing (leave paths out for any path)");
        } else if (key == "action") {
          std::string action = value.string();
          if (action == "allow") rule.action = NetworkRule::Action::allow;
          else if (action == "deny") rule.action = NetworkRule::Action::deny;
          else if (action == "ask")
            value.fail("action ask needs an approver, which this version of airlock does not have; "
                       "use allow or deny");
          else value.fail("expected allow or deny, found \"" + action + "\"");
        } else if (key == "name") {
          rule.name = value.string();
          bool ok = !rule.name.empty() && rule.name.size() <= 64 &&
                    std::all_of(rule.name.begin(), rule.name.end(), [](unsigned char c) {
                      return std::isalnum(c) || c == '-' || c == '_' || c == '.';
                    });
          if (!ok) value.fail("invalid rule name \"" + rule.name + "\" (letters, digits, '-', '_', '.'; up to 64)");
          if (!names.insert(rule.name).second) value.fail("rule name \"" + rule.name + "\" is used twice");
        }
      }
      if (!item.node().IsMap()) item.fail("expected a mapping, found " + describe(item.node()));
      if (!has_host) item.fail("missing host: a rule names the host pattern it covers");
      if (rule.host.port() && !rule.ports.empty())
        item.fail("give the port in host or in ports, not both");
      out.push_back(std::move(rule));
    }
  }

  static void allow_private(const Cursor& at, NetworkPolicy& out) {
    for (const Cursor& item : at.list()) {
      std::string text = item.string();
      if (auto cidr = Cidr::parse(text)) {
        out.allow_private_cidrs.push_back(*cidr);
        continue;
      }
      auto pattern = HostPattern::parse(text);
      if (!pattern || pattern->kind() == HostPattern::Kind::ip ||
          pattern->kind() == HostPattern::Kind::cidr || pattern->kind() == HostPattern::Kind::any)
        item.fail("expected a CIDR block, an IP address or a host name pattern, found \"" +
                  text + "\"" + (pattern ? "" : ": " + pattern.error()));
      if (pattern->port())
        item.fail("allow_private entries take no port: the exception is for addresses, "
                  "whatever the port");
      out.allow_private_hosts.push_back(*pattern);
    }
  }

  void secrets(const Cursor& at, std::vector<Secret>& out) {
    for (auto& [name, value] : at.entries()) {
      if (!is_valid_env_name(name))
        value.fail("secret name must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)");
      Secret secret;
      secret.name = name;
      bool has_value = false;
      bool has_hosts = false;
      for (auto& [key, field] :
           value.entries({"value", "value_from_env", "placeholder", "hosts"})) {
        if (key == "value") {
          secret.value = SecretValue(field.string());
          has_value = true;
        } else if (key == "value_from_env") {
          std::string var = field.string();
          if (!is_valid_env_name(var)) field.fail("invalid environment variable name \"" + var + "\"");
          auto env_value = env_(var);
          if (!env_value) field.fail("environment variable " + var + " is not set");
          secret.value = SecretValue(*env_value);
          secret.value_from_env = var;
          has_value = true;
        } else if (key == "placeholder") {
          std::string placeholder = field.string();
          if (placeholder.size() < 8)
            field.fail("placeholder must be at least 8 characters, so it can't occur by chance");
          secret.placeholder = placeholder;
        } else if (key == "hosts") {
          secret.hosts = host_patterns(field);
          has_hosts = true;
        }
      }
      if (value.node().IsMap() && value.node()["value"] && value.node()["value_from_env"])
        value.fail("give either value or value_from_env, not both");
      if (!has_value) value.fail("missing value or value_from_env");
      if (secret.value.empty()) value.fail("secret value is empty");
      if (has_control_bytes(secret.value.reveal()))
        value.fail("secret value contains control characters (it would break the HTTP requests it goes into)");
      if (!has_hosts || secret.hosts.empty())
        value.fail("missing hosts: a secret must name the hosts it may be sent to");
      out.push_back(std::move(secret));
    }
    std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.name < b.name; });
  }

  static void dns_servers(const Cursor& at, std::vector<DnsServer>& out) {
    for (const Cursor& item : at.list()) {
      std::string text = item.string();
      DnsServer server{IpAddress::v4(0), 53};
      std::string address = text;
      std::string port;
      if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string::npos) item.fail("unbalanced '[' in \"" + text + "\"");
        address = text.substr(1, close - 1);
        if (close + 1 < text.size()) {
          if (text[close + 1] != ':') item.fail("expected ':' after ']' in \"" + text + "\"");
          port = text.substr(close + 2);
        }
      } else if (std::count(text.begin(), text.end(), ':') == 1) {
        address = text.substr(0, text.find(':'));
        port = text.substr(text.find(':') + 1);
      }
      auto ip = IpAddress::parse(address);
      if (!ip) item.fail("expected an IP address (optionally :port), found \"" + text + "\"");
      server.address = *ip;
      if (!text.empty() && text.front() == '[' && port.empty() && text.back() != ']')
        item.fail("missing port after ':' in \"" + text + "\"");
      if (!port.empty() || (text.find(':') != std::string::npos && ip->is_v4())) {
        unsigned value = 0;
        auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
        if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || value == 0 ||
            value > 65535)
          item.fail("invalid port in \"" + text + "\"");
        server.port = static_cast<std::uint16_t>(value);
      }
      out.push_back(server);
    }
  }

  static void resolve(const Cursor& at, std::vector<ResolveOverride>& out) {
    for (auto& [host, value] : at.entries()) {
      auto name = canonical_host_name(host);
      if (!name) value.fail("invalid host name \"" + host + "\"");
      ResolveOverride entry{*name, {}};
      std::vector<Cursor> items;
      if (value.node().IsSequence()) items = value.list();
      else items.push_back(value);
      for (const Cursor& item : items) {
        auto ip = IpAddress::parse(item.string());
        if (!ip) item.fail("expected an IP address, found \"" + item.string() + "\"");
        entry.addresses.push_back(*ip);
      }
      if (entry.addresses.empty()) value.fail("no addresses given");
      auto same = std::find_if(out.begin(), out.end(), [&](auto& e) { return e.host == entry.host; });
      if (same != out.end()) value.fail("\"" + host + "\" is listed twice (as " + entry.host + ")");
      out.push_back(std::move(entry));
    }
    std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.host < b.host; });
  }

  void vfs(const Cursor& at, VfsPolicy& out) {
    std::vector<std::pair<std::string, Cursor>> mounts;
    for (auto& [key, value] : at.entries({"workspace", "mounts"})) {
      if (key == "workspace") {
        std::string workspace = value.string();
        fs::path normal = fs::path(workspace).lexically_normal();
        if (workspace.empty() || workspace.front() != '/' || normal == "/" ||
            workspace.find("/../") != std::string::npos || workspace.ends_with("/.."))
          value.fail("workspace must be an absolute folder other than /, found \"" + workspace + "\"");
        out.workspace = normal.string();
        if (out.workspace.size() > 1 && out.workspace.back() == '/') out.workspace.pop_back();
      } else {
        mounts = value.entries();
      }
    }
    for (auto& [guest, value] : mounts) {
      Mount mount;
      try {
        mount.guest_path = mount_guest_path(guest, out.workspace);
      } catch (const PolicyError& e) {
        value.fail(e.what());
      }
      bool has_host = false;
      for (auto& [key, field] : value.entries({"host_path", "readonly"})) {
        if (key == "host_path") {
          mount.host_path = resolve_path(field, base_dir_, false);
          if (!fs::is_directory(mount.host_path))
            field.fail("not a folder: " + mount.host_path.string());
          has_host = true;
        } else {
          mount.readonly = field.boolean();
        }
      }
      if (!has_host) value.fail("missing host_path");
      for (const Mount& other : out.mounts)
        if (other.guest_path == mount.guest_path) value.fail("guest path mounted twice: " + mount.guest_path);
      out.mounts.push_back(std::move(mount));
    }
    std::sort(out.mounts.begin(), out.mounts.end(),
              [](auto& a, auto& b) { return a.guest_path < b.guest_path; });
  }

  static void audit(const Cursor& at, AuditPolicy& out) {
    for (auto& [key, value] : at.entries({"on_overflow", "queue_events"})) {
      if (key == "on_overflow") {
        const std::string mode = value.string();
        if (mode == "block") out.on_overflow = AuditOverflow::kBlock;
        else if (mode == "drop") out.on_overflow = AuditOverflow::kDrop;
        else value.fail("expected block or drop, found \"" + mode + "\"");
      } else {
        out.queue_events = value.convert(parse_audit_queue_events);
      }
    }
  }

  static void env(const Cursor& at, std::map<std::string, std::string>& out) {
    for (auto& [name, value] : at.entries()) {
      if (!is_valid_env_name(name))
        value.fail("invalid environment variable name \"" + name + "\"");
      out[name] = value.string();
    }
  }

  std::string source_;
  fs::path base_dir_;
  const EnvLookup& env_;
};

}  // namespace

Policy load_policy_text(std::string_view yaml, const std::string& source_name,
                        const fs::path& base_dir, const EnvLookup& env) {
  return Loader(source_name, base_dir, env).load(yaml);
}

Policy load_policy_file(const fs::path& file, const EnvLookup& env) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw PolicyError(file.string() + ": cannot open policy file");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw PolicyError(file.string() + ": cannot read policy file");
  fs::path base = fs::absolute(file).parent_path();
  return load_policy_text(text.str(), file.string(), base, env);
}

std::uint32_t parse_size_mb(std::string_view text) {
  auto [value, unit] = number_and_unit(text, "size");
  double factor = 0;
  if (unit.empty() || unit == "m" || unit == "mb" || unit == "mib") factor = 1;
  else if (unit == "g" || unit == "gb" || unit == "gib") factor = 1024;
  else if (unit == "t" || unit == "tb" || unit == "tib") factor = 1024 * 1024;
  else if (unit == "k" || unit == "kb" || unit == "kib") factor = 1.0 / 1024;
  else
    throw PolicyError("invalid size unit \"" + unit + "\" in \"" + std::string(text) +
                      "\" (use M or G; a bare number is MB)");
  double mb = value * factor;
  if (mb != std::floor(mb) || mb < 1 || mb > 4294967295.0)
    throw PolicyError("size \"" + std::string(text) + "\" is not a whole number of MB");
  return static_cast<std::uint32_t>(mb);
}

std::uint32_t check_memory_mb(std::uint32_t mb) {
  if (mb < kMinMemoryMb || mb > kMaxMemoryMb)
    throw PolicyError("memory must be between " + std::to_string(kMinMemoryMb) + " and " +
                      std::to_string(kMaxMemoryMb) + " MB, got " + std::to_string(mb));
  return mb;
}

std::uint32_t check_disk_mb(std::uint32_t mb) {
  if (mb < kMinDiskMb || mb > kMaxDiskMb)
    throw PolicyError("disk size must be between " + std::to_string(kMinDiskMb) + " and " +
                      std::to_string(kMaxDiskMb) + " MB, got " + std::to_string(mb));
  return mb;
}

double parse_cpus(std::string_view text) {
  auto [value, unit] = number_and_unit(text, "cpu count");
  if (!unit.empty()) throw PolicyError("invalid cpu count \"" + std::string(text) + "\"");
  if (value <= 0 || value > kMaxCpus)
    throw PolicyError("cpus must be more than 0 and at most " + std::to_string(int(kMaxCpus)));
  return value;
}

std::uint32_t parse_timeout_seconds(std::string_view text) {
  auto [value, unit] = number_and_unit(text, "timeout");
  double factor = 0;
  if (unit.empty() || unit == "s") factor = 1;
  else if (unit == "m") factor = 60;
  else if (unit == "h") factor = 3600;
  else throw PolicyError("invalid timeout unit \"" + unit + "\" (use s, m or h)");
  double seconds = value * factor;
  if (seconds != std::floor(seconds) || seconds > kMaxTimeoutSeconds)
    throw PolicyError("timeout must be a whole number of seconds up to " +
                      std::to_string(kMaxTimeoutSeconds) + " (0 = none)");
  return static_cast<std::uint32_t>(seconds);
}

std::uint32_t parse_audit_queue_events(std::string_view text) {
  auto [value, unit] = number_and_unit(text, "queue size");
  if (!unit.empty() || value != std::floor(value) || value < kMinAuditQueueEvents ||
      value > kMaxAuditQueueEvents)
    throw PolicyError("queue_events must be a whole number from " +
                      std::to_string(kMinAuditQueueEvents) + " to " +
                      std::to_string(kMaxAuditQueueEvents) + ", got \"" + std::string(text) + "\"");
  return static_cast<std::uint32_t>(value);
}

bool is_valid_env_name(std::string_view name) {
  if (name.empty() || name.size() > 256) return false;
  if (std::isdigit(static_cast<unsigned char>(name.front()))) return false;
  return std::all_of(name.begin(), name.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '_'; });
}

std::string mount_guest_path(std::string_view guest, const std::string& workspace) {
  if (guest.empty()) throw PolicyError("empty guest path");
  std::string text(guest);
  if (("/" + text + "/").find("/../") != std::string::npos)
    throw PolicyError("guest path \"" + text + "\" must not contain '..'");
  fs::path path;
  if (text == workspace || text.starts_with(workspace + "/")) path = text;
  else path = fs::path(workspace) / fs::path(text).relative_path();
  std::string normal = path.lexically_normal().string();
  while (normal.size() > 1 && normal.back() == '/') normal.pop_back();
  return normal;
}

std::string DnsServer::to_string() const {
  std::string ip = address.to_string();
  if (port == 53) return ip;
  return (address.is_v4() ? ip : "[" + ip + "]") + ":" + std::to_string(port);
}

}  // namespace airlock::policy
