// The RPC and MCP servers; see rpc_server.hpp.
// GCC 12 reports a "potential null dereference" inside Asio's scheduler once it is
// inlined; the warning is about Boost's code, not this file's.
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include "runtime/api/rpc_server.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <map>
#include <utility>

#include <boost/asio.hpp>

#include "runtime/api/job_runner.hpp"
#include "runtime/api/mcp.hpp"
#include "runtime/api/rpc_connection.hpp"
#include "runtime/api/session.hpp"

namespace airlock::api {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using local = asio::local::stream_protocol;

namespace {

// One client: its transport, JSON-RPC connection and session, alive until closed.
struct Client {
  std::shared_ptr<RpcConnection> connection;
  std::shared_ptr<Session> session;
  std::shared_ptr<McpHandler> mcp;  // MCP only
  bool closing = false;
};

std::shared_ptr<Client> make_client(asio::io_context& io, const fs::path& home, JobRunner& jobs,
                                    std::shared_ptr<Transport> transport, bool mcp) {
  auto client = std::make_shared<Client>();
  std::weak_ptr<Client> weak = client;
  SessionIo hooks;
  hooks.notify = [weak](const std::string& method, nlohmann::json params) {
    auto c = weak.lock();
    if (!c) return;
    if (c->mcp) {
      c->mcp->on_notification(method, params);  // MCP sends no notifications of its own
    } else {
      c->connection->notify(method, std::move(params));
    }
  };
  hooks.backlog = [weak]() -> std::size_t {
    auto c = weak.lock();
    return c ? c->connection->backlog() : 0;
  };
  hooks.downstream_drained = [weak] {
    if (auto c = weak.lock()) c->connection->recheck();
  };
  client->session = std::make_shared<Session>(io, home, jobs, hooks);
  if (mcp) client->mcp = std::make_shared<McpHandler>(client->session);
  RpcConnection::Dispatch dispatch = [weak](const Call& call, std::function<void(ApiResult)> reply) {
    auto c = weak.lock();
    if (!c) return;
    if (c->mcp) {
      c->mcp->handle(call, std::move(reply));
    } else {
      c->session->call(call.method, call.params, std::move(reply));
    }
  };
  client->connection = std::make_shared<RpcConnection>(std::move(transport), std::move(dispatch));
  client->connection->on_drained = [weak] {
    if (auto c = weak.lock()) c->session->on_drained();
  };
  client->connection->downstream_backlog = [weak]() -> std::size_t {
    auto c = weak.lock();
    return c ? c->session->downstream_backlog() : 0;
  };
  return client;
}

void close_client(const std::shared_ptr<Client>& client, std::function<void()> done) {
  if (client->closing) return;
  client->closing = true;
  client->connection->close();
  client->session->close([client, done = std::move(done)] { done(); });
}

int run_stdio(const fs::path& home, bool mcp) {
  ::signal(SIGPIPE, SIG_IGN);
  asio::io_context io;
  JobRunner jobs(io);
  auto client = make_client(io, home, jobs, make_stdio_transport(io), mcp);
  auto finish = [&io, client] { close_client(client, [&io] { io.stop(); }); };
  client->connection->on_closed = finish;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([finish](const boost::system::error_code& ec, int) {
    if (!ec) finish();
  });
  client->connection->start();
  auto guard = asio::make_work_guard(io);
  io.run();
  return 0;
}

// True if something accepts connections on path (another server is running there).
bool answering(const fs::path& path) {
  asio::io_context io;
  local::socket probe(io);
  boost::system::error_code ec;
  probe.connect(local::endpoint(path.string()), ec);
  return !ec;
}

}  // namespace

int run_rpc_stdio(const fs::path& home) { return run_stdio(home, false); }
int run_mcp_stdio(const fs::path& home) { return run_stdio(home, true); }

int run_rpc_socket(const fs::path& home, const fs::path& socket_path, mode_t mode) {
  ::signal(SIGPIPE, SIG_IGN);
  struct stat st {};
  if (::lstat(socket_path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      std::cerr << "airlock: " << socket_path.string() << " exists and is not a socket\n";
      return 125;
    }
    if (answering(socket_path)) {
      std::cerr << "airlock: a server is already listening on " << socket_path.string() << "\n";
      return 125;
    }
    ::unlink(socket_path.c_str());
  }
  asio::io_context io;
  JobRunner jobs(io);
  local::acceptor acceptor(io);
  boost::system::error_code ec;
  // Owner-only from the start: the socket never exists with looser permissions.
  const mode_t old_umask = ::umask(0177);
  acceptor.open(local(), ec);
  if (!ec) acceptor.bind(local::endpoint(socket_path.string()), ec);
  ::umask(old_umask);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    std::cerr << "airlock: can't listen on " << socket_path.string() << ": " << ec.message() << "\n";
    return 125;
  }
  if (::chmod(socket_path.c_str(), mode) != 0) {
    std::cerr << "airlock: chmod " << socket_path.string() << ": " << std::strerror(errno) << "\n";
    return 125;
  }
  std::cerr << "airlock: serving the API on " << socket_path.string() << "\n";

  std::map<std::uint64_t, std::shared_ptr<Client>> clients;
  std::uint64_t next_client = 1;
  bool stopping = false;
  auto maybe_exit = [&] {
    if (stopping && clients.empty()) io.stop();
  };
  std::function<void()> accept = [&] {
    acceptor.async_accept([&](const boost::system::error_code& e, local::socket socket) {
      if (e) return;  // closed on the way out
      const std::uint64_t id = next_client++;
      auto client = make_client(io, home, jobs, make_socket_transport(io, std::move(socket)), false);
      client->connection->on_closed = [&, id] {
        auto it = clients.find(id);
        if (it == clients.end()) return;
        close_client(it->second, [&, id] {
          clients.erase(id);
          maybe_exit();
        });
      };
      clients[id] = client;
      client->connection->start();
      accept();
    });
  };
  accept();
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& e, int) {
    if (e) return;
    stopping = true;
    boost::system::error_code ignored;
    acceptor.close(ignored);
    std::vector<std::pair<std::uint64_t, std::shared_ptr<Client>>> all(clients.begin(), clients.end());
    for (auto& [id, client] : all) {
      close_client(client, [&, id = id] {
        clients.erase(id);
        maybe_exit();
      });
    }
    maybe_exit();
  });
  io.run();
  ::unlink(socket_path.c_str());
  return 0;
}

}  // namespace airlock::api
