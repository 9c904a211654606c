// Newline-delimited messages over a byte stream, the framing of `airlock rpc`, `airlock
// serve` and `airlock mcp`: one JSON message per line, "\n" after each.
//
// The framing itself is line_splitter.hpp (sans-IO). The transports move bytes: StdioTransport reads fd 0
// and writes fd 1 on two helper threads (blocking I/O works whatever stdin and stdout
// are: pipes, files, a terminal) and posts to the loop; SocketTransport is an Asio
// Unix socket. Both queue outgoing lines without bound, so the owner watches backlog()
// and stops producing (and reading requests) while the peer is behind.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include "runtime/api/line_splitter.hpp"

namespace airlock::api {

class Transport {
 public:
  virtual ~Transport() = default;
  virtual void start() = 0;
  virtual void send(std::string line) = 0;  // a newline is added
  virtual std::size_t backlog() const = 0;
  virtual void set_reading(bool enabled) = 0;
  virtual void close() = 0;

  std::function<void(std::optional<std::string> line)> on_line;  // nullopt: oversized
  std::function<void()> on_closed;   // the peer is gone (EOF or error); once
  std::function<void()> on_drained;  // some output was written
};

inline constexpr std::size_t kMaxMessageBytes = 256u << 20;

std::shared_ptr<Transport> make_stdio_transport(boost::asio::io_context& io);
std::shared_ptr<Transport> make_socket_transport(boost::asio::io_context& io,
                                                 boost::asio::local::stream_protocol::socket socket);

}  // namespace airlock::api
