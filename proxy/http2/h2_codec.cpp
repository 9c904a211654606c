// HTTP/2 codecs over nghttp2; see h2_codec.hpp.
#include "proxy/http2/h2_codec.hpp"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <set>
#include <utility>
#include <variant>

namespace airlock::http2 {

using http::Header;

std::string_view reason_phrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
  }
}

namespace detail {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool connection_specific(std::string_view name, std::string_view value) {
  for (std::string_view n : {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
                             "host", "http2-settings"})
    if (http::iequals(name, n)) return true;
  return http::iequals(name, "te") && !http::iequals(value, "trailers");
}

}  // namespace

// What the session saw, before the role maps it onto its codec's events.
struct HeadersDone {
  StreamId stream;
  std::vector<Header> fields;  // pseudo-headers included, in order
  bool end_stream;
  bool trailers;
  bool informational;
};
struct Data {
  StreamId stream;
  Bytes bytes;
};
struct End {
  StreamId stream;
};
struct Closed {
  StreamId stream;
  std::uint32_t error_code;
};
struct Failed {
  std::string reason;
  std::string detail;
};
using Event = std::variant<HeadersDone, Data, End, Closed, Failed>;

class Session {
 public:
  explicit Session(bool server) : server_(server) {
    nghttp2_session_callbacks* cbs = nullptr;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &Session::on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, &Session::on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &Session::on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &Session::on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &Session::on_stream_close);
    nghttp2_session_callbacks_set_error_callback2(cbs, &Session::on_error);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, &Session::on_invalid_frame);
    nghttp2_option* option = nullptr;
    nghttp2_option_new(&option);
    nghttp2_option_set_no_auto_window_update(option, 1);
    nghttp2_option_set_max_outbound_ack(option, 1000);
    nghttp2_option_set_stream_reset_rate_limit(option, 1000, 33);
    if (server)
      nghttp2_session_server_new2(&s_, cbs, this, option);
    else
      nghttp2_session_client_new2(&s_, cbs, this, option);
    nghttp2_option_del(option);
    nghttp2_session_callbacks_del(cbs);
    std::vector<nghttp2_settings_entry> settings = {
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kInitialWindow},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<std::uint32_t>(kMaxHeaderBytes)},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    if (server) settings.push_back({NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, kMaxConcurrentStreams});
    nghttp2_submit_settings(s_, NGHTTP2_FLAG_NONE, settings.data(), settings.size());
    nghttp2_session_set_local_window_size(s_, NGHTTP2_FLAG_NONE, 0, static_cast<std::int32_t>(kConnectionWindow));
  }
  ~Session() { nghttp2_session_del(s_); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  std::vector<Event> feed(std::span<const std::uint8_t> bytes) {
    std::vector<Event> out;
    if (pending_failure_) out.push_back(*std::exchange(pending_failure_, std::nullopt));
    if (failed_) return out;
    events_ = &out;
    const ssize_t rv = nghttp2_session_mem_recv(s_, bytes.data(), bytes.size());
    if (rv < 0) {
      fail("h2_protocol_error", nghttp2_strerror(static_cast<int>(rv)));
    } else {
      // A connection error nghttp2 answered itself shows once its GOAWAY is written: the
      // session then wants nothing more. Write now, so the error is reported with the
      // bytes that caused it.
      drain();
      if (connection_error_ || (nghttp2_session_want_read(s_) == 0 && !goaway_))
        fail("h2_protocol_error", last_error_.empty() ? "broken HTTP/2 framing" : last_error_);
    }
    events_ = nullptr;
    return out;
  }

  void fail(std::string reason, std::string detail) {
    if (failed_) return;
    failed_ = true;
    if (!last_error_.empty() && detail != last_error_) detail += ": " + last_error_;
    nghttp2_session_terminate_session(s_, NGHTTP2_PROTOCOL_ERROR);
    if (events_ != nullptr) events_->push_back(Failed{std::move(reason), std::move(detail)});
    else pending_failure_ = Failed{std::move(reason), std::move(detail)};
  }

  Bytes take_output() {
    drain();
    return std::exchange(queued_, {});
  }
  bool has_output() const { return !queued_.empty() || nghttp2_session_want_write(s_) != 0; }
  bool done() const { return nghttp2_session_want_read(s_) == 0 && nghttp2_session_want_write(s_) == 0; }
  bool failed() const { return failed_; }
  bool goaway() const { return goaway_; }
  nghttp2_session* raw() { return s_; }
  std::size_t open_in() const { return in_.size(); }
  std::size_t active() const { return active_.size(); }
  void started(StreamId stream) { active_.insert(stream); }
  // Moves the body slot made under a provisional key to the stream's real id (a map
  // node keeps its address, which nghttp2 holds as the body's source).
  void rekey_out(StreamId from, StreamId to) {
    auto node = out_.extract(from);
    if (node.empty()) return;
    node.key() = to;
    out_.insert(std::move(node));
  }

  // Outgoing headers: pseudo-headers first, the rest lower-cased without hop-by-hop.
  static std::vector<nghttp2_nv> nva(const std::vector<std::pair<std::string, std::string>>& fields) {
    std::vector<nghttp2_nv> out;
    out.reserve(fields.size());
    for (const auto& [name, value] : fields) {
      nghttp2_nv nv;
      nv.name = reinterpret_cast<std::uint8_t*>(const_cast<char*>(name.data()));
      nv.namelen = name.size();
      nv.value = reinterpret_cast<std::uint8_t*>(const_cast<char*>(value.data()));
      nv.valuelen = value.size();
      nv.flags = NGHTTP2_NV_FLAG_NONE;
      out.push_back(nv);
    }
    return out;
  }
  static void add_regular(std::vector<std::pair<std::string, std::string>>& fields,
                          const std::vector<Header>& headers) {
    for (const Header& h : headers) {
      if (h.name.empty() || h.name.front() == ':' || connection_specific(h.name, h.value)) continue;
      fields.emplace_back(lower(h.name), h.value);
    }
  }

  // The outgoing body of one stream, read by nghttp2 as flow control allows.
  struct Out {
    Bytes queue;
    std::size_t offset = 0;
    bool end = false;
    bool deferred = false;
    http::Trailers trailers;
  };

  nghttp2_data_provider provider(StreamId stream) {
    Out& o = out_[stream];
    nghttp2_data_provider prd;
    prd.source.ptr = &o;
    prd.read_callback = &Session::read_body;
    return prd;
  }
  void queue_data(StreamId stream, std::span<const std::uint8_t> data) {
    auto it = out_.find(stream);
    if (it == out_.end() || it->second.end) return;
    it->second.queue.insert(it->second.queue.end(), data.begin(), data.end());
    resume(stream, it->second);
  }
  void queue_end(StreamId stream, const http::Trailers& trailers) {
    auto it = out_.find(stream);
    if (it == out_.end() || it->second.end) return;
    it->second.end = true;
    it->second.trailers = trailers;
    resume(stream, it->second);
  }
  void forget_out(StreamId stream) { out_.erase(stream); }
  bool has_out(StreamId stream) const { return out_.count(stream) != 0; }

  void consume(StreamId stream, std::size_t bytes) {
    if (bytes == 0) return;
    if (nghttp2_session_consume(s_, static_cast<std::int32_t>(stream), bytes) != 0)
      nghttp2_session_consume_connection(s_, bytes);
  }

  std::set<StreamId> ended_in;  // streams whose End was reported with their headers

 private:
  void drain() {
    for (;;) {
      const std::uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(s_, &data);
      if (n <= 0) {
        if (n < 0) fail("h2_protocol_error", nghttp2_strerror(static_cast<int>(n)));
        break;
      }
      queued_.insert(queued_.end(), data, data + n);
    }
  }

  struct In {
    std::vector<Header> fields;
    std::size_t bytes = 0;
    bool head_done = false;
    bool ended = false;
  };

  void resume(StreamId stream, Out& o) {
    if (o.deferred) {
      o.deferred = false;
      nghttp2_session_resume_data(s_, static_cast<std::int32_t>(stream));
    }
  }

  static Session& self(void* user_data) { return *static_cast<Session*>(user_data); }
  void emit(Event e) {
    if (events_ != nullptr) events_->push_back(std::move(e));
  }

  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    Session& s = self(ud);
    In& in = s.in_[static_cast<StreamId>(frame->hd.stream_id)];
    in.fields.clear();
    in.bytes = 0;
    return 0;
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name,
                       std::size_t namelen, const std::uint8_t* value, std::size_t valuelen,
                       std::uint8_t, void* ud) {
    Session& s = self(ud);
    auto it = s.in_.find(static_cast<StreamId>(frame->hd.stream_id));
    if (it == s.in_.end()) return 0;
    In& in = it->second;
    in.bytes += namelen + valuelen + 32;
    if (in.bytes > kMaxHeaderBytes) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // RST_STREAM
    in.fields.push_back({std::string(reinterpret_cast<const char*>(name), namelen),
                         std::string(reinterpret_cast<const char*>(value), valuelen)});
    return 0;
  }

  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
    Session& s = self(ud);
    const auto stream = static_cast<StreamId>(frame->hd.stream_id);
    const bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    switch (frame->hd.type) {
      case NGHTTP2_HEADERS: {
        auto it = s.in_.find(stream);
        if (it == s.in_.end()) return 0;
        In& in = it->second;
        bool informational = false;
        if (!s.server_ && !in.head_done) {
          const Header* status = http::find_header(in.fields, ":status");
          informational = status != nullptr && !status->value.empty() && status->value.front() == '1';
        }
        const bool trailers = in.head_done;
        if (!informational) in.head_done = true;
        s.emit(HeadersDone{stream, std::move(in.fields), end_stream, trailers, informational});
        in.fields.clear();
        in.bytes = 0;
        break;
      }
      case NGHTTP2_GOAWAY:
        s.goaway_ = true;
        if (frame->goaway.error_code != NGHTTP2_NO_ERROR)
          s.emit(Failed{"h2_goaway", std::string("the peer ended the connection: ") +
                                         nghttp2_http2_strerror(frame->goaway.error_code)});
        return 0;
      default:
        break;
    }
    if (end_stream && (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA)) {
      auto it = s.in_.find(stream);
      if (it != s.in_.end() && !it->second.ended) {
        it->second.ended = true;
        s.emit(End{stream});
      }
    }
    return 0;
  }

  static int on_data_chunk(nghttp2_session* session, std::uint8_t, std::int32_t stream_id,
                           const std::uint8_t* data, std::size_t len, void* ud) {
    Session& s = self(ud);
    auto it = s.in_.find(static_cast<StreamId>(stream_id));
    if (it == s.in_.end() || !it->second.head_done) {
      // Nobody will pass these on: credit them back at once.
      nghttp2_session_consume(session, stream_id, len);
      return 0;
    }
    s.emit(Data{static_cast<StreamId>(stream_id), Bytes(data, data + len)});
    return 0;
  }

  static int on_stream_close(nghttp2_session*, std::int32_t stream_id, std::uint32_t error_code, void* ud) {
    Session& s = self(ud);
    const auto stream = static_cast<StreamId>(stream_id);
    s.active_.erase(stream);
    auto it = s.in_.find(stream);
    const bool ended = it != s.in_.end() && it->second.ended;
    if (it != s.in_.end()) s.in_.erase(it);
    const bool out_open = s.out_.count(stream) != 0 && !s.out_[stream].end;
    s.out_.erase(stream);
    if (!ended || out_open || error_code != NGHTTP2_NO_ERROR) s.emit(Closed{stream, error_code});
    return 0;
  }

  static int on_invalid_frame(nghttp2_session*, const nghttp2_frame* frame, int lib_error_code, void* ud) {
    Session& s = self(ud);
    s.last_error_ = std::string("invalid ") + frame_name(frame->hd.type) + " frame: " + nghttp2_strerror(lib_error_code);
    return 0;
  }

  static const char* frame_name(std::uint8_t type) {
    switch (type) {
      case NGHTTP2_DATA: return "DATA";
      case NGHTTP2_HEADERS: return "HEADERS";
      case NGHTTP2_PRIORITY: return "PRIORITY";
      case NGHTTP2_RST_STREAM: return "RST_STREAM";
      case NGHTTP2_SETTINGS: return "SETTINGS";
      case NGHTTP2_PUSH_PROMISE: return "PUSH_PROMISE";
      case NGHTTP2_PING: return "PING";
      case NGHTTP2_GOAWAY: return "GOAWAY";
      case NGHTTP2_WINDOW_UPDATE: return "WINDOW_UPDATE";
      case NGHTTP2_CONTINUATION: return "CONTINUATION";
      default: return "unknown";
    }
  }

  static int on_error(nghttp2_session*, int, const char* msg, std::size_t len, void* ud) {
    // nghttp2 reports connection errors here (it answers them with GOAWAY itself).
    Session& s = self(ud);
    s.connection_error_ = true;
    s.last_error_.assign(msg, std::min<std::size_t>(len, 200));
    return 0;
  }

  static ssize_t read_body(nghttp2_session* session, std::int32_t stream_id, std::uint8_t* buf,
                           std::size_t length, std::uint32_t* flags, nghttp2_data_source* source,
                           void*) {
    Out& o = *static_cast<Out*>(source->ptr);
    const std::size_t avail = o.queue.size() - o.offset;
    if (avail == 0 && !o.end) {
      o.deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
    const std::size_t n = std::min(avail, length);
    if (n > 0) std::memcpy(buf, o.queue.data() + o.offset, n);
    o.offset += n;
    if (o.offset == o.queue.size()) {
      o.queue.clear();
      o.offset = 0;
      if (o.end) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (!o.trailers.empty()) {
          *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
          std::vector<std::pair<std::string, std::string>> fields;
          add_regular(fields, o.trailers);
          auto nv = nva(fields);
          nghttp2_submit_trailer(session, stream_id, nv.data(), nv.size());
        }
      }
    }
    return static_cast<ssize_t>(n);
  }

  bool server_;
  nghttp2_session* s_ = nullptr;
  std::map<StreamId, In> in_;
  std::map<StreamId, Out> out_;
  std::set<StreamId> active_;  // client: requests started and not closed
  std::vector<Event>* events_ = nullptr;
  std::optional<Failed> pending_failure_;
  std::string last_error_;
  bool failed_ = false;
  bool goaway_ = false;
  bool connection_error_ = false;
  Bytes queued_;  // written by nghttp2, not yet taken
};

}  // namespace detail

namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

// :method/:path/:authority onto a RequestHead; the Host header carries the authority.
http::RequestHead request_head(std::vector<Header> fields) {
  http::RequestHead head;
  head.version_major = 2;
  head.version_minor = 0;
  std::string authority;
  for (auto& f : fields) {
    if (f.name == ":method") head.method = std::move(f.value);
    else if (f.name == ":path") head.target = std::move(f.value);
    else if (f.name == ":authority") authority = std::move(f.value);
    else if (!f.name.empty() && f.name.front() == ':') continue;  // :scheme, :protocol
    else head.headers.push_back(std::move(f));
  }
  if (!authority.empty()) {
    http::remove_headers(head.headers, "host");
    head.headers.insert(head.headers.begin(), Header{"host", authority});
  }
  if (const Header* cl = http::find_header(head.headers, "content-length")) {
    std::uint64_t n = 0;
    bool ok = !cl->value.empty() && cl->value.size() < 20;
    for (char c : cl->value) ok = ok && c >= '0' && c <= '9', n = n * 10 + static_cast<std::uint64_t>(c - '0');
    if (ok) head.content_length = n;
  }
  const Header* expect = http::find_header(head.headers, "expect");
  head.expect_continue = expect != nullptr && http::iequals(expect->value, "100-continue");
  return head;
}

