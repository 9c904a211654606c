// Normalised policy output; see serialize.hpp.
#include "policy/serialize.hpp"

#include <yaml-cpp/yaml.h>

namespace airlock::policy {

namespace {

nlohmann::json patterns(const std::vector<HostPattern>& list) {
  nlohmann::json out = nlohmann::json::array();
  for (const HostPattern& p : list) out.push_back(p.to_string());
  return out;
}

void emit(YAML::Emitter& out, const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::object:
      out << YAML::BeginMap;
      for (auto& [key, item] : value.items()) {
        out << YAML::Key << key << YAML::Value;
        emit(out, item);
      }
      out << YAML::EndMap;
      break;
    case nlohmann::json::value_t::array:
      out << (value.empty() ? YAML::Flow : YAML::Block) << YAML::BeginSeq;
      for (const auto& item : value) emit(out, item);
      out << YAML::EndSeq;
      break;
    case nlohmann::json::value_t::string:
      out << YAML::DoubleQuoted << value.get<std::string>();
      break;
    case nlohmann::json::value_t::boolean:
      out << value.get<bool>();
      break;
    case nlohmann::json::value_t::null:
      out << YAML::Null;
      break;
    default:
      out << value.dump();
      break;
  }
}

}  // namespace

nlohmann::json to_json(const Policy& policy) {
  using nlohmann::json;
  json rules = json::array();
  for (const NetworkRule& r : policy.network.rules) {
    json rule = {{"host", r.host.to_string()}};
    if (!r.ports.empty()) rule["ports"] = r.ports;
    if (!r.methods.empty()) rule["methods"] = r.methods;
    if (!r.paths.empty()) rule["paths"] = r.paths;
    rule["action"] = std::string(to_string(r.action));
    if (!r.name.empty()) rule["name"] = r.name;
    rules.push_back(rule);
  }
  json network = {
      {"rules", rules},
      {"allowed_hosts", patterns(policy.network.allowed_hosts)},
      {"blocked_hosts", patterns(policy.network.blocked_hosts)},
      {"block_private_ips", policy.network.block_private_ips},
  };
  json allow_private = json::array();
  for (const Cidr& c : policy.network.allow_private_cidrs) allow_private.push_back(c.to_string());
  for (const HostPattern& p : policy.network.allow_private_hosts) allow_private.push_back(p.to_string());
  network["allow_private"] = allow_private;
  json secrets = json::object();
  for (const Secret& s : policy.network.secrets) {
    json entry = {{"value", std::string(SecretValue::kRedacted)}, {"hosts", patterns(s.hosts)}};
    if (s.value_from_env) entry["value_from_env"] = *s.value_from_env;
    if (s.placeholder) entry["placeholder"] = *s.placeholder;
    secrets[s.name] = entry;
  }
  network["secrets"] = secrets;
  network["policy_script"] =
      policy.network.policy_script ? json(policy.network.policy_script->string()) : json(nullptr);
  json dns = json::array();
  for (const DnsServer& d : policy.network.dns_servers) dns.push_back(d.to_string());
  network["dns_servers"] = dns;
  network["upstream_ca_file"] = policy.network.upstream_ca_file
                                    ? json(policy.network.upstream_ca_file->string())
                                    : json(nullptr);
  json resolve = json::object();
  for (const ResolveOverride& r : policy.network.resolve) {
    json addresses = json::array();
    for (const IpAddress& a : r.addresses) addresses.push_back(a.to_string());
    resolve[r.host] = addresses;
  }
  network["resolve"] = resolve;

  json mounts = json::object();
  for (const Mount& m : policy.vfs.mounts)
    mounts[m.guest_path] = {{"host_path", m.host_path.string()}, {"readonly", m.readonly}};

  return json{
      {"image", policy.image},
      {"resources",
       {{"cpus", policy.resources.cpus},
        {"memory_mb", policy.resources.memory_mb},
        {"disk_size_mb", policy.resources.disk_size_mb},
        {"timeout_seconds", policy.resources.timeout_seconds}}},
      {"network", network},
      {"vfs", {{"workspace", policy.vfs.workspace}, {"mounts", mounts}}},
      {"env", policy.env},
      {"audit",
       {{"on_overflow", policy.audit.on_overflow == AuditOverflow::kBlock ? "block" : "drop"},
        {"queue_events", policy.audit.queue_events}}},
  };
}

std::string to_yaml(const Policy& policy) {
  YAML::Emitter out;
  emit(out, to_json(policy));
  return std::string(out.c_str()) + "\n";
}

}  // namespace airlock::policy
