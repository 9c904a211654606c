// Outbound frame queue for the control port (see outbox.hpp).
#include "guest-init/outbox.hpp"

#include <cerrno>

#include <unistd.h>

namespace airlock::guest {

void Outbox::message(std::uint32_t channel, const protocol::Json& message) {
  control(channel, protocol::dump(message));
}

void Outbox::control(std::uint32_t channel, std::string_view json_text) {
  protocol::append_frame(buffer_, protocol::FrameType::control, channel, json_text);
}

void Outbox::data(protocol::FrameType type, std::uint32_t channel, std::string_view bytes) {
  do {
    const std::string_view chunk = bytes.substr(0, protocol::kMaxPayload);
    protocol::append_frame(buffer_, type, channel, chunk);
    bytes.remove_prefix(chunk.size());
  } while (!bytes.empty());
}

bool Outbox::flush_to(int fd) {
  while (offset_ < buffer_.size()) {
    const ssize_t n = ::write(fd, buffer_.data() + offset_, buffer_.size() - offset_);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN;
    }
    if (n == 0) break;
    offset_ += static_cast<std::size_t>(n);
  }
  if (offset_ == buffer_.size()) {
    buffer_.clear();
    offset_ = 0;
  } else if (offset_ > kOutboxCap) {
    buffer_.erase(0, offset_);
    offset_ = 0;
  }
  return true;
}

void Outbox::clear() {
  buffer_.clear();
  offset_ = 0;
}

}  // namespace airlock::guest