http::ResponseHead response_head(std::vector<Header> fields) {
  http::ResponseHead head;
  head.version_major = 2;
  head.version_minor = 0;
  for (auto& f : fields) {
    if (f.name == ":status") {
      int status = 0;
      for (char c : f.value) status = status * 10 + (c - '0');
      head.status = status;
    } else if (!f.name.empty() && f.name.front() != ':') {
      head.headers.push_back(std::move(f));
    }
  }
  head.reason = std::string(reason_phrase(head.status));
  return head;
}

std::string closed_reason(std::uint32_t code) {
  return std::string("stream reset: ") + nghttp2_http2_strerror(code);
}

}  // namespace

// ---- guest side ---------------------------------------------------------------------------

H2GuestCodec::H2GuestCodec() : session_(std::make_unique<detail::Session>(true)) {}
H2GuestCodec::~H2GuestCodec() = default;

void H2GuestCodec::feed(std::span<const std::uint8_t> bytes, std::vector<http::GuestEvent>& out) {
  for (auto& event : session_->feed(bytes)) {
    if (auto* h = std::get_if<detail::HeadersDone>(&event)) {
      if (h->trailers) continue;  // request trailers are dropped; End follows
      out.push_back(http::RequestStart{h->stream, request_head(std::move(h->fields)), h->end_stream});
      if (h->end_stream) session_->ended_in.insert(h->stream);
    } else if (auto* d = std::get_if<detail::Data>(&event)) {
      out.push_back(http::RequestBody{d->stream, std::move(d->bytes)});
    } else if (auto* e = std::get_if<detail::End>(&event)) {
      if (session_->ended_in.erase(e->stream) == 0) out.push_back(http::RequestEnd{e->stream});
    } else if (auto* c = std::get_if<detail::Closed>(&event)) {
      session_->ended_in.erase(c->stream);
      out.push_back(http::StreamCancelled{c->stream, closed_reason(c->error_code)});
    } else if (auto* f = std::get_if<detail::Failed>(&event)) {
      out.push_back(http::ConnectionFailed{f->reason, f->detail, 0});
    }
  }
}

