// The QEMU `-netdev stream` framing: each Ethernet frame travels as a 4-byte big-endian
// length followed by the frame, in both directions.
//
// LinkDecoder is sans-IO like protocol::FrameDecoder: feed it bytes as they arrive, take
// whole frames out. A length of 0, below an Ethernet header (14) or above 65535 + 14 is a
// framing error: the decoder fails for good and the driver resets the link, since there
// is no way to resynchronise on a stream without markers. A hostile guest can make it
// buffer at most one maximal frame plus whatever was fed in one call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace airlock::netstack {

inline constexpr std::size_t kLinkLengthPrefix = 4;

class LinkDecoder {
 public:
  // Buffers bytes; returns false (and stays failed) once the stream is malformed.
  bool feed(std::span<const std::uint8_t> bytes);
  // The next complete frame, if any.
  std::optional<std::vector<std::uint8_t>> next();

  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }
  std::size_t buffered() const { return buffer_.size() - offset_; }

 private:
  void check_header();

  std::vector<std::uint8_t> buffer_;
  std::size_t offset_ = 0;
  std::string error_;
};

// Appends the length prefix and the frame. The frame must be 14..65535+14 bytes.
void append_link_frame(std::vector<std::uint8_t>& out, std::span<const std::uint8_t> frame);

}  // namespace airlock::netstack
