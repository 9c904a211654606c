// The supervisor's API socket (api.sock) on Asio: accepts CLI and RPC clients, decodes
// their frames and queues what goes back to each.
//
// Every client frame is handed to on_frame inside a guard: a handler that throws (a bug
// on a path a client can steer) costs that client its connection, logged, never the
// supervisor and the VM with it. A malformed frame stream closes its client. Reading
// from all clients can be paused (the guest is behind); each client's backlog is visible
// so the supervisor can pause the guest when a client is far behind. At most kMaxClients.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <boost/asio/local/stream_protocol.hpp>

#include "common/result.hpp"
#include "protocol/frame.hpp"

namespace airlock::runtime {

using ClientId = std::uint64_t;

class ApiServer {
 public:
  static constexpr std::size_t kMaxClients = 64;

  struct Handlers {
    std::function<void(ClientId, protocol::Frame)> on_frame;
    std::function<void(ClientId)> on_closed;
    std::function<void()> on_drained;                    // a write to some client finished
    std::function<void(const std::string&)> log;
  };

  ApiServer(boost::asio::io_context& io, Handlers handlers);
  ~ApiServer();

  Result<bool> listen(const std::string& path);
  void send(ClientId client, const protocol::Frame& frame);
  bool connected(ClientId client) const { return clients_.count(client) != 0; }
  std::size_t backlog(ClientId client) const;
  std::size_t max_backlog() const;
  void set_reading(bool enabled);
  // Stops accepting; clients are closed once their queues have drained. on_idle runs
  // when the last one is gone (at once if none is left).
  void shut_down(std::function<void()> on_idle);

 private:
  struct Client;
  void accept();
  void start_read(const std::shared_ptr<Client>& client);
  void flush(const std::shared_ptr<Client>& client);
  void close(const std::shared_ptr<Client>& client);

  boost::asio::io_context& io_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  Handlers handlers_;
  std::map<ClientId, std::shared_ptr<Client>> clients_;
  ClientId next_client_ = 1;
  bool reading_ = true;
  bool shutting_down_ = false;
  std::function<void()> on_idle_;
};

}  // namespace airlock::runtime
