// The API's servers: `airlock rpc` (JSON-RPC on stdin/stdout, one client: the SDK that
// spawned it), `airlock serve --socket PATH` (JSON-RPC on a Unix socket, any number of
// clients, each with its own session) and `airlock mcp` (MCP on stdin/stdout).
//
// Each runs one Asio loop on the main thread; blocking sandbox operations run as jobs.
// A client's end (EOF, a closed socket) closes its session: its execs are cancelled and
// the sandboxes it created with auto_remove are removed before the server lets go of
// it; stdio servers exit then. SIGINT and SIGTERM end every session the same way. The
// socket is created owner-only (mode 0600) unless a mode is given, and an existing
// socket file is replaced only if nothing answers on it.
#pragma once

#include <sys/types.h>

#include <filesystem>

namespace airlock::api {

int run_rpc_stdio(const std::filesystem::path& home);
int run_rpc_socket(const std::filesystem::path& home, const std::filesystem::path& socket, mode_t mode);
int run_mcp_stdio(const std::filesystem::path& home);

}  // namespace airlock::api
