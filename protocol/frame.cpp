// Frame codec for the control channel (see frame.hpp for the wire format).
//
// The decoder keeps one growing buffer and a read offset; complete frames are cut out
// from the front, and the consumed prefix is dropped lazily so feeding many small chunks
// stays linear. The header is read byte by byte (no casts over the buffer), the length is
// checked against [5, 5 + kMaxPayload] and the type against the known set before any
// payload is buffered for it, so a hostile peer can make the decoder hold at most one
// maximal frame plus whatever it fed since. Once failed, the decoder refuses all input.
#include "protocol/frame.hpp"

#include <stdexcept>

namespace airlock::protocol {
namespace {

constexpr std::size_t kTypeAndChannel = 5;  // what `length` counts besides the payload

void put_u32(std::string& out, std::uint32_t v) {
  out.push_back(static_cast<char>((v >> 24) & 0xffU));
  out.push_back(static_cast<char>((v >> 16) & 0xffU));
  out.push_back(static_cast<char>((v >> 8) & 0xffU));
  out.push_back(static_cast<char>(v & 0xffU));
}

std::uint32_t get_u32(std::string_view s, std::size_t at) {
  auto byte = [&](std::size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + i])); };
  return (byte(0) << 24) | (byte(1) << 16) | (byte(2) << 8) | byte(3);
}

bool known_type(std::uint8_t t) {
  return t >= static_cast<std::uint8_t>(FrameType::control) &&
         t <= static_cast<std::uint8_t>(FrameType::file_data);
}

// Checks the header at `at` (at least kHeaderSize bytes must be there); "" when valid.
std::string header_error(std::string_view buffer, std::size_t at) {
  const std::uint32_t length = get_u32(buffer, at);
  const auto type = static_cast<std::uint8_t>(buffer[at + 4]);
  if (length < kTypeAndChannel || length > kMaxPayload + kTypeAndChannel)
    return "frame length " + std::to_string(length) + " out of range";
  if (!known_type(type)) return "unknown frame type " + std::to_string(type);
  return {};
}

}  // namespace

void append_frame(std::string& out, FrameType type, std::uint32_t channel,
                  std::string_view payload) {
  // Callers own this invariant (they chunk data to kMaxPayload); a violation is a bug on
  // our side, never peer input, so it is reported loudly instead of being truncated.
  if (payload.size() > kMaxPayload) throw std::length_error("frame payload over kMaxPayload");
  out.reserve(out.size() + kHeaderSize + payload.size());
  put_u32(out, static_cast<std::uint32_t>(payload.size() + kTypeAndChannel));
  out.push_back(static_cast<char>(type));
  put_u32(out, channel);
  out.append(payload);
}

std::string encode_frame(FrameType type, std::uint32_t channel, std::string_view payload) {
  std::string out;
  append_frame(out, type, channel, payload);
  return out;
}

bool FrameDecoder::feed(std::span<const std::uint8_t> bytes) {
  if (failed()) return false;
  // Drop the consumed prefix before growing, so the buffer never holds stale frames.
  if (offset_ > 0 && (offset_ >= buffer_.size() / 2 || offset_ > 64 * 1024)) {
    buffer_.erase(0, offset_);
    offset_ = 0;
  }
  buffer_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  // Validate the header of the next frame right away, so a bad length fails the
  // stream at once instead of after the peer has sent gigabytes.
  if (buffer_.size() - offset_ >= kHeaderSize) error_ = header_error(buffer_, offset_);
  return !failed();
}

bool FrameDecoder::feed(std::string_view bytes) {
  return feed(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                            bytes.size()));
}

std::optional<Frame> FrameDecoder::next() {
  if (failed()) return std::nullopt;
  const std::string_view view(buffer_);
  const std::size_t available = view.size() - offset_;
  if (available < kHeaderSize) return std::nullopt;
  error_ = header_error(view, offset_);
  if (failed()) return std::nullopt;
  const std::uint32_t length = get_u32(view, offset_);
  const auto type = static_cast<std::uint8_t>(view[offset_ + 4]);
  const std::size_t total = 4 + static_cast<std::size_t>(length);
  if (available < total) return std::nullopt;
  Frame frame;
  frame.type = static_cast<FrameType>(type);
  frame.channel = get_u32(view, offset_ + 5);
  frame.payload.assign(view.substr(offset_ + kHeaderSize, total - kHeaderSize));
  offset_ += total;
  if (offset_ == buffer_.size()) {
    buffer_.clear();
    offset_ = 0;
  }
  return frame;
}

}  // namespace airlock::protocol
