// api.sock on Asio; see api_server.hpp.
// GCC 12 reports a "potential null dereference" inside Asio's scheduler once it is
// inlined; the warning is about Boost's code, not this file's.
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include "runtime/vm/api_server.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio.hpp>

namespace airlock::runtime {

namespace asio = boost::asio;
using local = asio::local::stream_protocol;

struct ApiServer::Client {
  Client(ClientId client_id, local::socket s) : id(client_id), socket(std::move(s)) {}
  ClientId id;
  local::socket socket;
  protocol::FrameDecoder decoder;
  std::array<char, 64 * 1024> buffer{};
  std::deque<std::string> queue;
  std::size_t queued = 0;
  bool writing = false;
  bool reading = false;
  bool closed = false;
};

ApiServer::ApiServer(asio::io_context& io, Handlers handlers)
    : io_(io), acceptor_(io), handlers_(std::move(handlers)) {}

ApiServer::~ApiServer() = default;

Result<bool> ApiServer::listen(const std::string& path) {
  ::unlink(path.c_str());
  boost::system::error_code ec;
  acceptor_.open(local(), ec);
  if (!ec) acceptor_.bind(local::endpoint(path), ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Error{"can't listen on " + path + ": " + ec.message()};
  ::chmod(path.c_str(), 0600);
  accept();
  return true;
}

void ApiServer::accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, local::socket socket) {
    if (ec || shutting_down_) return;  // closed at exit
    if (clients_.size() >= kMaxClients) {
      boost::system::error_code ignored;
      socket.close(ignored);
    } else {
      auto client = std::make_shared<Client>(next_client_++, std::move(socket));
      clients_[client->id] = client;
      start_read(client);
    }
    accept();
  });
}

void ApiServer::set_reading(bool enabled) {
  reading_ = enabled;
  if (!enabled) return;
  // Copy: a handler run from start_read's completion may close clients.
  std::vector<std::shared_ptr<Client>> all;
  for (auto& [id, client] : clients_) all.push_back(client);
  for (auto& client : all) start_read(client);
}

void ApiServer::start_read(const std::shared_ptr<Client>& client) {
  if (client->closed || client->reading || !reading_ || shutting_down_) return;
  client->reading = true;
  client->socket.async_read_some(
      asio::buffer(client->buffer), [this, client](const boost::system::error_code& ec, std::size_t n) {
        client->reading = false;
        if (client->closed) return;
        if (ec || !client->decoder.feed(std::string_view(client->buffer.data(), n))) {
          close(client);
          return;
        }
        while (auto frame = client->decoder.next()) {
          try {
            if (handlers_.on_frame) handlers_.on_frame(client->id, std::move(*frame));
          } catch (const std::exception& e) {
            if (handlers_.log) handlers_.log(std::string("dropping a client after an error: ") + e.what());
            close(client);
            return;
          }
          if (client->closed) return;
        }
        start_read(client);
      });
}

void ApiServer::send(ClientId id, const protocol::Frame& frame) {
  auto it = clients_.find(id);
  if (it == clients_.end() || it->second->closed) return;
  if (frame.payload.size() > protocol::kMaxPayload) {
    if (handlers_.log) handlers_.log("dropping an oversized frame to a client");
    return;
  }
  auto& client = it->second;
  client->queue.push_back(protocol::encode_frame(frame.type, frame.channel, frame.payload));
  client->queued += client->queue.back().size();
  flush(client);
}

void ApiServer::flush(const std::shared_ptr<Client>& client) {
  if (client->closed || client->writing || client->queue.empty()) return;
  client->writing = true;
  asio::async_write(client->socket, asio::buffer(client->queue.front()),
                    [this, client](const boost::system::error_code& ec, std::size_t) {
                      client->writing = false;
                      if (client->closed) return;
                      if (ec) {
                        close(client);
                        return;
                      }
                      client->queued -= client->queue.front().size();
                      client->queue.pop_front();
                      if (shutting_down_ && client->queue.empty()) {
                        close(client);
                        return;
                      }
                      if (handlers_.on_drained) handlers_.on_drained();
                      flush(client);
                    });
}

std::size_t ApiServer::backlog(ClientId id) const {
  auto it = clients_.find(id);
  return it == clients_.end() ? 0 : it->second->queued;
}

std::size_t ApiServer::max_backlog() const {
  std::size_t most = 0;
  for (const auto& [id, client] : clients_) most = std::max(most, client->queued);
  return most;
}

void ApiServer::close(const std::shared_ptr<Client>& client) {
  if (client->closed) return;
  client->closed = true;
  boost::system::error_code ec;
  client->socket.close(ec);
  clients_.erase(client->id);
  if (!shutting_down_) {
    if (handlers_.on_closed) handlers_.on_closed(client->id);
  } else if (clients_.empty() && on_idle_) {
    auto idle = std::move(on_idle_);
    on_idle_ = nullptr;
    idle();
  }
}

void ApiServer::shut_down(std::function<void()> on_idle) {
  shutting_down_ = true;
  on_idle_ = std::move(on_idle);
  boost::system::error_code ec;
  acceptor_.close(ec);
  std::vector<std::shared_ptr<Client>> idle;
  for (auto& [id, client] : clients_) {
    if (client->queue.empty()) idle.push_back(client);
  }
  for (auto& client : idle) close(client);
  if (clients_.empty() && on_idle_) {
    auto done = std::move(on_idle_);
    on_idle_ = nullptr;
    done();
  }
}

}  // namespace airlock::runtime
