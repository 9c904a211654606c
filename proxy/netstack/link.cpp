// Stream framing codec (see link.hpp). One buffer with a read offset; the consumed
// prefix is dropped lazily so many small feeds stay linear. The length of the next frame
// is checked as soon as its 4 bytes are there, before any of its payload is waited for.
#include "proxy/netstack/link.hpp"

#include <stdexcept>

#include "proxy/netstack/types.hpp"

namespace airlock::netstack {
namespace {

std::uint32_t length_at(const std::vector<std::uint8_t>& b, std::size_t at) {
  return (std::uint32_t{b[at]} << 24) | (std::uint32_t{b[at + 1]} << 16) |
         (std::uint32_t{b[at + 2]} << 8) | std::uint32_t{b[at + 3]};
}

}  // namespace

void LinkDecoder::check_header() {
  if (buffer_.size() - offset_ < kLinkLengthPrefix) return;
  const std::uint32_t length = length_at(buffer_, offset_);
  if (length < kEthernetHeader || length > kMaxEthernetFrame)
    error_ = "link frame length " + std::to_string(length) + " out of range";
}

bool LinkDecoder::feed(std::span<const std::uint8_t> bytes) {
  if (failed()) return false;
  if (offset_ > 0 && (offset_ >= buffer_.size() / 2 || offset_ > 64 * 1024)) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(offset_));
    offset_ = 0;
  }
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
  check_header();
  return !failed();
}

std::optional<std::vector<std::uint8_t>> LinkDecoder::next() {
  if (failed()) return std::nullopt;
  check_header();
  if (failed() || buffer_.size() - offset_ < kLinkLengthPrefix) return std::nullopt;
  const std::size_t length = length_at(buffer_, offset_);
  if (buffer_.size() - offset_ < kLinkLengthPrefix + length) return std::nullopt;
  const auto begin = buffer_.begin() + static_cast<std::ptrdiff_t>(offset_ + kLinkLengthPrefix);
  std::vector<std::uint8_t> frame(begin, begin + static_cast<std::ptrdiff_t>(length));
  offset_ += kLinkLengthPrefix + length;
  if (offset_ == buffer_.size()) {
    buffer_.clear();
    offset_ = 0;
  }
  return frame;
}

void append_link_frame(std::vector<std::uint8_t>& out, std::span<const std::uint8_t> frame) {
  // Frames come from our own builders; a wrong size is our bug, never guest input.
  if (frame.size() < kEthernetHeader || frame.size() > kMaxEthernetFrame)
    throw std::length_error("link frame size out of range");
  const auto n = static_cast<std::uint32_t>(frame.size());
  out.push_back(static_cast<std::uint8_t>(n >> 24));
  out.push_back(static_cast<std::uint8_t>((n >> 16) & 0xffU));
  out.push_back(static_cast<std::uint8_t>((n >> 8) & 0xffU));
  out.push_back(static_cast<std::uint8_t>(n & 0xffU));
  out.insert(out.end(), frame.begin(), frame.end());
}

}  // namespace airlock::netstack
