// Frames waiting to go to the host, and the back-pressure signal derived from them.
//
// Everything guest-init says to the host is appended here as encoded frames and written
// to the control port when it is writable; nothing ever blocks on the port. Producers
// (exec output pipes, file reads) check over_cap() and stop pulling from their sources
// while the host is slow, so a child writing gigabytes cannot grow guest-init's memory
// beyond about kOutboxCap plus one read per producer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/frame.hpp"
#include "protocol/messages.hpp"

namespace airlock::guest {

inline constexpr std::size_t kOutboxCap = 1024 * 1024;

class Outbox {
 public:
  // A CONTROL frame from a JSON object, or from already serialised JSON text.
  void message(std::uint32_t channel, const protocol::Json& message);
  void control(std::uint32_t channel, std::string_view json_text);
  // Splits data into frames of at most kMaxPayload (an empty view sends one empty frame).
  void data(protocol::FrameType type, std::uint32_t channel, std::string_view bytes);

  bool over_cap() const { return pending() > kOutboxCap; }
  std::size_t pending() const { return buffer_.size() - offset_; }
  bool empty() const { return pending() == 0; }

  // Writes as much as the fd takes; returns false on a hard error (not EAGAIN).
  bool flush_to(int fd);
  void clear();

 private:
  std::string buffer_;
  std::size_t offset_ = 0;
};

}  // namespace airlock::guest
