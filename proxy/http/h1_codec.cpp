// HTTP/1.1 codecs; see h1_codec.hpp.
#include "proxy/http/h1_codec.hpp"

#include <algorithm>
#include <string_view>

#include "proxy/http/serialize.hpp"

namespace airlock::http {

namespace {

constexpr std::string_view kH2Preface = "PRI * HTTP/2.0\r\n";

void append_text(Bytes& out, std::string_view text) { out.insert(out.end(), text.begin(), text.end()); }

// Hop-by-hop fields (RFC 9110 7.6.1): they describe one connection, never forwarded.
void strip_hop_by_hop(std::vector<Header>& headers, bool keep_upgrade) {
  if (const Header* c = find_header(headers, "connection")) {
    // Fields the Connection header names are hop-by-hop too.
    std::string_view list = c->value;
    std::vector<std::string> named;
    while (!list.empty()) {
      const auto comma = list.find(',');
      std::string_view item = list.substr(0, comma);
      while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
      while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
      if (!item.empty() && !iequals(item, "close") && !iequals(item, "keep-alive") &&
          !(keep_upgrade && iequals(item, "upgrade")))
        named.emplace_back(item);
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
    for (const auto& name : named) remove_headers(headers, name);
  }
  for (std::string_view name : {"connection", "keep-alive", "proxy-connection", "transfer-encoding",
                                "te", "trailer"})
    remove_headers(headers, name);
  if (!keep_upgrade) remove_headers(headers, "upgrade");
}

}  // namespace

// ---- guest side ---------------------------------------------------------------------------

H1GuestCodec::H1GuestCodec(const ParserLimits& limits) : parser_(limits) {}

H1GuestCodec::Stream* H1GuestCodec::find(StreamId id) {
  for (auto& s : streams_)
    if (s.id == id) return &s;
  return nullptr;
}

H1GuestCodec::Stream& H1GuestCodec::new_stream() {
  streams_.emplace_back();
  streams_.back().id = next_++;
  return streams_.back();
}

Bytes& H1GuestCodec::sink(Stream& s) { return &s == &streams_.front() ? out_ : s.held; }

void H1GuestCodec::append(Stream& s, std::string_view text) { append_text(sink(s), text); }

void H1GuestCodec::flush_ready() {
  while (!streams_.empty() && streams_.front().done) {
    streams_.pop_front();
    if (!streams_.empty()) {
      Bytes& held = streams_.front().held;
      out_.insert(out_.end(), held.begin(), held.end());
      held.clear();
      held.shrink_to_fit();
    }
  }
}

void H1GuestCodec::feed(std::span<const std::uint8_t> bytes, std::vector<GuestEvent>& out) {
  if (stopped_) {
    if (parser_.upgraded()) tunnel_.insert(tunnel_.end(), bytes.begin(), bytes.end());
    return;  // after an error or a closing request nothing more is read
  }
  pending_.insert(pending_.end(), bytes.begin(), bytes.end());
  if (!checked_preface_) {
    const std::size_t n = std::min(pending_.size(), kH2Preface.size());
    const std::string_view start(reinterpret_cast<const char*>(pending_.data()), n);
    if (kH2Preface.starts_with(start)) {
      if (n < kH2Preface.size()) return;  // could still be the preface
      stopped_ = true;
      close_after_ = true;
      pending_.clear();
      new_stream();
      out.push_back(ConnectionFailed{"http2_preface", "an HTTP/2 preface where HTTP/1.1 was spoken",
                                     streams_.back().id});
      return;
    }
    checked_preface_ = true;
  }
  std::size_t pos = 0;
  std::vector<RequestEvent> events;
  while (!stopped_) {
    events.clear();
    const std::size_t n = parser_.feed(std::span(pending_).subspan(pos), events);
    pos += n;
    for (auto& event : events) {
      if (auto* head = std::get_if<RequestHeadEvent>(&event)) {
        Stream& s = new_stream();
        s.version_minor = head->head.version_minor;
        s.request_close = !head->head.keep_alive;
        in_request_ = true;
        // An upgrade request's end is reported by RequestUpgrade; its body, if any, first.
        const bool has_body = head->head.chunked || head->head.content_length.value_or(0) > 0;
        s.request_ended = !has_body;  // RequestStart says so; no RequestEnd follows
        out.push_back(RequestStart{s.id, std::move(head->head), !has_body});
      } else if (auto* body = std::get_if<BodyEvent>(&event)) {
        if (!streams_.empty()) out.push_back(RequestBody{streams_.back().id, std::move(body->data)});
      } else if (std::holds_alternative<MessageCompleteEvent>(event)) {
        if (!streams_.empty() && in_request_) {
          if (!streams_.back().request_ended) out.push_back(RequestEnd{streams_.back().id});
          streams_.back().request_ended = true;
          if (streams_.back().request_close) {
            stopped_ = true;
            close_after_ = true;
          }
        }
        in_request_ = false;
      } else if (std::holds_alternative<UpgradeEvent>(event)) {
        in_request_ = false;
        stopped_ = true;
        if (!streams_.empty()) out.push_back(RequestUpgrade{streams_.back().id});
        tunnel_.assign(pending_.begin() + static_cast<std::ptrdiff_t>(pos), pending_.end());
        pos = pending_.size();
      } else if (auto* error = std::get_if<ParseErrorEvent>(&event)) {
        stopped_ = true;
        close_after_ = true;
        StreamId answer_on = 0;
        if (in_request_ && !streams_.empty()) {
          answer_on = streams_.back().id;  // cut mid-body: that request's answer slot
        } else {
          answer_on = new_stream().id;
        }
        in_request_ = false;
        const bool preface = error->reason == "bad_version" &&
                             std::string_view(reinterpret_cast<const char*>(pending_.data()) + pos,
                                              std::min(pending_.size() - pos, kH2Preface.size()))
                                 .starts_with("PRI ");
        out.push_back(ConnectionFailed{preface ? "http2_preface" : error->reason, "", answer_on});
        pos = pending_.size();
      }
    }
    if (n == 0 && events.empty()) break;
  }
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(std::min(pos, pending_.size())));
  if (stopped_ && !parser_.upgraded()) pending_.clear();
}

void H1GuestCodec::eof(std::vector<GuestEvent>& out) {
  if (!stopped_ && (in_request_ || !pending_.empty())) {
    out.push_back(ConnectionFailed{"truncated", "the guest closed in the middle of a request",
                                   in_request_ && !streams_.empty() ? streams_.back().id : 0});
  }
  in_request_ = false;
  stopped_ = true;
  close_after_ = true;
  pending_.clear();
}

void H1GuestCodec::respond_informational(StreamId stream, const ResponseHead& head) {
  Stream* s = find(stream);
  if (s == nullptr || s->head_done || s->version_minor == 0) return;  // 1.0 knows no 1xx
  ResponseHead h = head;
  h.version_minor = 1;
  strip_hop_by_hop(h.headers, false);
  remove_headers(h.headers, "content-length");
  append(*s, serialize_response_head(h));
}

void H1GuestCodec::respond(StreamId stream, ResponseHead head, BodyFraming framing, bool end_stream) {
  Stream* s = find(stream);
  if (s == nullptr || s->head_done) return;
  s->head_done = true;
  head.version_minor = 1;
  const bool switching = head.status == 101;
  strip_hop_by_hop(head.headers, switching);
  if (framing.has_body) {
    remove_headers(head.headers, "content-length");
    if (framing.length) {
      head.headers.push_back({"Content-Length", std::to_string(*framing.length)});
    } else if (s->version_minor == 1) {
      head.headers.push_back({"Transfer-Encoding", "chunked"});
      s->chunked = true;
    } else {
      s->close_delimited = true;  // an HTTP/1.0 client reads to the end of the connection
    }
  }
  if (switching) {
    head.headers.push_back({"Connection", "upgrade"});
  } else if (s->request_close || s->close_delimited || close_after_) {
    head.headers.push_back({"Connection", "close"});
    close_after_ = true;
  }
  append(*s, serialize_response_head(head));
  if (end_stream) respond_end(stream, {});
}

void H1GuestCodec::respond_data(StreamId stream, std::span<const std::uint8_t> data) {
  Stream* s = find(stream);
  if (s == nullptr || !s->head_done || s->done || data.empty()) return;
  if (s->chunked) {
    append(*s, chunk_frame(data));
  } else {
    Bytes& out = sink(*s);
    out.insert(out.end(), data.begin(), data.end());
  }
}

void H1GuestCodec::respond_end(StreamId stream, const Trailers& /*trailers*/) {
  Stream* s = find(stream);
  if (s == nullptr || s->done) return;
  // Trailers are dropped: HTTP/1.1 clients rarely ask for them, and none of ours did.
  if (s->chunked) append(*s, last_chunk());
  s->done = true;
  if (s->close_delimited) close_after_ = true;
  flush_ready();
}

void H1GuestCodec::respond_wire(StreamId stream, std::span<const std::uint8_t> bytes) {
  Stream* s = find(stream);
  if (s == nullptr || s->done) return;
  s->wire = true;
  s->head_done = true;
  Bytes& out = sink(*s);
  out.insert(out.end(), bytes.begin(), bytes.end());
}

void H1GuestCodec::cancel(StreamId stream) {
  if (find(stream) != nullptr) reset_ = true;
}

void H1GuestCodec::finish(StreamId last) {
  close_after_ = true;
  stopped_ = true;
  in_request_ = false;
  pending_.clear();
  std::erase_if(streams_, [last](const Stream& s) { return s.id > last; });
  flush_ready();
}

bool H1GuestCodec::wants_close() const { return close_after_ && streams_.empty(); }

Bytes H1GuestCodec::take_output() { return std::exchange(out_, {}); }

Bytes H1GuestCodec::take_tunnel_bytes() { return std::exchange(tunnel_, {}); }

// ---- upstream side --------------------------------------------------------------------------

H1UpstreamCodec::H1UpstreamCodec(bool wire, const ParserLimits& limits)
    : wire_(wire), parser_(limits, ResponseParser::Options{!wire, true}) {}

bool H1UpstreamCodec::can_start() const { return !failed_ && !exhausted_ && !writing_; }

StreamId H1UpstreamCodec::request(const RequestHead& head, BodyFraming framing, bool end_stream) {
  const StreamId id = next_++;
  RequestHead h = head;
  if (h.version_major != 1) h.version_minor = 1;  // an HTTP/2 request goes on as HTTP/1.1
  h.version_major = 1;
  strip_hop_by_hop(h.headers, h.upgrade);
  remove_headers(h.headers, "content-length");
  writing_chunked_ = false;
  if (framing.length) {
    h.headers.push_back({"Content-Length", std::to_string(*framing.length)});
  } else if (!end_stream) {
    h.headers.push_back({"Transfer-Encoding", "chunked"});
    writing_chunked_ = true;
  }
  if (h.upgrade) {
    h.headers.push_back({"Connection", "upgrade"});
    exhausted_ = true;  // nothing more goes on this connection in HTTP
  } else if (!h.keep_alive) {
    h.headers.push_back({"Connection", "close"});
    exhausted_ = true;
  }
  append_text(out_, serialize_request_head(h));
  parser_.expect_response_to(h.method);
  waiting_.push_back(id);
  if (!end_stream) writing_ = id;
  return id;
}

void H1UpstreamCodec::request_data(StreamId stream, std::span<const std::uint8_t> data) {
  if (writing_ != stream || data.empty()) return;
  if (writing_chunked_)
    append_text(out_, chunk_frame(data));
  else
    out_.insert(out_.end(), data.begin(), data.end());
}

void H1UpstreamCodec::request_end(StreamId stream) {
  if (writing_ != stream) return;
  if (writing_chunked_) append_text(out_, last_chunk());
  writing_.reset();
}

void H1UpstreamCodec::cancel(StreamId stream) {
  // One exchange can't be withdrawn from an HTTP/1.1 connection: the connection is spent.
  if (std::find(waiting_.begin(), waiting_.end(), stream) != waiting_.end() || writing_ == stream) {
    // Also a request answered before its body was all written: the origin still
    // expects the rest, so nothing else may follow on this connection.
    failed_ = true;
    exhausted_ = true;
    writing_.reset();
  }
}

void H1UpstreamCodec::translate(std::vector<ResponseEvent>& events, std::span<const std::uint8_t> wire,
                                std::vector<UpstreamEvent>& out) {
  const StreamId first = waiting_.empty() ? 0 : waiting_.front();
  bool wire_sent = !wire_ || wire.empty();
  auto send_wire = [&] {
    if (!wire_sent) out.push_back(ResponseWire{first, Bytes(wire.begin(), wire.end())});
    wire_sent = true;
  };
  for (auto& event : events) {
    const StreamId stream = waiting_.empty() ? 0 : waiting_.front();
    if (auto* head = std::get_if<ResponseHeadEvent>(&event)) {
      if (!head->informational && !head->head.keep_alive) exhausted_ = true;
      out.push_back(ResponseStart{stream, std::move(head->head), head->informational, false});
    } else if (auto* body = std::get_if<ResponseBodyEvent>(&event)) {
      out.push_back(ResponseBody{stream, std::move(body->data), body->bytes});
    } else if (std::holds_alternative<ResponseCompleteEvent>(event)) {
      send_wire();
      out.push_back(ResponseEnd{stream, {}});
      if (!waiting_.empty()) waiting_.pop_front();
    } else if (std::holds_alternative<ResponseUpgradeEvent>(event)) {
      send_wire();
      out.push_back(ResponseUpgrade{stream});
      if (!waiting_.empty()) waiting_.pop_front();
      exhausted_ = true;
    } else if (auto* error = std::get_if<ResponseErrorEvent>(&event)) {
      failed_ = true;
      exhausted_ = true;
      out.push_back(ConnectionFailed{error->reason == "truncated" ? "upstream_truncated" : "bad_response",
                                     "bad response: " + error->reason, stream});
    }
  }
  send_wire();
}

void H1UpstreamCodec::feed(std::span<const std::uint8_t> bytes, std::vector<UpstreamEvent>& out) {
  if (failed_) return;
  if (parser_.upgraded()) {
    tunnel_.insert(tunnel_.end(), bytes.begin(), bytes.end());
    return;
  }
  std::size_t pos = 0;
  std::vector<ResponseEvent> events;
  while (pos < bytes.size() && !failed_) {
    events.clear();
    const std::size_t n = parser_.feed(bytes.subspan(pos), events);
    translate(events, bytes.subspan(pos, n), out);
    pos += n;
    if (parser_.upgraded()) {
      tunnel_.assign(bytes.begin() + static_cast<std::ptrdiff_t>(pos), bytes.end());
      return;
    }
    if (n == 0 && events.empty()) break;
  }
}

void H1UpstreamCodec::eof(std::vector<UpstreamEvent>& out) {
  if (failed_ || parser_.upgraded()) return;
  std::vector<ResponseEvent> events;
  parser_.finish(events);
  translate(events, {}, out);
  exhausted_ = true;
  if (!failed_ && !waiting_.empty()) {
    failed_ = true;
    out.push_back(ConnectionFailed{"upstream_closed", "the origin closed the connection", waiting_.front()});
  }
}

Bytes H1UpstreamCodec::take_output() { return std::exchange(out_, {}); }

Bytes H1UpstreamCodec::take_tunnel_bytes() { return std::exchange(tunnel_, {}); }

}  // namespace airlock::http
