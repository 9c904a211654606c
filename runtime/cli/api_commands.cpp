// The programmable interfaces: `airlock rpc` and `airlock serve` (JSON-RPC 2.0, the API
// of docs/api.md) and `airlock mcp` (the Model Context Protocol). All three are thin:
// runtime/api/rpc_server.hpp runs them.
#include <sys/stat.h>

#include <charconv>

#include "runtime/api/rpc_server.hpp"
#include "runtime/cli/commands.hpp"
#include "runtime/cli/guarded.hpp"
#include "runtime/vm/vm_store.hpp"

namespace airlock::cli {

namespace {

struct ServeArgs {
  std::string socket;
  std::string mode = "0600";
};

int cmd_serve(const ServeArgs& a) {
  unsigned mode = 0;
  const auto [end, ec] = std::from_chars(a.mode.data(), a.mode.data() + a.mode.size(), mode, 8);
  if (ec != std::errc() || end != a.mode.data() + a.mode.size() || mode > 0777) {
    throw policy::PolicyError("--socket-mode: an octal mode such as 0600 or 0660, got '" + a.mode + "'");
  }
  return api::run_rpc_socket(runtime::airlock_home(), a.socket, static_cast<mode_t>(mode));
}

}  // namespace

void register_api_commands(CLI::App& app) {
  CLI::App* rpc = app.add_subcommand(
      "rpc", "Serve the sandbox API (JSON-RPC 2.0, one message per line) on stdin/stdout, for an SDK that spawns airlock");
  rpc->callback([] { guarded([] { return api::run_rpc_stdio(runtime::airlock_home()); }); });

  auto serve = std::make_shared<ServeArgs>();
  CLI::App* serve_cmd = app.add_subcommand("serve", "Serve the sandbox API (JSON-RPC 2.0) on a Unix socket, to many clients");
  serve_cmd->add_option("--socket", serve->socket, "Socket path")->required();
  serve_cmd->add_option("--socket-mode", serve->mode, "The socket's permission bits (default 0600: owner only)")
      ->type_name("OCTAL");
  serve_cmd->callback([serve] { guarded([&] { return cmd_serve(*serve); }); });

  CLI::App* mcp = app.add_subcommand(
      "mcp", "Serve the Model Context Protocol on stdin/stdout: tools to create sandboxes and run code in them");
  mcp->callback([] { guarded([] { return api::run_mcp_stdio(runtime::airlock_home()); }); });
}

}  // namespace airlock::cli