void H2GuestCodec::eof(std::vector<http::GuestEvent>& out) {
  if (session_->open_in() > 0)
    out.push_back(http::ConnectionFailed{"truncated", "the guest closed with streams open", 0});
}

void H2GuestCodec::respond_informational(StreamId stream, const http::ResponseHead& head) {
  Fields fields = {{":status", std::to_string(head.status)}};
  detail::Session::add_regular(fields, head.headers);
  auto nv = detail::Session::nva(fields);
  nghttp2_submit_headers(session_->raw(), NGHTTP2_FLAG_NONE, static_cast<std::int32_t>(stream), nullptr,
                         nv.data(), nv.size(), nullptr);
}

void H2GuestCodec::respond(StreamId stream, http::ResponseHead head, http::BodyFraming framing,
                           bool end_stream) {
  Fields fields = {{":status", std::to_string(head.status)}};
  http::remove_headers(head.headers, "content-length");
  if (framing.length && framing.has_body) fields.emplace_back("content-length", std::to_string(*framing.length));
  detail::Session::add_regular(fields, head.headers);
  auto nv = detail::Session::nva(fields);
  if (end_stream) {
    nghttp2_submit_response(session_->raw(), static_cast<std::int32_t>(stream), nv.data(), nv.size(), nullptr);
    return;
  }
  nghttp2_data_provider prd = session_->provider(stream);
  if (nghttp2_submit_response(session_->raw(), static_cast<std::int32_t>(stream), nv.data(), nv.size(), &prd) != 0)
    session_->forget_out(stream);
}

