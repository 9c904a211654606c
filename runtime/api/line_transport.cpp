// Line framing and the two transports; see line_transport.hpp.
// GCC 12 reports a "potential null dereference" inside Asio's scheduler once it is
// inlined; the warning is about Boost's code, not this file's.
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include "runtime/api/line_transport.hpp"

#include <unistd.h>

#include <array>
#include <cerrno>

#include <boost/asio.hpp>

namespace airlock::api {

namespace asio = boost::asio;

namespace {

class StdioTransport final : public Transport, public std::enable_shared_from_this<StdioTransport> {
 public:
  explicit StdioTransport(asio::io_context& io) : io_(io), splitter_(kMaxMessageBytes) {}
  ~StdioTransport() override {
    close();
    if (writer_.joinable()) writer_.join();
    // The reader may sit in read(2) on a stdin nobody closes: it is detached and only
    // touches this object through the weak pointer it holds.
  }

  void start() override {
    std::weak_ptr<StdioTransport> weak = shared_from_this();
    std::thread([weak] { reader(weak); }).detach();
    writer_ = std::thread([this] { write_loop(); });
  }

  void send(std::string line) override {
    line += '\n';
    {
      std::lock_guard lock(mutex_);
      if (closed_) return;
      queued_ += line.size();
      out_.push_back(std::move(line));
    }
    wake_.notify_all();
  }

  std::size_t backlog() const override {
    std::lock_guard lock(mutex_);
    return queued_;
  }

  void set_reading(bool enabled) override {
    {
      std::lock_guard lock(mutex_);
      reading_ = enabled;
    }
    wake_.notify_all();
  }

  void close() override {
    {
      std::lock_guard lock(mutex_);
      if (closed_) return;
      closed_ = true;
    }
    wake_.notify_all();
  }

 private:
  static void reader(std::weak_ptr<StdioTransport> weak) {
    std::array<char, 256 * 1024> buffer{};
    for (;;) {
      {
        auto self = weak.lock();
        if (!self) return;
        std::unique_lock lock(self->mutex_);
        self->wake_.wait(lock, [&] { return self->reading_ || self->closed_; });
        if (self->closed_) return;
      }
      const ssize_t n = ::read(0, buffer.data(), buffer.size());
      if (n < 0 && errno == EINTR) continue;
      auto self = weak.lock();
      if (!self) return;
      if (n <= 0) {
        asio::post(self->io_, [self] {
          if (self->on_closed) self->on_closed();
        });
        return;
      }
      auto lines = self->splitter_.feed(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
      if (lines.empty()) continue;
      asio::post(self->io_, [self, lines = std::move(lines)]() mutable {
        for (auto& line : lines) {
          if (self->on_line) self->on_line(std::move(line));
        }
      });
    }
  }

  void write_loop() {
    for (;;) {
      std::string line;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return closed_ || !out_.empty(); });
        if (out_.empty()) return;  // closed and nothing left
        line = std::move(out_.front());
        out_.pop_front();
      }
      std::string_view rest = line;
      bool failed = false;
      while (!rest.empty()) {
        const ssize_t n = ::write(1, rest.data(), rest.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          failed = true;
          break;
        }
        rest.remove_prefix(static_cast<std::size_t>(n));
      }
      {
        std::lock_guard lock(mutex_);
        queued_ -= line.size();
        if (failed) {
          closed_ = true;
          out_.clear();
          queued_ = 0;
        }
      }
      // A weak pointer only: this thread must never hold the last reference (the
      // destructor joins it).
      asio::post(io_, [weak = weak_from_this(), failed] {
        auto self = weak.lock();
        if (!self) return;
        if (failed && self->on_closed) self->on_closed();
        if (!failed && self->on_drained) self->on_drained();
      });
      if (failed) return;
    }
  }

  asio::io_context& io_;
  LineSplitter splitter_;  // the reader thread's alone
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::string> out_;
  std::size_t queued_ = 0;
  bool reading_ = true;
  bool closed_ = false;
  std::thread writer_;
};

class SocketTransport final : public Transport, public std::enable_shared_from_this<SocketTransport> {
 public:
  SocketTransport(asio::io_context& io, asio::local::stream_protocol::socket socket)
      : socket_(std::move(socket)), splitter_(kMaxMessageBytes) {
    (void)io;
  }

  void start() override { read(); }

  void send(std::string line) override {
    if (closed_) return;
    line += '\n';
    queued_ += line.size();
    out_.push_back(std::move(line));
    flush();
  }

  std::size_t backlog() const override { return queued_; }

  void set_reading(bool enabled) override {
    reading_enabled_ = enabled;
    if (enabled) read();
  }

  void close() override {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ec;
    socket_.shutdown(asio::socket_base::shutdown_both, ec);
    socket_.close(ec);
  }

 private:
  void read() {
    if (closed_ || reading_ || !reading_enabled_) return;
    reading_ = true;
    socket_.async_read_some(asio::buffer(buffer_), [self = shared_from_this()](const boost::system::error_code& ec,
                                                                               std::size_t n) {
      self->reading_ = false;
      if (self->closed_) return;
      if (ec) return self->lost();
      for (auto& line : self->splitter_.feed(std::string_view(self->buffer_.data(), n))) {
        if (self->on_line) self->on_line(std::move(line));
        if (self->closed_) return;
      }
      self->read();
    });
  }

  void flush() {
    if (closed_ || writing_ || out_.empty()) return;
    writing_ = true;
    asio::async_write(socket_, asio::buffer(out_.front()),
                      [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                        self->writing_ = false;
                        if (self->closed_) return;
                        if (ec) return self->lost();
                        self->queued_ -= self->out_.front().size();
                        self->out_.pop_front();
                        if (self->on_drained) self->on_drained();
                        self->flush();
                      });
  }

  void lost() {
    if (closed_) return;
    close();
    if (on_closed) on_closed();
  }

  asio::local::stream_protocol::socket socket_;
  LineSplitter splitter_;
  std::array<char, 256 * 1024> buffer_{};
  std::deque<std::string> out_;
  std::size_t queued_ = 0;
  bool reading_ = false;
  bool reading_enabled_ = true;
  bool writing_ = false;
  bool closed_ = false;
};

}  // namespace

std::shared_ptr<Transport> make_stdio_transport(asio::io_context& io) { return std::make_shared<StdioTransport>(io); }

std::shared_ptr<Transport> make_socket_transport(asio::io_context& io, asio::local::stream_protocol::socket socket) {
  return std::make_shared<SocketTransport>(io, std::move(socket));
}

}  // namespace airlock::api
