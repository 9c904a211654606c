// The llhttp driver; see llhttp_engine.hpp.
#include "proxy/http/llhttp_engine.hpp"

namespace airlock::http::detail {

namespace {

// llhttp reads from a pointer range; an empty run still needs a valid pointer.
constexpr char kNoBytes[1] = {0};

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace

std::size_t FoldScanner::scan(std::span<const std::uint8_t> bytes) {
  for (std::size_t i = 0; i < bytes.size() && !done_; ++i) {
    const std::uint8_t b = bytes[i];
    if (at_line_start_) {
      if (b == ' ' || b == '\t') {
        if (lines_ > 0) return i;
        at_line_start_ = false;  // before the start line: llhttp refuses it itself
      } else if (b == '\r' || b == '\n') {
        if (lines_ > 0) done_ = true;  // the blank line that ends the head
      } else {
        at_line_start_ = false;
      }
    } else if (b == '\n') {
      at_line_start_ = true;
      ++lines_;
    }
  }
  return npos;
}

Engine::Engine(llhttp_type_t type, const ParserLimits& limits, bool keep_body)
    : limits_(limits), keep_body_(keep_body) {
  llhttp_settings_init(&settings_);
  settings_.on_message_begin = &Engine::on_message_begin;
  settings_.on_url = &Engine::on_url;
  settings_.on_status = &Engine::on_status;
  settings_.on_header_field = &Engine::on_header_field;
  settings_.on_header_field_complete = &Engine::on_header_field_complete;
  settings_.on_header_value = &Engine::on_header_value;
  settings_.on_header_value_complete = &Engine::on_header_value_complete;
  settings_.on_headers_complete = &Engine::on_headers_complete;
  settings_.on_body = &Engine::on_body;
  settings_.on_message_complete = &Engine::on_message_complete;
  llhttp_init(&parser_, type, &settings_);
  parser_.data = this;
}

Step Engine::run(std::span<const std::uint8_t> data) {
  if (phase_ == Phase::failed) return {0, Stop::error};
  if (phase_ == Phase::upgraded) return {0, Stop::upgrade};
  if (paused_) {
    llhttp_resume(&parser_);
    paused_ = false;
  }
  const bool reading_head = phase_ == Phase::head;
  std::span<const std::uint8_t> slice = data;
  bool fold_ends_slice = false;
  if (reading_head) {
    const std::size_t room = limits_.max_head_bytes - head_bytes_;
    if (room == 0 && !data.empty()) return fail(0, "header_too_large");
    if (slice.size() > room) slice = slice.first(room);
    const std::size_t fold = folds_.scan(slice);
    if (fold != FoldScanner::npos) {
      slice = slice.first(fold);
      fold_ends_slice = true;
    }
  }

  const char* begin = slice.empty() ? kNoBytes : reinterpret_cast<const char*>(slice.data());
  pending_stop_ = Stop::need_more;
  const llhttp_errno_t err = llhttp_execute(&parser_, begin, slice.size());
  std::size_t consumed = slice.size();
  if (err != HPE_OK) {
    const char* at = llhttp_get_error_pos(&parser_);
    consumed = at != nullptr && at >= begin && at <= begin + slice.size()
                   ? static_cast<std::size_t>(at - begin)
                   : 0;
  }
  if (reading_head) head_bytes_ += consumed;

  switch (err) {
    case HPE_OK:
      if (fold_ends_slice) return fail(consumed, "obs_fold");
      return {consumed, Stop::need_more};
    case HPE_PAUSED:
      paused_ = true;
      return {consumed, pending_stop_};
    case HPE_PAUSED_UPGRADE:
      phase_ = Phase::upgraded;
      return {consumed, Stop::upgrade};
    default:
      return fail(consumed, reason_for(err));
  }
}

Stop Engine::finish() {
  if (phase_ == Phase::failed) return Stop::error;
  if (phase_ == Phase::upgraded) return Stop::upgrade;
  if (finished_) return Stop::need_more;
  finished_ = true;
  if (paused_) {
    llhttp_resume(&parser_);
    paused_ = false;
  }
  finishing_ = true;
  completed_in_finish_ = false;
  const llhttp_errno_t err = llhttp_finish(&parser_);
  finishing_ = false;
  if (err == HPE_OK && callback_error_.empty()) {
    return completed_in_finish_ ? Stop::message_complete : Stop::need_more;
  }
  fail(0, callback_error_.empty() ? "truncated" : callback_error_);
  return Stop::error;
}

std::vector<std::uint8_t> Engine::take_body() {
  std::vector<std::uint8_t> out;
  out.swap(body_);
  body_count_ = 0;
  return out;
}

std::size_t Engine::take_body_count() {
  const std::size_t n = body_count_;
  body_count_ = 0;
  body_.clear();
  return n;
}

Step Engine::fail(std::size_t consumed, std::string_view code) {
  phase_ = Phase::failed;
  paused_ = false;
  error_ = std::string(code);
  return {consumed, Stop::error};
}

int Engine::refuse(std::string_view code) {
  if (callback_error_.empty()) callback_error_ = std::string(code);
  return -1;
}

std::string_view Engine::reason_for(llhttp_errno_t err) const {
  if (!callback_error_.empty()) return callback_error_;
  const bool request = parser_.type == HTTP_REQUEST;
  switch (err) {
    case HPE_INVALID_VERSION:
    case HPE_PAUSED_H2_UPGRADE:
      return "bad_version";
    case HPE_INVALID_CHUNK_SIZE:
      return "bad_chunk_size";
    case HPE_INVALID_CONTENT_LENGTH:
      return "bad_content_length";
    case HPE_UNEXPECTED_CONTENT_LENGTH: {
      const std::string_view why = parser_.reason != nullptr ? parser_.reason : "";
      return why.find("Duplicate") != std::string_view::npos ? "duplicate_content_length"
                                                             : "smuggling_cl_te";
    }
    case HPE_INVALID_TRANSFER_ENCODING:
      return "bad_transfer_encoding";
    case HPE_STRICT:
    case HPE_CR_EXPECTED:
    case HPE_LF_EXPECTED:
      // Inside a chunked body these are chunk framing errors (e.g. data not followed by
      // CRLF); anywhere else, a malformed message.
      if (phase_ == Phase::body && (parser_.flags & F_CHUNKED) != 0) return "bad_chunk_size";
      return request ? "bad_request" : "bad_response";
    default:
      return request ? "bad_request" : "bad_response";
  }
}

int Engine::count_trailer_bytes(std::size_t length) {
  trailer_bytes_ += length;
  if (trailer_bytes_ > limits_.max_head_bytes) return refuse("header_too_large");
  return 0;
}

int Engine::on_message_begin(llhttp_t* p) {
  Engine& e = self(p);
  e.url_.clear();
  e.status_text_.clear();
  e.headers_.clear();
  e.name_.clear();
  e.value_.clear();
  e.host_headers_ = 0;
  e.fields_ = 0;
  e.trailer_bytes_ = 0;
  e.seen_content_length_ = false;
  e.seen_transfer_encoding_ = false;
  return 0;
}

int Engine::on_url(llhttp_t* p, const char* at, std::size_t length) {
  self(p).url_.append(at, length);
  return 0;
}

int Engine::on_status(llhttp_t* p, const char* at, std::size_t length) {
  self(p).status_text_.append(at, length);
  return 0;
}

int Engine::on_header_field(llhttp_t* p, const char* at, std::size_t length) {
  Engine& e = self(p);
  if (e.in_trailers()) return e.count_trailer_bytes(length);
  e.name_.append(at, length);
  return 0;
}

int Engine::on_header_field_complete(llhttp_t* p) {
  Engine& e = self(p);
  if (++e.fields_ > e.limits_.max_headers) return e.refuse("too_many_headers");
  if (e.in_trailers()) return 0;
  const bool request = p->type == HTTP_REQUEST;
  if (e.name_.empty()) return e.refuse(request ? "bad_request" : "bad_response");
  if (iequals(e.name_, "content-length")) {
    if (e.seen_content_length_) return e.refuse("duplicate_content_length");
    if (e.seen_transfer_encoding_) return e.refuse("smuggling_cl_te");
    e.seen_content_length_ = true;
  } else if (iequals(e.name_, "transfer-encoding")) {
    if (e.seen_content_length_) return e.refuse("smuggling_cl_te");
    if (e.seen_transfer_encoding_) return e.refuse("bad_transfer_encoding");
    e.seen_transfer_encoding_ = true;
  } else if (request && iequals(e.name_, "host")) {
    if (++e.host_headers_ > 1) return e.refuse("duplicate_host");
  }
  return 0;
}

int Engine::on_header_value(llhttp_t* p, const char* at, std::size_t length) {
  Engine& e = self(p);
  if (e.in_trailers()) return e.count_trailer_bytes(length);
  e.value_.append(at, length);
  return 0;
}

int Engine::on_header_value_complete(llhttp_t* p) {
  Engine& e = self(p);
  if (e.in_trailers()) return 0;
  Header header{std::move(e.name_), std::string(trim_ows(e.value_))};
  e.name_.clear();
  e.value_.clear();
  if (iequals(header.name, "content-length") && !all_digits(header.value))
    return e.refuse("bad_content_length");
  // A request's body must be framed by exactly "chunked" (RFC 9112 6.1): anything else
  // leaves the length to guesswork. Responses may end at EOF instead (llhttp decides).
  if (p->type == HTTP_REQUEST && iequals(header.name, "transfer-encoding") &&
      !iequals(header.value, "chunked"))
    return e.refuse("bad_transfer_encoding");
  e.headers_.push_back(std::move(header));
  return 0;
}

int Engine::on_headers_complete(llhttp_t* p) {
  Engine& e = self(p);
  e.phase_ = Phase::body;
  if (p->http_major != 1 || p->http_minor > 1) return e.refuse("bad_version");
  const std::string_view verdict = e.judge_head();
  if (!verdict.empty()) return e.refuse(verdict);
  e.pending_stop_ = Stop::head;
  return HPE_PAUSED;
}

int Engine::on_body(llhttp_t* p, const char* at, std::size_t length) {
  Engine& e = self(p);
  e.body_count_ += length;
  if (e.keep_body_) e.body_.insert(e.body_.end(), at, at + length);
  return 0;
}

int Engine::on_message_complete(llhttp_t* p) {
  Engine& e = self(p);
  e.phase_ = Phase::head;
  e.head_bytes_ = 0;
  e.folds_.reset();
  if (e.finishing_) {
    e.completed_in_finish_ = true;
    return 0;
  }
  // After an upgrade llhttp pauses by itself (HPE_PAUSED_UPGRADE).
  if (p->upgrade != 0) return 0;
  e.pending_stop_ = Stop::message_complete;
  return HPE_PAUSED;
}

}  // namespace airlock::http::detail