void H2GuestCodec::respond_data(StreamId stream, std::span<const std::uint8_t> data) {
  session_->queue_data(stream, data);
}

void H2GuestCodec::respond_end(StreamId stream, const http::Trailers& trailers) {
  session_->queue_end(stream, trailers);
}

void H2GuestCodec::cancel(StreamId stream) {
  nghttp2_submit_rst_stream(session_->raw(), NGHTTP2_FLAG_NONE, static_cast<std::int32_t>(stream),
                            NGHTTP2_INTERNAL_ERROR);
}

void H2GuestCodec::finish(StreamId last) {
  const std::int32_t processed = nghttp2_session_get_last_proc_stream_id(session_->raw());
  nghttp2_submit_goaway(session_->raw(), NGHTTP2_FLAG_NONE,
                        std::min(processed, static_cast<std::int32_t>(std::min<StreamId>(last, 0x7fffffff))),
                        NGHTTP2_NO_ERROR, nullptr, 0);
}

void H2GuestCodec::consumed(StreamId stream, std::size_t bytes) { session_->consume(stream, bytes); }

Bytes H2GuestCodec::take_output() { return session_->take_output(); }
bool H2GuestCodec::has_output() const { return session_->has_output(); }
bool H2GuestCodec::wants_close() const { return session_->done(); }

// ---- upstream side ------------------------------------------------------------------------

H2UpstreamCodec::H2UpstreamCodec() : session_(std::make_unique<detail::Session>(false)) {}
H2UpstreamCodec::~H2UpstreamCodec() = default;

bool H2UpstreamCodec::can_start() const { return !session_->failed() && !session_->goaway(); }

