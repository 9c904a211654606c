// DNS-over-TCP framing; see tcp_framer.hpp.
#include "proxy/dns/tcp_framer.hpp"

namespace airlock::dns {

bool TcpDnsFramer::feed(std::span<const std::uint8_t> bytes) {
  if (failed_) return false;
  compact();
  if (bytes.size() > kMaxPendingBytes - pending_bytes()) {
    failed_ = true;
    ++counters_.overflows;
    buffer_.clear();
    start_ = 0;
    return false;
  }
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
  return true;
}

std::optional<std::vector<std::uint8_t>> TcpDnsFramer::next() {
  while (!failed_ && pending_bytes() >= 2) {
    std::size_t length = (std::size_t{buffer_[start_]} << 8) | buffer_[start_ + 1];
    if (length == 0) {
      start_ += 2;
      ++counters_.empty_messages;
      continue;
    }
    if (pending_bytes() - 2 < length) break;
    auto first = buffer_.begin() + static_cast<std::ptrdiff_t>(start_ + 2);
    std::vector<std::uint8_t> message(first, first + static_cast<std::ptrdiff_t>(length));
    start_ += 2 + length;
    ++counters_.messages;
    return message;
  }
  return std::nullopt;
}

std::optional<std::vector<std::uint8_t>> TcpDnsFramer::encode(std::span<const std::uint8_t> message) {
  if (message.size() > kMaxMessageSize) return std::nullopt;
  std::vector<std::uint8_t> out;
  out.reserve(2 + message.size());
  out.push_back(static_cast<std::uint8_t>(message.size() >> 8));
  out.push_back(static_cast<std::uint8_t>(message.size() & 0xFF));
  out.insert(out.end(), message.begin(), message.end());
  return out;
}

void TcpDnsFramer::compact() {
  if (start_ == 0) return;
  buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(start_));
  start_ = 0;
}

}  // namespace airlock::dns
