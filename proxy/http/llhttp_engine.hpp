// The llhttp driver under RequestParser and ResponseParser (internal to proxy/http).
//
// Theory of operation. llhttp (strict mode) is a callback state machine that never
// buffers: it hands out spans of the caller's bytes. Engine owns one llhttp parser and
// turns its callbacks into a few stops the public parsers act on:
//
//   head             the head is complete (llhttp paused in on_headers_complete), no body
//                    byte has been looked at yet
//   message_complete the message ended (paused in on_message_complete)
//   upgrade          an Upgrade/CONNECT message ended; later bytes are another protocol
//   error            refused; error() holds the stable reason code
//   need_more        every byte given was consumed
//
// What llhttp 8.1 accepts but we refuse is checked here, in the callbacks, before a head
// is reported: empty header names, a second Content-Length / Transfer-Encoding / Host,
// Content-Length together with Transfer-Encoding, Content-Length values that are not
// plain digits, versions other than HTTP/1.0 and 1.1, and obs-fold (a header line that
// starts with SP or HTAB). llhttp reports a folded line as more of the previous value, so
// a small scanner (FoldScanner) reads the head bytes before llhttp does and cuts the run
// short at the first folded line: llhttp parses up to there (its own error wins if it has
// one, so the outcome does not depend on how the bytes were chunked) and then the head is
// refused with obs_fold.
//
// Caps: while a head is being read, llhttp never sees more than max_head_bytes bytes of
// it (counted from the end of the previous message), so a head that does not end in
// time is refused with header_too_large and nothing grows without bound. Header fields
// are counted against max_headers. Trailer fields of a chunked body are parsed by llhttp,
// counted against the same caps and dropped (never stored, never reported).
#pragma once

#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/http/message.hpp"

namespace airlock::http::detail {

// Finds obs-fold in the bytes of a head: a line after the start line that begins with SP
// or HTAB. Empty lines before the start line are skipped (llhttp allows them); the first
// empty line after it ends the head and the scan.
class FoldScanner {
 public:
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

  // Offset in bytes of the first byte of a folded line, or npos. Remembers its place so
  // a head may come in any number of pieces.
  std::size_t scan(std::span<const std::uint8_t> bytes);
  void reset() { *this = FoldScanner{}; }

 private:
  bool at_line_start_ = true;
  bool done_ = false;
  std::size_t lines_ = 0;  // complete non-empty lines so far
};

enum class Stop : std::uint8_t { need_more, head, message_complete, upgrade, error };

struct Step {
  std::size_t consumed = 0;
  Stop stop = Stop::need_more;
};

class Engine {
 public:
  Engine(llhttp_type_t type, const ParserLimits& limits, bool keep_body);
  virtual ~Engine() = default;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Runs llhttp over data (possibly empty: that still performs transitions pending after
  // a stop) until it needs more bytes or reaches a stop.
  Step run(std::span<const std::uint8_t> data);

  // End of input: completes a message whose body runs until EOF (message_complete), does
  // nothing between messages (need_more), or refuses a cut message (error "truncated").
  Stop finish();

  // Whether llhttp stopped at a head or message end and has transitions left to run.
  bool paused() const { return paused_; }
  bool failed() const { return phase_ == Phase::failed; }
  bool upgraded() const { return phase_ == Phase::upgraded; }
  const std::string& error() const { return error_; }

  // Decoded body bytes (keep_body) seen since the last take, and their count.
  std::vector<std::uint8_t> take_body();
  std::size_t take_body_count();

 protected:
  // Called once a head is complete and passed the common checks, before llhttp decides
  // how the body is framed. Returns "" to go on, else the reason code that refuses it.
  virtual std::string_view judge_head() = 0;

  llhttp_t parser_{};
  std::string url_;                   // request-target, as sent
  std::string status_text_;           // reason phrase, as sent
  std::vector<Header> headers_;       // the current head's fields
  std::size_t host_headers_ = 0;

 private:
  enum class Phase : std::uint8_t { head, body, upgraded, failed };

  static int on_message_begin(llhttp_t* p);
  static int on_url(llhttp_t* p, const char* at, std::size_t length);
  static int on_status(llhttp_t* p, const char* at, std::size_t length);
  static int on_header_field(llhttp_t* p, const char* at, std::size_t length);
  static int on_header_field_complete(llhttp_t* p);
  static int on_header_value(llhttp_t* p, const char* at, std::size_t length);
  static int on_header_value_complete(llhttp_t* p);
  static int on_headers_complete(llhttp_t* p);
  static int on_body(llhttp_t* p, const char* at, std::size_t length);
  static int on_message_complete(llhttp_t* p);
  static Engine& self(llhttp_t* p) { return *static_cast<Engine*>(p->data); }

  // Records a refusal from inside a callback; returns the value that makes llhttp stop.
  int refuse(std::string_view code);
  bool in_trailers() const { return phase_ == Phase::body; }
  int count_trailer_bytes(std::size_t length);
  Step fail(std::size_t consumed, std::string_view code);
  std::string_view reason_for(llhttp_errno_t err) const;

  llhttp_settings_t settings_{};
  ParserLimits limits_;
  bool keep_body_;
  Phase phase_ = Phase::head;
  bool paused_ = false;
  bool finishing_ = false;
  bool finished_ = false;            // finish() ran: EOF was seen
  bool completed_in_finish_ = false;
  Stop pending_stop_ = Stop::need_more;
  std::string error_;
  std::string callback_error_;       // set by refuse()
  FoldScanner folds_;
  std::size_t head_bytes_ = 0;       // bytes of the current head given to llhttp
  std::size_t fields_ = 0;           // header (or trailer) fields of the current message
  std::size_t trailer_bytes_ = 0;
  std::string name_;                 // field being read
  std::string value_;
  bool seen_content_length_ = false;
  bool seen_transfer_encoding_ = false;
  std::vector<std::uint8_t> body_;
  std::size_t body_count_ = 0;
};

}  // namespace airlock::http::detail