StreamId H2UpstreamCodec::request(const http::RequestHead& head, http::BodyFraming framing, bool end_stream) {
  const Header* host = http::find_header(head.headers, "host");
  Fields fields = {{":method", head.method},
                   {":scheme", "https"},
                   {":authority", host != nullptr ? host->value : std::string()},
                   {":path", head.target.empty() ? std::string("/") : head.target}};
  http::RequestHead h = head;
  http::remove_headers(h.headers, "content-length");
  if (framing.length) fields.emplace_back("content-length", std::to_string(*framing.length));
  detail::Session::add_regular(fields, h.headers);
  auto nv = detail::Session::nva(fields);
  std::int32_t id = 0;
  if (end_stream) {
    id = nghttp2_submit_request(session_->raw(), nullptr, nv.data(), nv.size(), nullptr, nullptr);
  } else {
    // The body's slot is made before the stream id is known (key 0), then re-keyed.
    nghttp2_data_provider prd = session_->provider(0);
    id = nghttp2_submit_request(session_->raw(), nullptr, nv.data(), nv.size(), &prd, nullptr);
    if (id > 0)
      session_->rekey_out(0, static_cast<StreamId>(id));
    else
      session_->forget_out(0);
  }
  if (id <= 0) {
    session_->fail("h2_protocol_error", "cannot start a request on the upstream connection");
    return 0;
  }
  session_->started(static_cast<StreamId>(id));
  return static_cast<StreamId>(id);
}

void H2UpstreamCodec::request_data(StreamId stream, std::span<const std::uint8_t> data) {
  session_->queue_data(stream, data);
}

void H2UpstreamCodec::request_end(StreamId stream) { session_->queue_end(stream, {}); }

void H2UpstreamCodec::cancel(StreamId stream) {
  nghttp2_submit_rst_stream(session_->raw(), NGHTTP2_FLAG_NONE, static_cast<std::int32_t>(stream), NGHTTP2_CANCEL);
}

void H2UpstreamCodec::consumed(StreamId stream, std::size_t bytes) { session_->consume(stream, bytes); }

void H2UpstreamCodec::feed(std::span<const std::uint8_t> bytes, std::vector<http::UpstreamEvent>& out) {
  for (auto& event : session_->feed(bytes)) {
    if (auto* h = std::get_if<detail::HeadersDone>(&event)) {
      if (h->trailers) {
        out.push_back(http::ResponseEnd{h->stream, response_head(std::move(h->fields)).headers});
        session_->ended_in.insert(h->stream);
        continue;
      }
      out.push_back(http::ResponseStart{h->stream, response_head(std::move(h->fields)), h->informational,
                                        h->end_stream});
      if (h->end_stream && !h->informational) {
        out.push_back(http::ResponseEnd{h->stream, {}});
        session_->ended_in.insert(h->stream);
      }
    } else if (auto* d = std::get_if<detail::Data>(&event)) {
      const std::size_t size = d->bytes.size();
      out.push_back(http::ResponseBody{d->stream, std::move(d->bytes), size});
    } else if (auto* e = std::get_if<detail::End>(&event)) {
      if (session_->ended_in.erase(e->stream) == 0) out.push_back(http::ResponseEnd{e->stream, {}});
    } else if (auto* c = std::get_if<detail::Closed>(&event)) {
      if (session_->ended_in.erase(c->stream) == 0 || c->error_code != 0)
        out.push_back(http::StreamRefused{c->stream, closed_reason(c->error_code)});
    } else if (auto* f = std::get_if<detail::Failed>(&event)) {
      out.push_back(http::ConnectionFailed{f->reason, f->detail, 0});
    }
  }
}

void H2UpstreamCodec::eof(std::vector<http::UpstreamEvent>& out) {
  if (session_->active() > 0)
    out.push_back(http::ConnectionFailed{"upstream_closed", "the origin closed with streams open", 0});
}

Bytes H2UpstreamCodec::take_output() { return session_->take_output(); }
bool H2UpstreamCodec::has_output() const { return session_->has_output(); }
std::size_t H2UpstreamCodec::open_streams() const { return session_->active(); }
bool H2UpstreamCodec::exhausted() const { return session_->failed() || session_->goaway(); }

}  // namespace airlock::http2
