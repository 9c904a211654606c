// SupervisorConfig <-> JSON; see launch_spec.hpp.
#include "runtime/vm/launch_spec.hpp"

#include "policy/loader.hpp"
#include "policy/serialize.hpp"

namespace airlock::runtime {

namespace {

using nlohmann::json;

const json* member(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

Result<std::string> string_field(const json& j, const char* key, bool required) {
  const json* v = member(j, key);
  if (v == nullptr) {
    if (required) return Error{std::string("launch config: missing \"") + key + "\""};
    return std::string();
  }
  if (!v->is_string()) return Error{std::string("launch config: \"") + key + "\" must be a string"};
  return v->get<std::string>();
}

Result<std::int64_t> int_field(const json& j, const char* key, std::int64_t fallback) {
  const json* v = member(j, key);
  if (v == nullptr) return fallback;
  if (!v->is_number_integer()) return Error{std::string("launch config: \"") + key + "\" must be an integer"};
  return v->get<std::int64_t>();
}

Result<bool> bool_field(const json& j, const char* key, bool fallback) {
  const json* v = member(j, key);
  if (v == nullptr) return fallback;
  if (!v->is_boolean()) return Error{std::string("launch config: \"") + key + "\" must be true or false"};
  return v->get<bool>();
}

json policy_with_secrets(const policy::Policy& p, bool with_values) {
  json j = policy::to_json(p);
  json secrets = json::object();
  for (const policy::Secret& s : p.network.secrets) {
    json hosts = json::array();
    for (const auto& h : s.hosts) hosts.push_back(h.to_string());
    json entry = {{"hosts", hosts}};
    if (s.placeholder) entry["placeholder"] = *s.placeholder;
    if (with_values) entry["value"] = s.value.reveal();
    secrets[s.name] = entry;
  }
  j["network"]["secrets"] = secrets;
  return j;
}

}  // namespace

json launch_json(const SupervisorConfig& c, bool with_secret_values) {
  json secret_env = json::object();
  json secret_given = json::array();
  for (const policy::Secret& s : c.policy.network.secrets) {
    if (s.value_from_env) {
      secret_env[s.name] = *s.value_from_env;
    } else {
      secret_given.push_back(s.name);
    }
  }
  json hosts = json::array();
  for (const HostAlias& h : c.add_hosts) hosts.push_back({{"name", h.name}, {"address", h.address}});
  return json{{"format", kLaunchFormat},
              {"home", c.home.string()},
              {"id", c.id},
              {"image", c.image},
              {"kernel", c.kernel.string()},
              {"initramfs", c.initramfs.string()},
              {"rootfs", c.rootfs.string()},
              {"rootfs_identity", c.rootfs_identity},
              {"policy", policy_with_secrets(c.policy, with_secret_values)},
              {"policy_file", c.policy.source},
              {"secret_env", secret_env},
              {"secret_given", secret_given},
              {"network", c.network},
              {"qemu_user_network", c.qemu_user_network},
              {"hostname", c.hostname},
              {"add_hosts", hosts},
              {"accel", accel_name(c.accel)},
              {"accel_reason", c.accel_reason},
              {"boot_timeout_ms", c.boot_timeout.count()},
              {"stop_grace_ms", c.stop_grace.count()},
              {"qemu_binary", c.qemu_binary},
              {"qemu_img_binary", c.qemu_img_binary},
              {"restart", c.restart}};
}

Result<SupervisorConfig> parse_launch_json(const json& j) {
  if (!j.is_object()) return Error{"launch config: not a JSON object"};
  if (auto f = int_field(j, "format", 0); !f || *f != kLaunchFormat) {
    return Error{"launch config: unknown format (made by another airlock version)"};
  }
  SupervisorConfig c;
  auto text = [&](const char* key, bool required, std::string& out) -> std::optional<Error> {
    auto v = string_field(j, key, required);
    if (!v) return Error{v.error()};
    out = *v;
    return std::nullopt;
  };
  std::string home, kernel, initramfs, rootfs, accel;
  for (auto [key, out] : {std::pair{"home", &home}, {"id", &c.id}, {"image", &c.image}, {"kernel", &kernel},
                          {"initramfs", &initramfs}, {"rootfs", &rootfs}, {"accel", &accel}}) {
    if (auto e = text(key, true, *out)) return *e;
  }
  for (auto [key, out] : {std::pair{"rootfs_identity", &c.rootfs_identity}, {"hostname", &c.hostname},
                          {"accel_reason", &c.accel_reason}, {"qemu_binary", &c.qemu_binary},
                          {"qemu_img_binary", &c.qemu_img_binary}}) {
    std::string value;
    if (auto e = text(key, false, value)) return *e;
    if (!value.empty() || std::string(key) == "hostname") *out = value;
  }
  c.home = home;
  c.kernel = kernel;
  c.initramfs = initramfs;
  c.rootfs = rootfs;
  if (accel != "kvm" && accel != "tcg") return Error{"launch config: accel must be kvm or tcg"};
  c.accel = accel == "kvm" ? Accel::kvm : Accel::tcg;
  auto network = bool_field(j, "network", true);
  auto user_net = bool_field(j, "qemu_user_network", false);
  auto restart = bool_field(j, "restart", false);
  auto boot = int_field(j, "boot_timeout_ms", 60000);
  auto grace = int_field(j, "stop_grace_ms", 5000);
  for (const auto* r : {&network, &user_net, &restart}) {
    if (!*r) return Error{r->error()};
  }
  for (const auto* r : {&boot, &grace}) {
    if (!*r) return Error{r->error()};
  }
  c.network = *network;
  c.qemu_user_network = *user_net;
  c.restart = *restart;
  c.boot_timeout = std::chrono::milliseconds(*boot);
  c.stop_grace = std::chrono::milliseconds(*grace);
  if (const json* hosts = member(j, "add_hosts")) {
    if (!hosts->is_array()) return Error{"launch config: add_hosts must be a list"};
    for (const json& h : *hosts) {
      auto name = string_field(h, "name", true);
      auto address = string_field(h, "address", true);
      if (!name || !address) return Error{"launch config: add_hosts entries need a name and an address"};
      c.add_hosts.push_back({*name, *address});
    }
  }
  const json* policy_json = member(j, "policy");
  if (policy_json == nullptr || !policy_json->is_object()) return Error{"launch config: missing the policy"};
  try {
    // JSON is YAML: the policy goes back through the policy file loader, checks and all.
    c.policy = policy::load_policy_text(policy_json->dump(2), "launch.json policy", "/",
                                        [](const std::string&) { return std::nullopt; });
  } catch (const policy::PolicyError& e) {
    return Error{e.what()};
  }
  auto source = string_field(j, "policy_file", false);
  if (source) c.policy.source = *source;
  if (const json* env = member(j, "secret_env"); env != nullptr && env->is_object()) {
    for (policy::Secret& s : c.policy.network.secrets) {
      auto it = env->find(s.name);
      if (it != env->end() && it->is_string()) s.value_from_env = it->get<std::string>();
    }
  }
  return c;
}

Result<json> restore_secrets(json kept, const std::map<std::string, std::string>& given,
                             const policy::EnvLookup& env) {
  json* secrets = nullptr;
  if (kept.is_object() && kept.contains("policy") && kept["policy"].is_object() &&
      kept["policy"].contains("network") && kept["policy"]["network"].is_object() &&
      kept["policy"]["network"].contains("secrets") && kept["policy"]["network"]["secrets"].is_object()) {
    secrets = &kept["policy"]["network"]["secrets"];
  }
  if (secrets == nullptr) return kept;
  const json* from_env = member(kept, "secret_env");
  std::vector<std::string> missing;
  for (auto it = secrets->begin(); it != secrets->end(); ++it) {
    const std::string& name = it.key();
    if (auto g = given.find(name); g != given.end()) {
      (*it)["value"] = g->second;
      continue;
    }
    const json* var = from_env != nullptr ? member(*from_env, name.c_str()) : nullptr;
    if (var != nullptr && var->is_string()) {
      auto value = env(var->get<std::string>());
      if (!value) {
        missing.push_back(name + " (set $" + var->get<std::string>() + ")");
        continue;
      }
      (*it)["value"] = *value;
      continue;
    }
    missing.push_back(name + " (given as a value at create: pass it again)");
  }
  for (const auto& [name, value] : given) {
    if (!secrets->contains(name)) return Error{"secret " + name + " is not one of this VM's secrets"};
  }
  if (!missing.empty()) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    return Error{"secret values are never stored; to start this VM again airlock needs: " + list};
  }
  return kept;
}

json redacted_policy_json(const policy::Policy& p) {
  json j = policy::to_json(p);
  for (auto& [name, value] : j["env"].items()) value = std::string(policy::SecretValue::kRedacted);
  return j;
}

json state_config_json(const SupervisorConfig& c) {
  const policy::Policy& p = c.policy;
  json mounts = json::array();
  for (const auto& m : p.vfs.mounts) {
    mounts.push_back({{"guest_path", m.guest_path}, {"host_path", m.host_path.string()}, {"readonly", m.readonly}});
  }
  json env = json::object();
  for (const auto& [k, v] : p.env) env[k] = std::string(policy::SecretValue::kRedacted);
  json hosts = json::array();
  for (const HostAlias& h : c.add_hosts) hosts.push_back(h.name + ":" + h.address);
  json network = c.network;
  if (c.qemu_user_network) network = "qemu-user (benchmark)";
  return {{"image", p.image},
          {"resources", {{"cpus", p.resources.cpus}, {"memory_mb", p.resources.memory_mb},
                         {"disk_size_mb", p.resources.disk_size_mb},
                         {"timeout_seconds", p.resources.timeout_seconds}}},
          {"vfs", {{"workspace", p.vfs.workspace}, {"mounts", mounts}}},
          {"env", env},
          {"policy_file", p.source},
          {"network", network},
          {"hostname", c.hostname.empty() ? c.id : c.hostname},
          {"add_hosts", hosts}};
}

}  // namespace airlock::runtime
