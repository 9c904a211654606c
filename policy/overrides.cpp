// CLI overrides: flag parsing and merging over a loaded policy (see overrides.hpp).
#include "policy/overrides.hpp"

#include <algorithm>
#include <filesystem>

#include "policy/loader.hpp"

namespace airlock::policy {
namespace fs = std::filesystem;

namespace {

[[noreturn]] void flag_error(const std::string& flag, const std::string& value,
                             const std::string& message) {
  throw PolicyError(flag + " \"" + value + "\": " + message);
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    std::size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end - start));
    if (end == std::string::npos) return parts;
    start = end + 1;
  }
}

}  // namespace

Secret parse_secret_flag(const std::string& flag, const EnvLookup& env) {
  std::size_t at = flag.rfind('@');
  if (at == std::string::npos)
    flag_error("--secret", "NAME", "expected NAME=VALUE@host1,host2 or NAME@host1,host2");
  std::string head = flag.substr(0, at);
  std::string hosts = flag.substr(at + 1);
  Secret secret;
  std::size_t eq = head.find('=');
  secret.name = head.substr(0, eq);
  // Never echo the flag itself in errors: it may hold the secret's value.
  const std::string shown = secret.name.empty() ? "?" : secret.name;
  if (!is_valid_env_name(secret.name))
    flag_error("--secret", shown, "the name must be an environment variable name");
  if (eq != std::string::npos) {
    secret.value = SecretValue(head.substr(eq + 1));
    if (secret.value.empty()) flag_error("--secret", shown, "empty value");
  } else {
    auto value = env(secret.name);
    if (!value) flag_error("--secret", shown, "environment variable " + secret.name + " is not set");
    if (value->empty()) flag_error("--secret", shown, "environment variable " + secret.name + " is empty");
    secret.value = SecretValue(*value);
    secret.value_from_env = secret.name;
  }
  for (unsigned char c : secret.value.reveal())
    if (c < 0x20 || c == 0x7f)
      flag_error("--secret", shown, "the value contains control characters");
  if (hosts.empty()) flag_error("--secret", shown, "no hosts after '@'");
  for (const std::string& host : split(hosts, ',')) {
    auto pattern = HostPattern::parse(host);
    if (!pattern) flag_error("--secret", shown, "invalid host pattern: " + pattern.error());
    secret.hosts.push_back(*pattern);
  }
  return secret;
}

Mount parse_volume_flag(const std::string& flag, const std::string& workspace) {
  std::vector<std::string> parts = split(flag, ':');
  Mount mount;
  if (parts.size() == 3) {
    if (parts[2] == "ro") mount.readonly = true;
    else if (parts[2] != "rw") flag_error("-v", flag, "mode must be ro or rw, found \"" + parts[2] + "\"");
  } else if (parts.size() != 2) {
    flag_error("-v", flag, "expected HOST:GUEST or HOST:GUEST:ro");
  }
  if (parts[0].empty() || parts[1].empty()) flag_error("-v", flag, "empty host or guest path");
  std::error_code ec;
  fs::path host = fs::absolute(parts[0], ec).lexically_normal();
  if (ec || !fs::is_directory(host, ec)) flag_error("-v", flag, "no such folder: " + host.string());
  mount.host_path = host;
  try {
    mount.guest_path = mount_guest_path(parts[1], workspace);
  } catch (const PolicyError& e) {
    flag_error("-v", flag, e.what());
  }
  return mount;
}

std::pair<std::string, std::string> parse_env_flag(const std::string& flag, const EnvLookup& env) {
  std::size_t eq = flag.find('=');
  std::string name = flag.substr(0, eq);
  if (!is_valid_env_name(name)) flag_error("-e", name, "invalid environment variable name");
  if (eq != std::string::npos) return {name, flag.substr(eq + 1)};
  auto value = env(name);
  if (!value) flag_error("-e", name, "environment variable " + name + " is not set");
  return {name, *value};
}

void apply_overrides(Policy& policy, const CliOverrides& o, const EnvLookup& env) {
  for (const std::string& host : o.allow_hosts) {
    auto pattern = HostPattern::parse(host);
    if (!pattern) flag_error("--allow-host", host, pattern.error());
    policy.network.allowed_hosts.push_back(*pattern);
  }
  for (const std::string& flag : o.secrets) {
    Secret secret = parse_secret_flag(flag, env);
    auto& list = policy.network.secrets;
    std::erase_if(list, [&](const Secret& s) { return s.name == secret.name; });
    list.push_back(std::move(secret));
    std::sort(list.begin(), list.end(), [](auto& a, auto& b) { return a.name < b.name; });
  }
  for (const std::string& flag : o.volumes) {
    Mount mount = parse_volume_flag(flag, policy.vfs.workspace);
    auto& list = policy.vfs.mounts;
    std::erase_if(list, [&](const Mount& m) { return m.guest_path == mount.guest_path; });
    list.push_back(std::move(mount));
    std::sort(list.begin(), list.end(), [](auto& a, auto& b) { return a.guest_path < b.guest_path; });
  }
  for (const std::string& flag : o.env) {
    auto [name, value] = parse_env_flag(flag, env);
    policy.env.insert_or_assign(name, value);
  }
  auto with_flag = [](const char* flag, const std::string& value, auto parse) {
    try {
      return parse(value);
    } catch (const PolicyError& e) {
      flag_error(flag, value, e.what());
    }
  };
  if (o.cpus) policy.resources.cpus = with_flag("--cpus", *o.cpus, parse_cpus);
  if (o.memory) {
    policy.resources.memory_mb = with_flag("--memory", *o.memory, [](const std::string& v) {
      return check_memory_mb(parse_size_mb(v));
    });
  }
  if (o.timeout) policy.resources.timeout_seconds = with_flag("--timeout", *o.timeout, parse_timeout_seconds);
}

}  // namespace airlock::policy
