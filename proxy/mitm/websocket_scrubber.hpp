// WebSocketScrubber: the origin-to-guest half of a WebSocket on a flow a secret may reach,
// re-framed so an echoed real value comes back as its placeholder.
//
// Theory of operation. RFC 6455 frames are read as they arrive: a 2..14 byte header, then
// the payload. Data frames (text, binary, continuation) belong to a message; their payload
// streams through one SecretRewriter per message, so a value split across frames (or
// across reads) is still found. Because rewriting can change lengths, every data frame
// goes out re-fragmented (an intermediary may, when no extension is in use): the bytes
// rewritten so far as a non-final fragment, and the message's last fragment (FIN) once
// the rewriter has flushed. Control frames (close, ping, pong) are rewritten whole and
// keep their one-frame form. The proxy strips Sec-WebSocket-Extensions from upgrade
// requests on such flows, so no extension can hide bytes; a frame with reserved bits set,
// a masked frame from the origin, a control frame over 125 bytes, or an encoded form of a
// value that can't be replaced (base64) ends the tunnel (failed()). Bounded: at most one
// header and the rewriter's hold-back are kept between reads. Pure: no I/O.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "policy/secret_scan.hpp"

namespace airlock::mitm {

class WebSocketScrubber {
 public:
  explicit WebSocketScrubber(std::shared_ptr<const policy::MatchSet> set);

  // Appends the re-framed, scrubbed bytes for the guest to out.
  void feed(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out);
  const std::optional<std::string>& failed() const { return failed_; }
  const std::set<std::string>& scrubbed() const { return scrubbed_; }

 private:
  void emit_frame(std::uint8_t first_byte, std::span<const std::uint8_t> payload, std::vector<std::uint8_t>& out);
  void fail(std::string why) {
    if (!failed_) failed_ = std::move(why);
  }

  std::shared_ptr<const policy::MatchSet> set_;
  std::vector<std::uint8_t> header_;   // of the frame being read
  std::uint64_t remaining_ = 0;        // payload bytes of the current frame still to come
  bool in_payload_ = false;
  std::uint8_t opcode_ = 0;            // of the current frame
  bool fin_ = false;
  std::vector<std::uint8_t> control_;  // a control frame's payload, held whole
  std::optional<policy::SecretRewriter> message_;  // the current data message
  std::uint8_t message_opcode_ = 0;
  bool message_started_ = false;       // a fragment of it went out
  std::optional<std::string> failed_;
  std::set<std::string> scrubbed_;
};

}  // namespace airlock::mitm
