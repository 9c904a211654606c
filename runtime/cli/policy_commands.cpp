// `airlock policy check|eval`, and the policy flags shared with the VM commands.
#include <iostream>

#include <nlohmann/json.hpp>

#include "policy/evaluator.hpp"
#include "policy/loader.hpp"
#include "policy/serialize.hpp"
#include "policy/url.hpp"
#include "runtime/cli/commands.hpp"

namespace airlock::cli {

namespace {
int g_exit_code = 0;
}

int exit_code() { return g_exit_code; }
void set_exit_code(int code) { g_exit_code = code; }

// Repeatable flags take one value each, so `-e A=1 ID -- CMD` leaves ID positional.
void add_policy_flags(CLI::App& command, PolicyFlags& flags, bool with_policy_option) {
  if (with_policy_option)
    command.add_option("--policy", flags.policy_file, "Policy file (YAML)")->check(CLI::ExistingFile);
  auto& o = flags.overrides;
  command.add_option("--allow-host", o.allow_hosts, "Allow a host pattern (repeatable)")
      ->type_name("PATTERN")
      ->allow_extra_args(false);
  command.add_option("--secret", o.secrets,
                     "Secret NAME=VALUE@host1,host2, or NAME@host1,host2 to take the value "
                     "from $NAME (repeatable)")
      ->type_name("SPEC")
      ->allow_extra_args(false);
  command.add_option("-v,--volume", o.volumes,
                     "Mount a host folder HOST:GUEST[:ro]; GUEST is relative to the workspace "
                     "unless inside it (repeatable)")
      ->type_name("HOST:GUEST[:ro]")
      ->allow_extra_args(false);
  command.add_option("-e,--env", o.env, "Set K=V in the sandbox, or pass $K through with K")
      ->type_name("K=V")
      ->allow_extra_args(false);
  command.add_option("--cpus", o.cpus, "Virtual CPUs (default 1)");
  command.add_option("--memory", o.memory, "Memory in MB, or with a unit: 2G (default 512)");
  command.add_option("--timeout", o.timeout, "Sandbox time limit: 300, 90s, 5m, 1h; 0 = none")
      ->type_name("SECONDS");
}

policy::Policy build_policy(const PolicyFlags& flags) {
  policy::Policy result;
  if (!flags.policy_file.empty()) result = policy::load_policy_file(flags.policy_file);
  policy::apply_overrides(result, flags.overrides);
  return result;
}

namespace {

struct CheckArgs {
  PolicyFlags flags;
  bool json = false;
};

struct EvalArgs {
  PolicyFlags flags;
  std::string url;
  std::string method = "GET";
  std::string resolved_ip;
};

void run_check(const CheckArgs& args) {
  try {
    policy::Policy p = build_policy(args.flags);
    if (args.json) std::cout << policy::to_json(p).dump(2) << "\n";
    else std::cout << policy::to_yaml(p);
    set_exit_code(0);
  } catch (const policy::PolicyError& e) {
    std::cerr << "airlock: " << e.what() << "\n";
    set_exit_code(kExitUsage);
  }
}

void run_eval(const EvalArgs& args) {
  try {
    policy::Policy p = build_policy(args.flags);
    auto target = policy::parse_url(args.url);
    if (!target) throw policy::PolicyError("invalid URL \"" + args.url + "\": " + target.error());
    std::optional<policy::IpAddress> resolved;
    if (!args.resolved_ip.empty()) {
      resolved = policy::IpAddress::parse(args.resolved_ip);
      if (!resolved) throw policy::PolicyError("--resolved-ip: not an IP address: " + args.resolved_ip);
    }
    policy::Evaluator evaluator(p.network);
    // A URL is judged as a request (rules with methods and paths apply); a bare host:port
    // as a connection.
    policy::Decision d = target->scheme.empty()
                             ? evaluator.evaluate(target->host, target->port, resolved)
                             : evaluator.evaluate_request(target->host, target->port, args.method, target->path, resolved);
    nlohmann::json out = {
        {"allowed", d.allowed},
        {"reason", d.reason},
        {"rule", d.rule.empty() ? nlohmann::json(nullptr) : nlohmann::json(d.rule.to_string())},
        {"host", target->host.to_string()},
        {"port", target->port},
    };
    if (!target->scheme.empty()) out["method"] = args.method;
    // A connection: whether non-HTTP bytes may pass on it (only with a rule naming the port).
    else if (d.allowed) out["opaque_allowed"] = d.rule.names_port;
    if (!d.detail.empty()) out["detail"] = d.detail;
    if (d.address) {
      out["address"] = d.address->to_string();
      out["address_class"] = policy::to_string(d.verdict->address_class);
      if (d.verdict->embedded_v4) out["embedded_ipv4"] = d.verdict->embedded_v4->to_string();
    }
    std::cout << out.dump() << "\n";
    set_exit_code(d.allowed ? 0 : 1);
  } catch (const policy::PolicyError& e) {
    std::cerr << "airlock: " << e.what() << "\n";
    set_exit_code(kExitUsage);
  }
}

}  // namespace

void register_policy_commands(CLI::App& app) {
  CLI::App* group = app.add_subcommand("policy", "Check policy files and try decisions");
  group->require_subcommand(1);

  auto check_args = std::make_shared<CheckArgs>();
  CLI::App* check = group->add_subcommand(
      "check", "Validate a policy file and print it normalised (secret values redacted)");
  check->add_option("file", check_args->flags.policy_file, "Policy file (YAML)")->required();
  add_policy_flags(*check, check_args->flags, false);
  check->add_flag("--json", check_args->json, "Print JSON instead of YAML");
  check->callback([check_args] { run_check(*check_args); });

  auto eval_args = std::make_shared<EvalArgs>();
  CLI::App* eval = group->add_subcommand(
      "eval",
      "Decide whether a URL may be reached. Prints one JSON object; exits 0 when allowed, "
      "1 when blocked, 2 on a usage or policy error");
  eval->add_option("file", eval_args->flags.policy_file, "Policy file (YAML)")->required();
  eval->add_option("url", eval_args->url, "URL (https://host/path) or host:port")->required();
  eval->add_option("--method", eval_args->method,
                   "The request's method, for rules with methods (default GET; ignored for host:port)");
  eval->add_option("--resolved-ip", eval_args->resolved_ip,
                   "The address the host resolves to, to check it against the IP guard");
  add_policy_flags(*eval, eval_args->flags, false);
  eval->callback([eval_args] { run_eval(*eval_args); });
}

}  // namespace airlock::cli
