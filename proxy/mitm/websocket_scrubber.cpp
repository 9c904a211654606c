// Re-framing scrubber for WebSocket messages from the origin; see websocket_scrubber.hpp.
#include "proxy/mitm/websocket_scrubber.hpp"

#include <algorithm>

namespace airlock::mitm {

namespace {

constexpr std::uint8_t kFin = 0x80;
constexpr std::uint8_t kRsv = 0x70;
constexpr std::uint8_t kContinuation = 0x0;

bool is_control(std::uint8_t opcode) { return (opcode & 0x8) != 0; }

}  // namespace

WebSocketScrubber::WebSocketScrubber(std::shared_ptr<const policy::MatchSet> set) : set_(std::move(set)) {}

void WebSocketScrubber::emit_frame(std::uint8_t first_byte, std::span<const std::uint8_t> payload,
                                   std::vector<std::uint8_t>& out) {
  out.push_back(first_byte);
  const std::uint64_t n = payload.size();
  if (n < 126) {
    out.push_back(static_cast<std::uint8_t>(n));
  } else if (n <= 0xffff) {
    out.push_back(126);
    out.push_back(static_cast<std::uint8_t>(n >> 8));
    out.push_back(static_cast<std::uint8_t>(n));
  } else {
    out.push_back(127);
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(n >> shift));
  }
  out.insert(out.end(), payload.begin(), payload.end());
}

void WebSocketScrubber::feed(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out) {
  std::size_t at = 0;
  while (at < in.size() && !failed_) {
    if (!in_payload_) {
      header_.push_back(in[at++]);
      if (header_.size() < 2) continue;
      const std::uint8_t b0 = header_[0];
      const std::uint8_t b1 = header_[1];
      if ((b0 & kRsv) != 0) return fail("a frame with reserved bits set (an extension the proxy can't read)");
      if ((b1 & 0x80) != 0) return fail("a masked frame from the origin");
      const std::uint8_t len7 = b1 & 0x7f;
      const std::size_t need = len7 == 126 ? 4 : len7 == 127 ? 10 : 2;
      if (header_.size() < need) continue;
      std::uint64_t length = len7;
      if (len7 == 126) length = (std::uint64_t{header_[2]} << 8) | header_[3];
      if (len7 == 127) {
        length = 0;
        for (int i = 2; i < 10; ++i) length = (length << 8) | header_[static_cast<std::size_t>(i)];
      }
      opcode_ = b0 & 0x0f;
      fin_ = (b0 & kFin) != 0;
      header_.clear();
      if (is_control(opcode_)) {
        if (length > 125 || !fin_) return fail("a malformed control frame");
        control_.clear();
      } else if (opcode_ == kContinuation) {
        if (!message_) return fail("a continuation frame with no message");
      } else {
        if (message_) return fail("a new message inside another");
        message_.emplace(set_);
        message_opcode_ = opcode_;
        message_started_ = false;
      }
      remaining_ = length;
      in_payload_ = true;
    }
    // Payload bytes of the current frame.
    const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, in.size() - at));
    auto piece = in.subspan(at, take);
    at += take;
    remaining_ -= take;
    if (is_control(opcode_)) {
      control_.insert(control_.end(), piece.begin(), piece.end());
    } else if (!piece.empty()) {
      std::vector<std::uint8_t> clean;
      message_->feed(piece, clean);
      if (const auto& found = message_->stopped()) return fail("secret " + found->secret + " in an encoded form");
      if (!clean.empty()) {
        emit_frame(message_started_ ? kContinuation : message_opcode_, clean, out);
        message_started_ = true;
      }
    }
    if (remaining_ > 0) continue;
    in_payload_ = false;
    if (is_control(opcode_)) {
      std::string text(control_.begin(), control_.end());
      auto result = policy::rewrite_string(*set_, text);
      if (result.stopped) return fail("secret " + result.stopped->secret + " in an encoded form");
      scrubbed_.insert(result.replaced.begin(), result.replaced.end());
      if (text.size() > 125) return fail("a control frame that grows past 125 bytes when scrubbed");
      emit_frame(static_cast<std::uint8_t>(kFin | opcode_), std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()), out);
    } else if (fin_) {
      std::vector<std::uint8_t> rest;
      message_->finish(rest);
      if (const auto& found = message_->stopped()) return fail("secret " + found->secret + " in an encoded form");
      scrubbed_.insert(message_->replaced().begin(), message_->replaced().end());
      emit_frame(static_cast<std::uint8_t>(kFin | (message_started_ ? kContinuation : message_opcode_)), rest, out);
      message_.reset();
    }
  }
}

}  // namespace airlock::mitm
