// The QEMU stream link; see guest_link.hpp for the theory of operation.
#include "proxy/guest/guest_link.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>

#include "proxy/netstack/link.hpp"

namespace airlock::guest {

using local = asio::local::stream_protocol;

struct GuestLink::Connection {
  explicit Connection(local::socket s, std::size_t chunk) : socket(std::move(s)), buffer(chunk) {}
  local::socket socket;
  netstack::LinkDecoder decoder;
  std::vector<std::uint8_t> buffer;
};

GuestLink::GuestLink(asio::io_context& io, Config config, Handlers handlers)
    : io_(io), config_(std::move(config)), handlers_(std::move(handlers)), acceptor_(io) {}

GuestLink::~GuestLink() {
  alive_.reset();
  close();
}

void GuestLink::listen() {
  const std::string path = config_.socket_path.string();
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
  local::endpoint endpoint(path);
  acceptor_.open(endpoint.protocol());
  acceptor_.bind(endpoint);
  acceptor_.listen(4);
  listening_ = true;
  accept();
}

void GuestLink::close() {
  boost::system::error_code ec;
  if (connection_) connection_->socket.close(ec);
  connection_.reset();
  queue_.clear();
  queued_bytes_ = writing_ ? batch_.size() : 0;
  if (acceptor_.is_open()) acceptor_.close(ec);
  if (listening_) {
    listening_ = false;
    ::unlink(config_.socket_path.string().c_str());
  }
}

void GuestLink::accept() {
  std::weak_ptr<bool> alive = alive_;
  acceptor_.async_accept([this, alive](const boost::system::error_code& ec, local::socket socket) {
    if (alive.expired() || !acceptor_.is_open()) return;
    if (!ec) {
      ++counters_.connections;
      if (connection_) {
        ++counters_.replaced;
        log("guest link: a new connection replaces the current one");
        boost::system::error_code ignored;
        connection_->socket.close(ignored);
      } else {
        log("guest link: connected");
      }
      connection_ = std::make_shared<Connection>(std::move(socket), config_.read_chunk);
      read(connection_);
      write();
    }
    accept();
  });
}

void GuestLink::read(const std::shared_ptr<Connection>& connection) {
  std::weak_ptr<bool> alive = alive_;
  connection->socket.async_read_some(
      asio::buffer(connection->buffer),
      [this, alive, connection](const boost::system::error_code& ec, std::size_t n) {
        if (alive.expired() || connection != connection_) return;
        if (ec) {
          drop(connection, ec == asio::error::eof ? "closed by the peer" : ec.message());
          return;
        }
        connection->decoder.feed(std::span<const std::uint8_t>(connection->buffer.data(), n));
        while (auto frame = connection->decoder.next()) {
          ++counters_.frames_in;
          if (handlers_.frame) handlers_.frame(*frame);
        }
        if (connection->decoder.failed()) {
          ++counters_.framing_errors;
          drop(connection, "framing error: " + connection->decoder.error());
        } else {
          read(connection);
        }
        if (handlers_.batch_done) handlers_.batch_done();
      });
}

void GuestLink::send(std::vector<std::uint8_t> frame) {
  if (!connection_) {
    ++counters_.dropped_no_link;
    return;
  }
  const std::size_t size = frame.size() + netstack::kLinkLengthPrefix;
  if (queued_bytes_ + size > config_.max_queued) {
    ++counters_.dropped_queue_full;
    return;
  }
  queued_bytes_ += size;
  queue_.push_back(std::move(frame));
  write();
}

void GuestLink::write() {
  if (writing_ || !connection_ || queue_.empty()) return;
  batch_.clear();
  while (!queue_.empty() && batch_.size() < config_.max_batch) {
    netstack::append_link_frame(batch_, queue_.front());
    queue_.pop_front();
    ++counters_.frames_out;
  }
  writing_ = true;
  std::weak_ptr<bool> alive = alive_;
  auto connection = connection_;
  asio::async_write(connection->socket, asio::buffer(batch_),
                    [this, alive, connection](const boost::system::error_code& ec, std::size_t) {
                      if (alive.expired()) return;
                      const bool was_congested = congested();
                      writing_ = false;
                      queued_bytes_ -= std::min(queued_bytes_, batch_.size());
                      batch_.clear();
                      if (ec && connection == connection_) drop(connection, ec.message());
                      write();
                      if (was_congested && !congested() && handlers_.decongested)
                        handlers_.decongested();
                    });
}

void GuestLink::drop(const std::shared_ptr<Connection>& connection, std::string_view why) {
  if (connection != connection_) return;
  ++counters_.disconnects;
  log("guest link: connection dropped (" + std::string(why) + "); waiting for a new one");
  boost::system::error_code ec;
  connection_->socket.close(ec);
  connection_.reset();
  // Frames for a guest that is gone are useless; a reconnecting guest retransmits.
  counters_.dropped_no_link += queue_.size();
  queue_.clear();
  queued_bytes_ = writing_ ? batch_.size() : 0;
}

void GuestLink::log(std::string_view line) const {
  if (handlers_.log) handlers_.log(line);
}

}  // namespace airlock::guest
