// ByteStream: the one async read / write-queue / half-close loop over a TCP socket, for
// every driver that owns one (the MITM's upstream side, the standalone proxy's clients).
//
// Theory of operation. Reading: while reading is on, the stream waits for the socket to
// become readable (no buffer is held while it waits, so an idle connection costs no read
// buffer), then reads what is there into one scratch buffer shared by all streams of the
// thread and hands it to `data` - which must copy what it keeps. EOF and errors end
// reading and are reported once. Writing: write() queues bytes (never fails, never
// blocks) and the queue drains in gathered writes; queued() is what still waits. Above
// `high` queued bytes the owner should stop producing (above_high()), and `drained` fires
// once the queue falls to `low` again. shutdown() sends FIN after everything queued;
// reset() sends RST at once (SO_LINGER 0) and drops the queue. A write error is reported
// through `error` like a read error. Callbacks never run inside the call that caused
// them; after close()/reset() none runs at all.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

namespace airlock::flow {

namespace asio = boost::asio;

class ByteStream : public std::enable_shared_from_this<ByteStream> {
 public:
  struct Marks {
    std::size_t high = 1u << 20;
    std::size_t low = 256u << 10;
  };
  struct Handlers {
    std::function<void(std::span<const std::uint8_t>)> data;
    std::function<void()> eof;
    std::function<void(const boost::system::error_code&)> error;
    std::function<void()> drained;
  };

  static std::shared_ptr<ByteStream> create(asio::ip::tcp::socket socket);
  static std::shared_ptr<ByteStream> create(asio::ip::tcp::socket socket, Marks marks);

  void set_handlers(Handlers handlers) { handlers_ = std::move(handlers); }
  void read(bool on);
  void write(std::vector<std::uint8_t> bytes);
  std::size_t queued() const { return queued_; }
  bool above_high() const { return queued_ > marks_.high; }
  void shutdown();
  void reset();
  // Closes quietly (no RST unless bytes were still queued), and stops every callback.
  void close();
  bool open() const { return !closed_; }
  bool eof() const { return eof_; }
  asio::ip::tcp::socket& socket() { return socket_; }

  ByteStream(asio::ip::tcp::socket socket, Marks marks);

 private:
  void wait_readable();
  void on_readable();
  void write_more();

  asio::ip::tcp::socket socket_;
  Marks marks_;
  Handlers handlers_;
  std::deque<std::vector<std::uint8_t>> queue_;
  std::size_t queued_ = 0;
  std::size_t writing_count_ = 0;  // queue_ entries in the write under way
  bool reading_on_ = false;
  bool waiting_ = false;
  bool writing_ = false;
  bool was_high_ = false;
  bool shutdown_wanted_ = false;
  bool shut_ = false;
  bool eof_ = false;
  bool failed_ = false;
  bool closed_ = false;
};

}  // namespace airlock::flow
