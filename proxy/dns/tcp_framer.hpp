// TcpDnsFramer: DNS over TCP (RFC 1035 4.2.2, RFC 7766) cut into messages, sans-IO.
//
// Theory of operation. Each message on a TCP connection to port 53 is preceded by its
// length as two big-endian bytes. The I/O driver feeds whatever bytes the connection
// delivered, in any chunking, and takes complete queries out with next(); responses go
// back through encode(). The length prefix caps a message at 65535 bytes; a zero-length
// message carries nothing and is skipped (and counted). Bytes held but not yet taken out
// are capped at kMaxPendingBytes: a guest that sends faster than it reads answers makes
// feed() fail, and the driver closes the connection. After a failure the framer stays
// failed and accepts nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace airlock::dns {

class TcpDnsFramer {
 public:
  static constexpr std::size_t kMaxMessageSize = 65535;
  static constexpr std::size_t kMaxPendingBytes = 2 * (2 + kMaxMessageSize);

  struct Counters {
    std::uint64_t messages = 0;
    std::uint64_t empty_messages = 0;   // zero-length frames skipped
    std::uint64_t overflows = 0;        // feed() refused: too many pending bytes
  };

  // Appends bytes; false once the pending cap is exceeded (the connection should close).
  bool feed(std::span<const std::uint8_t> bytes);

  // The next complete message without its prefix, or nullopt until one is complete.
  std::optional<std::vector<std::uint8_t>> next();

  // The message with its length prefix; nullopt when it is longer than 65535 bytes.
  static std::optional<std::vector<std::uint8_t>> encode(std::span<const std::uint8_t> message);

  bool failed() const { return failed_; }
  std::size_t pending_bytes() const { return buffer_.size() - start_; }
  const Counters& counters() const { return counters_; }

 private:
  void compact();

  std::vector<std::uint8_t> buffer_;
  std::size_t start_ = 0;  // bytes before it were handed out already
  bool failed_ = false;
  Counters counters_;
};

}  // namespace airlock::dns
