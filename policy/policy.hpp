// The policy model: everything a policy file (and the CLI flags merged over it) says a
// sandbox may use and reach. Built by policy/loader, adjusted by policy/overrides, judged
// by policy/evaluator. Plain data; field names follow the policy file's keys.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "policy/host_pattern.hpp"
#include "policy/ip_address.hpp"

namespace airlock::policy {

// Raised at setup time for a policy the user must fix. what() is the whole message,
// prefixed "FILE:LINE:COLUMN: key.path: " when it comes from a file.
class PolicyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Looks up an environment variable; injectable so tests don't touch the real one.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup process_env();

// A secret's real value. It has no stream operator and no implicit conversion, so it
// can't slip into a log line or an event; reveal() is the one door out.
class SecretValue {
 public:
  SecretValue() = default;
  explicit SecretValue(std::string value) : value_(std::move(value)) {}
  const std::string& reveal() const { return value_; }
  bool empty() const { return value_.empty(); }
  static constexpr std::string_view kRedacted = "[REDACTED]";

 private:
  std::string value_;
};

struct Secret {
  std::string name;                 // also the guest environment variable
  SecretValue value;
  std::optional<std::string> value_from_env;  // where the value came from, if an env var
  std::optional<std::string> placeholder;     // fixed by the user, else random per VM
  std::vector<HostPattern> hosts;   // the only hosts the real value may reach
};

struct Resources {
  double cpus = 1;
  std::uint32_t memory_mb = 512;
  std::uint32_t disk_size_mb = 5120;
  std::uint32_t timeout_seconds = 300;  // 0 = no limit
};

struct Mount {
  std::string guest_path;               // absolute, normalised
  std::filesystem::path host_path;      // absolute, normalised
  bool readonly = false;
};

struct ResolveOverride {
  std::string host;                     // canonical name
  std::vector<IpAddress> addresses;
};

struct DnsServer {
  IpAddress address;
  std::uint16_t port = 53;
  std::string to_string() const;
};

// One entry of network.rules: which requests to a host it covers and what happens to
// them. Rules are tried in order before allowed_hosts; the first that covers a request
// decides (see policy/evaluator.hpp for where they sit among the other checks).
struct NetworkRule {
  enum class Action : std::uint8_t { allow, deny, ask };
  HostPattern host;                      // may name a port ("host:443"), or use `ports`
  std::vector<std::uint16_t> ports;      // sorted, unique; empty: any (or the host's) port
  std::vector<std::string> methods;      // upper-case; empty: any method
  std::vector<std::string> paths;        // globs on the normalised path; empty: any path
  Action action = Action::allow;
  std::string name;                      // optional; events name the rule by it

  // Rules with methods or paths judge HTTP requests only: a flow's opaque bytes and DNS
  // can't be judged by them.
  bool http_only() const { return !methods.empty() || !paths.empty(); }
  // Whether the rule names the port it covers (host:port or ports): only such a rule can
  // let opaque bytes through, as an allowed_hosts pattern with a port does.
  bool names_port() const { return !ports.empty() || host.port().has_value(); }
  bool covers(const Host& host, std::uint16_t port) const;
};

std::string_view to_string(NetworkRule::Action action);

struct NetworkPolicy {
  std::vector<NetworkRule> rules;          // first match wins, before allowed_hosts
  std::vector<HostPattern> allowed_hosts;
  std::vector<HostPattern> blocked_hosts;  // wins over allowed_hosts
  bool block_private_ips = true;
  // Exceptions to the private-address guard: address blocks, or names whose resolved
  // addresses may be private (e.g. a test server the `resolve` map points at loopback).
  std::vector<Cidr> allow_private_cidrs;
  std::vector<HostPattern> allow_private_hosts;
  std::vector<Secret> secrets;              // sorted by name
  std::optional<std::filesystem::path> policy_script;
  std::vector<DnsServer> dns_servers;       // empty: the host's resolvers
  std::optional<std::filesystem::path> upstream_ca_file;
  std::vector<ResolveOverride> resolve;     // sorted by host
};

struct VfsPolicy {
  std::string workspace = "/workspace";
  std::vector<Mount> mounts;                // sorted by guest path
};

// What the audit trail does when its writer falls behind the VM's network: `block`
// makes egress wait for the writer (nothing is lost), `drop` lets traffic go on and
// writes one events_lost record per run of records that did not fit. Either way the
// log never has a silent gap, and a full disk stops the VM's network.
enum class AuditOverflow { kBlock, kDrop };

struct AuditPolicy {
  AuditOverflow on_overflow = AuditOverflow::kBlock;
  std::uint32_t queue_events = 4096;  // records held between the network and the writer
};

struct Policy {
  std::string source;                       // file it came from, or "" for defaults
  std::string image = "default";
  Resources resources;
  NetworkPolicy network;
  VfsPolicy vfs;
  AuditPolicy audit;
  std::map<std::string, std::string> env;
};

}  // namespace airlock::policy
