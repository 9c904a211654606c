// sandbox.create config -> Policy; see sandbox_config.hpp.
#include "runtime/api/sandbox_config.hpp"

#include <regex>

#include "policy/loader.hpp"

namespace airlock::api {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

bool sets(const json& config, const char* section, const char* key) {
  auto s = config.find(section);
  return s != config.end() && s->is_object() && s->contains(key);
}

template <typename T, typename Key>
void merge_by(std::vector<T>& base, const std::vector<T>& over, Key key) {
  for (const T& item : over) {
    auto same = std::find_if(base.begin(), base.end(), [&](const T& b) { return key(b) == key(item); });
    if (same != base.end()) {
      *same = item;
    } else {
      base.push_back(item);
    }
  }
}

// over's fields that config names, onto base.
void merge(policy::Policy& base, const policy::Policy& over, const json& config) {
  if (config.contains("image")) base.image = over.image;
  if (sets(config, "resources", "cpus")) base.resources.cpus = over.resources.cpus;
  if (sets(config, "resources", "memory_mb")) base.resources.memory_mb = over.resources.memory_mb;
  if (sets(config, "resources", "disk_size_mb")) base.resources.disk_size_mb = over.resources.disk_size_mb;
  if (sets(config, "resources", "timeout_seconds")) base.resources.timeout_seconds = over.resources.timeout_seconds;
  auto& n = base.network;
  const auto& o = over.network;
  if (sets(config, "network", "rules")) n.rules = o.rules;
  if (sets(config, "network", "allowed_hosts")) n.allowed_hosts = o.allowed_hosts;
  if (sets(config, "network", "blocked_hosts")) n.blocked_hosts = o.blocked_hosts;
  if (sets(config, "network", "block_private_ips")) n.block_private_ips = o.block_private_ips;
  if (sets(config, "network", "allow_private")) {
    n.allow_private_cidrs = o.allow_private_cidrs;
    n.allow_private_hosts = o.allow_private_hosts;
  }
  if (sets(config, "network", "secrets")) {
    merge_by(n.secrets, o.secrets, [](const policy::Secret& s) { return s.name; });
    std::sort(n.secrets.begin(), n.secrets.end(), [](auto& a, auto& b) { return a.name < b.name; });
  }
  if (sets(config, "network", "policy_script")) n.policy_script = o.policy_script;
  if (sets(config, "network", "dns_servers")) n.dns_servers = o.dns_servers;
  if (sets(config, "network", "upstream_ca_file")) n.upstream_ca_file = o.upstream_ca_file;
  if (sets(config, "network", "resolve")) {
    merge_by(n.resolve, o.resolve, [](const policy::ResolveOverride& r) { return r.host; });
    std::sort(n.resolve.begin(), n.resolve.end(), [](auto& a, auto& b) { return a.host < b.host; });
  }
  if (sets(config, "vfs", "workspace")) base.vfs.workspace = over.vfs.workspace;
  if (sets(config, "vfs", "mounts")) {
    merge_by(base.vfs.mounts, over.vfs.mounts, [](const policy::Mount& m) { return m.guest_path; });
    std::sort(base.vfs.mounts.begin(), base.vfs.mounts.end(), [](auto& a, auto& b) { return a.guest_path < b.guest_path; });
  }
  if (config.contains("env")) {
    for (const auto& [k, v] : over.env) base.env[k] = v;
  }
}

}  // namespace

policy::Policy build_sandbox_policy(const CreateParams& params, const fs::path& cwd, const policy::EnvLookup& env) {
  const fs::path base_dir = params.base_dir.empty() ? cwd : fs::path(params.base_dir);
  json config = params.config.is_object() ? params.config : json::object();
  if (!params.secrets.empty()) {
    if (!config.contains("network") || !config["network"].is_object()) config["network"] = json::object();
    json& network = config["network"];
    if (!network.contains("secrets") || !network["secrets"].is_object()) network["secrets"] = json::object();
    for (const auto& [name, value] : params.secrets) network["secrets"][name] = value;
  }
  policy::Policy result;
  if (!params.policy_file.empty()) {
    const fs::path file = fs::path(params.policy_file).is_absolute() ? fs::path(params.policy_file)
                                                                     : base_dir / params.policy_file;
    result = policy::load_policy_file(file, env);
  }
  if (!config.empty()) {
    policy::Policy over;
    try {
      over = policy::load_policy_text(config.dump(2), "config", base_dir, env);
    } catch (const policy::PolicyError& e) {
      // "config:LINE:COL: path: message": the position is in our re-encoding, not theirs.
      static const std::regex position("^config:[0-9]+:[0-9]+: ");
      throw policy::PolicyError("config: " + std::regex_replace(e.what(), position, ""));
    }
    if (params.policy_file.empty()) {
      result = std::move(over);
      result.source.clear();  // no file: the config came over the API
    } else {
      merge(result, over, config);
    }
  }
  if (!params.image.empty()) {
    // Through the loader too, for its checks on image names.
    result.image = policy::load_policy_text(json{{"image", params.image}}.dump(), "image", base_dir, env).image;
  }
  return result;
}

}  // namespace airlock::api
