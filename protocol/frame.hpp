// The control-channel wire format between the host (runtime/) and guest-init.
//
// One byte stream (a virtio-serial port in the guest, a Unix socket on the host) carries
// frames in both directions:
//
//   u32 length (big-endian, counts everything after itself)
//   u8  type   (FrameType)
//   u32 channel (big-endian; 0 = the connection itself, else one request or exec)
//   payload    (length - 5 bytes, at most kMaxPayload)
//
// CONTROL payloads are one JSON object with an "op" field (see docs/control-protocol.md
// for every op); data frames carry raw bytes, and an empty data frame ends its stream.
// The decoder is sans-IO: feed it bytes, take frames out. A length below 5 or above the
// cap, or an unknown type, puts it in a failed state with a reason: the side reading it
// treats the peer as broken and resets the link, it never guesses at resynchronising.
// The same format is spoken between the CLI and a VM's supervisor on its API socket.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace airlock::protocol {

enum class FrameType : std::uint8_t {
  control = 1,      // JSON object
  stdin_data = 2,   // host -> guest, an exec's stdin; empty = EOF
  stdout_data = 3,  // guest -> host, an exec's stdout (or its TTY output)
  stderr_data = 4,  // guest -> host, an exec's stderr
  file_data = 5,    // either way, a file transfer's bytes; empty = end
};

inline constexpr std::size_t kHeaderSize = 9;
inline constexpr std::size_t kMaxPayload = 256 * 1024;
inline constexpr std::uint32_t kConnectionChannel = 0;

struct Frame {
  FrameType type = FrameType::control;
  std::uint32_t channel = 0;
  std::string payload;
};

// Appends the encoding of one frame to out. payload must be at most kMaxPayload.
void append_frame(std::string& out, FrameType type, std::uint32_t channel,
                  std::string_view payload);
std::string encode_frame(FrameType type, std::uint32_t channel, std::string_view payload);

class FrameDecoder {
 public:
  // Buffers bytes; returns false (and stays failed) once the stream is malformed.
  bool feed(std::span<const std::uint8_t> bytes);
  bool feed(std::string_view bytes);
  // The next complete frame, if any.
  std::optional<Frame> next();

  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }
  std::size_t buffered() const { return buffer_.size() - offset_; }

 private:
  std::string buffer_;
  std::size_t offset_ = 0;
  std::string error_;
};

}  // namespace airlock::protocol
