// GuestLink: the Unix socket QEMU's `-netdev stream` connects the guest NIC to.
//
// Theory of operation. We listen on a path; QEMU connects (`-netdev stream,server=off,
// addr.type=unix,addr.path=PATH`). One connection is the link; a new connection replaces
// the old one (QEMU reconnecting), and whatever was in flight to the old one is lost
// (the guest's TCP retransmits). Bytes read are cut into Ethernet frames by
// netstack::LinkDecoder; a framing error can't be resynchronised, so the connection is
// closed (logged, counted) and we wait for the next one.
//
// Frames for the guest go through a bounded queue written in batches. Above
// `high_water` queued bytes the link is congested: producers (upstream reads) should
// pause until decongested() fires. Above `max_queued` (a guest that stops reading its
// NIC) new frames are dropped and counted, so memory stays bounded. With no connection,
// frames are dropped and counted too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>

namespace airlock::guest {

namespace asio = boost::asio;

class GuestLink {
 public:
  struct Config {
    std::filesystem::path socket_path;
    std::size_t read_chunk = 256 * 1024;
    std::size_t high_water = 4u << 20;   // congested above this many queued bytes
    std::size_t max_queued = 16u << 20;  // frames beyond are dropped
    std::size_t max_batch = 1u << 20;    // bytes per write
  };

  struct Counters {
    std::uint64_t connections = 0;
    std::uint64_t replaced = 0;          // a new connection took over from a live one
    std::uint64_t disconnects = 0;       // the peer closed or a read/write failed
    std::uint64_t framing_errors = 0;    // the stream broke the length framing
    std::uint64_t frames_in = 0;
    std::uint64_t frames_out = 0;
    std::uint64_t dropped_no_link = 0;   // frames for the guest with no connection
    std::uint64_t dropped_queue_full = 0;
  };

  struct Handlers {
    std::function<void(std::span<const std::uint8_t>)> frame;  // one frame from the guest
    std::function<void()> batch_done;    // after the frames of one read
    std::function<void()> decongested;   // the queue fell below high_water
    std::function<void(std::string_view)> log;
  };

  GuestLink(asio::io_context& io, Config config, Handlers handlers);
  ~GuestLink();
  GuestLink(const GuestLink&) = delete;
  GuestLink& operator=(const GuestLink&) = delete;

  // Binds (replacing a stale socket file) and starts accepting. Throws
  // boost::system::system_error on failure.
  void listen();
  // Stops accepting, closes the connection, removes the socket file.
  void close();

  void send(std::vector<std::uint8_t> frame);
  bool congested() const { return queued_bytes_ > config_.high_water; }
  bool connected() const { return connection_ != nullptr; }
  const Counters& counters() const { return counters_; }

 private:
  struct Connection;

  void accept();
  void read(const std::shared_ptr<Connection>& connection);
  void write();
  void drop(const std::shared_ptr<Connection>& connection, std::string_view why);
  void log(std::string_view line) const;

  asio::io_context& io_;
  Config config_;
  Handlers handlers_;
  asio::local::stream_protocol::acceptor acceptor_;
  std::shared_ptr<Connection> connection_;
  std::deque<std::vector<std::uint8_t>> queue_;
  std::vector<std::uint8_t> batch_;   // being written
  std::size_t queued_bytes_ = 0;      // queue_ and batch_, length prefixes included
  bool writing_ = false;
  bool listening_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  Counters counters_;
};

}  // namespace airlock::guest
