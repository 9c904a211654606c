// `airlock proxy`: the policing MITM as a standalone explicit HTTP proxy.
//
//   airlock proxy --policy FILE --listen 127.0.0.1:8080 [--ca-cert-out ca.pem] [--events F|-]
//
// Clients use it as an HTTP proxy (HTTPS through CONNECT, http:// in absolute form) and
// trust the CA certificate written to --ca-cert-out. The same engine as a VM's network:
// allowlist, IP guard on every resolved address, TLS interception, per-request judgement,
// secrets swapped only for their hosts, one JSON line per event. The CA exists only in
// this process's memory; it changes every run. Runs until SIGINT/SIGTERM.
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <nlohmann/json.hpp>

#include "proxy/mitm/context.hpp"
#include "policy/engine.hpp"
#include "proxy/standalone/explicit_proxy.hpp"
#include "runtime/cli/commands.hpp"
#include "runtime/vm/audit_log.hpp"
#include "runtime/vm/vm_store.hpp"

namespace airlock::cli {

namespace {

struct ProxyArgs {
  PolicyFlags policy;
  std::string listen = "127.0.0.1:8080";
  std::string ca_out;
  std::string events = "-";
};

std::optional<boost::asio::ip::tcp::endpoint> parse_listen(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  std::string host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(host, ec);
  if (ec) return std::nullopt;
  try {
    const unsigned long port = std::stoul(text.substr(colon + 1));
    if (port > 65535) return std::nullopt;
    return boost::asio::ip::tcp::endpoint(address, static_cast<unsigned short>(port));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

int run_proxy(const ProxyArgs& args) {
  policy::Policy policy;
  try {
    policy = build_policy(args.policy);
  } catch (const policy::PolicyError& e) {
    std::cerr << "airlock: " << e.what() << "\n";
    return kExitUsage;
  }
  auto listen = parse_listen(args.listen);
  if (!listen) {
    std::cerr << "airlock: --listen wants ADDRESS:PORT, e.g. 127.0.0.1:8080\n";
    return kExitUsage;
  }
  mitm::MitmContext::Options options;
  options.ca_common_name = "airlock proxy CA";
  auto engine = policy::PolicyEngine::create(policy.network);
  if (!engine) {
    std::cerr << "airlock: " << engine.error() << "\n";
    return kExitRuntime;
  }
  auto context = mitm::MitmContext::create(*engine, options);
  if (!context) {
    std::cerr << "airlock: " << context.error() << "\n";
    return kExitRuntime;
  }

  // Events: JSON Lines with seq and timestamp, to stdout or a file.
  std::ofstream file;
  std::ostream* out = &std::cout;
  if (args.events != "-") {
    file.open(args.events, std::ios::app);
    if (!file) {
      std::cerr << "airlock: can't open " << args.events << "\n";
      return kExitRuntime;
    }
    out = &file;
  }
  std::uint64_t seq = 0;
  auto sink = [&](audit::Event event) {
    *out << audit::to_line(event, ++seq, runtime::unix_millis(), "proxy") << "\n";
    out->flush();
  };

  boost::asio::io_context io;
  standalone::ExplicitProxy::Config config;
  config.listen = *listen;
  standalone::ExplicitProxy proxy(io, *context, config, sink);
  try {
    proxy.start();
  } catch (const std::exception& e) {
    std::cerr << "airlock: can't listen on " << args.listen << ": " << e.what() << "\n";
    return kExitRuntime;
  }
  if (!args.ca_out.empty()) {
    std::ofstream ca(args.ca_out, std::ios::trunc);
    ca << (*context)->ca().certificate_pem();
    if (!ca) {
      std::cerr << "airlock: can't write " << args.ca_out << "\n";
      return kExitRuntime;
    }
  }
  const auto bound = proxy.local_endpoint();
  std::cerr << "airlock proxy: listening on " << bound.address().to_string() << ":" << bound.port()
            << (args.ca_out.empty() ? "" : ", CA certificate in " + args.ca_out) << "\n";
  for (const auto& [name, placeholder] : (*context)->policy().secrets().guest_env())
    std::cerr << "airlock proxy: secret " << name << " placeholder " << placeholder << "\n";

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int) { io.stop(); });
  std::signal(SIGPIPE, SIG_IGN);
  io.run();
  return 0;
}

}  // namespace

void register_proxy_commands(CLI::App& app) {
  auto args = std::make_shared<ProxyArgs>();
  CLI::App* cmd = app.add_subcommand(
      "proxy", "Run the policing MITM proxy as an explicit HTTP proxy (CONNECT and absolute-form)");
  // Only the flags that shape the network policy: a proxy has no VM to size or mount.
  cmd->add_option("--policy", args->policy.policy_file, "Policy file (YAML)")->check(CLI::ExistingFile);
  cmd->add_option("--allow-host", args->policy.overrides.allow_hosts, "Allow a host pattern (repeatable)")
      ->type_name("PATTERN")
      ->allow_extra_args(false);
  cmd->add_option("--secret", args->policy.overrides.secrets,
                  "Secret NAME=VALUE@host1,host2, or NAME@host1,host2 to take the value from $NAME "
                  "(repeatable); its placeholder is printed on stderr")
      ->type_name("SPEC")
      ->allow_extra_args(false);
  cmd->add_option("--listen", args->listen, "ADDRESS:PORT to listen on")
      ->type_name("ADDR:PORT")
      ->capture_default_str();
  cmd->add_option("--ca-cert-out", args->ca_out,
                  "Write the proxy's CA certificate (PEM) to FILE for clients to trust")
      ->type_name("FILE");
  cmd->add_option("--events", args->events, "Write the audit events to FILE (- = stdout)")
      ->type_name("FILE")
      ->capture_default_str();
  cmd->callback([args] { set_exit_code(run_proxy(*args)); });
}

}  // namespace airlock::cli
