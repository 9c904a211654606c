// HTTP proxying of one flow's plaintext; see http_layer.hpp for the theory of operation.
#include "proxy/mitm/http_layer.hpp"

#include <algorithm>
#include <set>

#include "proxy/http/content_decoder.hpp"
#include "proxy/http/h1_codec.hpp"
#include "proxy/http2/h2_codec.hpp"

namespace airlock::mitm {

namespace {

constexpr std::size_t kDecodeChunk = 64 * 1024;

std::int64_t millis(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count();
}

std::string_view phrase(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 502: return "Bad Gateway";
    default: return "Error";
  }
}

bool idempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "PUT" ||
         method == "DELETE";
}

std::optional<std::uint64_t> content_length(const std::vector<http::Header>& headers) {
  const http::Header* h = http::find_header(headers, "content-length");
  if (h == nullptr || h->value.empty() || h->value.size() > 18) return std::nullopt;
  std::uint64_t n = 0;
  for (char c : h->value) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return n;
}

Bytes to_bytes(std::string_view text) { return Bytes(text.begin(), text.end()); }

// Rewrites every header name and value; false (and the finding) when one can't be made safe.
bool scrub_headers(const policy::MatchSet& set, std::vector<http::Header>& headers,
                   std::set<std::string>& scrubbed, policy::Finding& finding) {
  for (auto& h : headers) {
    for (std::string* text : {&h.name, &h.value}) {
      auto result = policy::rewrite_string(set, *text);
      if (result.stopped) {
        finding = *result.stopped;
        return false;
      }
      scrubbed.insert(result.replaced.begin(), result.replaced.end());
    }
  }
  std::erase_if(headers, [](const http::Header& h) { return h.name.empty(); });
  return true;
}

}  // namespace

nlohmann::json refusal_body(std::string_view reason, const std::string& host) {
  return {{"error", "blocked by airlock policy"}, {"reason", std::string(reason)}, {"host", host}};
}

struct HttpLayer::Exchange {
  http::StreamId id = 0;
  std::optional<http::StreamId> up;
  http::RequestHead head;
  Verdict verdict;
  Clock::time_point started;
  // Request.
  bool body_expected = false;
  bool request_ended = false;
  bool upgrade = false;
  bool hold = false;           // whole body held to re-count (HTTP/1.1 upstream, swaps)
  bool scan_only = false;      // too large to re-count: no placeholder may be in it
  bool sent_end = false;
  bool retried = false;
  http::Bytes body;            // rewritten body bytes not yet given to the upstream
  std::size_t body_credit = 0; // guest body bytes behind `body`, credited when sent
  std::optional<policy::SecretRewriter> rewriter;
  // Response.
  int status = 0;
  bool head_sent = false;      // the guest has a response head for this exchange
  bool wire = false;
  bool scrub = false;
  bool has_body = true;
  bool hold_response = false;
  bool upstream_ended = false;
  http::ResponseHead response_head;
  std::unique_ptr<http::ContentDecoder> decoder;
  std::optional<policy::SecretRewriter> scrubber;
  http::Bytes encoded;         // body bytes from the origin not yet decoded
  http::Bytes held_response;
  http::Trailers trailers;
  std::set<std::string> scrubbed;
  std::uint64_t request_bytes = 0;
  std::uint64_t response_bytes = 0;
  std::uint64_t received = 0;  // origin body bytes seen
  std::string error;
  bool recorded = false;
};

HttpLayer::HttpLayer(std::shared_ptr<MitmContext> context, FlowTarget flow,
                     std::unique_ptr<http::GuestCodec> guest)
    : context_(std::move(context)), flow_(std::move(flow)), guest_(std::move(guest)),
      counters_(context_->counters()) {
  const policy::SecretStore& secrets = context_->policy().secrets();
  if (!secrets.entries().empty()) {
    request_set_ = secrets.request_matches(flow_.host, flow_.port, flow_.tls);
    scan_only_set_ = secrets.request_matches(flow_.host, flow_.port, false);
    swaps_ = secrets.any_authorized(flow_.host, flow_.port, flow_.tls);
    if (swaps_) response_set_ = secrets.response_matches();
  }
}

HttpLayer::~HttpLayer() = default;

bool HttpLayer::wants(Side side) const {
  if (tunnel_) return true;
  if (side == Side::guest) {
    if (guest_closed_) return true;  // read and drop, so the guest's side can finish
    std::size_t waiting = guest_->buffered();
    for (const auto& [id, x] : exchanges_) waiting += x->body.size();
    return waiting < kMaxWaiting;
  }
  for (const auto& [id, x] : exchanges_)
    if (x->encoded.size() >= kMaxWaiting) return false;
  return true;
}

bool HttpLayer::pending(Side side) const { return side == Side::guest && more_; }

HttpLayer::Exchange* HttpLayer::find(http::StreamId guest_stream) {
  auto it = exchanges_.find(guest_stream);
  return it == exchanges_.end() ? nullptr : it->second.get();
}

HttpLayer::Exchange* HttpLayer::by_upstream(http::StreamId upstream_stream) {
  auto it = by_upstream_.find(upstream_stream);
  return it == by_upstream_.end() ? nullptr : find(it->second);
}

void HttpLayer::handle(Event event, Clock::time_point now, Commands& out) {
  if (auto* data = std::get_if<DataIn>(&event)) {
    if (tunnel_) {
      tunnel_data(data->side, std::move(data->bytes), out);
      return;
    }
    if (data->side == Side::guest) {
      if (guest_closed_) return;
      std::vector<http::GuestEvent> events;
      guest_->feed(data->bytes, events);
      on_guest_events(events, now, out);
    } else if (upstream_) {
      std::vector<http::UpstreamEvent> events;
      upstream_->feed(data->bytes, events);
      on_upstream_events(events, now, out);
    }
  } else if (auto* closed = std::get_if<ClosedIn>(&event)) {
    if (tunnel_) {
      out.push_back(Close{other(closed->side), closed->reset});
      if (closed->side == Side::guest) guest_eof_ = true;
      return;
    }
    if (closed->side == Side::guest) {
      if (closed->reset) {
        abort_all(reason::guest_closed, closed->detail.empty() ? "the guest reset the connection" : closed->detail, now);
        guest_closed_ = true;
        drop_upstream(out, true);
      } else {
        std::vector<http::GuestEvent> events;
        guest_->eof(events);
        on_guest_events(events, now, out);
        guest_eof_ = true;
      }
    } else {
      on_upstream_closed(closed->reset, closed->detail, now, out);
    }
  } else if (auto* connected = std::get_if<Connected>(&event)) {
    upstream_alpn_ = connected->alpn;
    upstream_served_ = connected->reused ? 1 : 0;
    upstream_closed_sent_ = false;
    if (connected->alpn == "h2") {
      ++counters_.upstream_h2;
      upstream_ = std::make_unique<http2::H2UpstreamCodec>();
    } else {
      // The origin's bytes can pass as they are when both sides speak HTTP/1.1 and
      // nothing needs scrubbing.
      const bool wire = guest_->protocol() == "HTTP/1.1" && !response_set_;
      upstream_ = std::make_unique<http::H1UpstreamCodec>(wire);
    }
    upstream_state_ = Upstream::ready;
  } else if (auto* failed = std::get_if<ConnectFailed>(&event)) {
    on_connect_failed(*failed, now, out);
  } else if (std::holds_alternative<Drained>(event)) {
    // Go on decoding what waits (below).
  } else if (std::holds_alternative<TimerIn>(event)) {
    if (release_at_ && now >= *release_at_) {
      release_at_.reset();
      if (exchanges_.empty() && waiting_.empty() && reusable_upstream()) release_upstream(out);
    }
  }
  // Responses that waited for room go on, within the step budget.
  more_ = false;
  std::size_t budget = kStepBudget;
  std::vector<http::StreamId> ids;
  for (const auto& [id, x] : exchanges_)
    if (!x->encoded.empty() || (x->upstream_ended && x->scrub)) ids.push_back(id);
  for (http::StreamId id : ids)
    if (Exchange* x = find(id)) drain_response(*x, budget, now, out);
  try_start(out);
  flush(out);
  check_closes(out);
}

// ---- guest side -------------------------------------------------------------------------

void HttpLayer::on_guest_events(std::vector<http::GuestEvent>& events, Clock::time_point now,
                                Commands& out) {
  for (auto& event : events) {
    if (auto* start = std::get_if<http::RequestStart>(&event)) {
      if (discarding_ && start->stream > discard_after_) continue;
      on_request(std::move(*start), now, out);
    } else if (auto* body = std::get_if<http::RequestBody>(&event)) {
      Exchange* x = find(body->stream);
      if (x == nullptr || x->recorded) {
        guest_->consumed(body->stream, body->data.size());
        continue;
      }
      on_request_body(*x, std::move(body->data), now, out);
    } else if (auto* end = std::get_if<http::RequestEnd>(&event)) {
      if (Exchange* x = find(end->stream); x != nullptr && !x->recorded) on_request_end(*x, now, out);
    } else if (auto* upgrade = std::get_if<http::RequestUpgrade>(&event)) {
      if (Exchange* x = find(upgrade->stream); x != nullptr && !x->recorded) on_request_end(*x, now, out);
    } else if (auto* cancelled = std::get_if<http::StreamCancelled>(&event)) {
      if (Exchange* x = find(cancelled->stream)) {
        if (x->up && upstream_) upstream_->cancel(*x->up);
        x->error = std::string(reason::guest_closed);
        x->verdict.detail = cancelled->reason;
        record(*x, now);
        forget(*x);
      }
    } else if (auto* failed = std::get_if<http::ConnectionFailed>(&event)) {
      const bool preface = failed->reason == reason::http2_preface;
      if (failed->stream != 0) {
        // HTTP/1.1: answer in order on the stream the codec kept for it.
        Exchange* x = find(failed->stream);
        if (x != nullptr) {
          // Cut mid-body: the upstream request can't be finished cleanly.
          if (x->up && upstream_) {
            upstream_->cancel(*x->up);
          }
          if (failed->reason == "truncated") {
            fail(*x, reason::guest_closed, "the guest closed in the middle of the request", now);
            continue;
          }
          refuse(*x, 400, reason::bad_request, failed->reason, now);
        } else if (failed->reason != "truncated") {
          auto made = std::make_unique<Exchange>();
          made->id = failed->stream;
          made->started = now;
          made->verdict.host = flow_.host.to_string();
          made->verdict.url = event_url(flow_.tls, made->verdict.host, flow_.port, "/");
          made->verdict.rule = flow_.rule.to_string();
          Exchange& e = *made;
          exchanges_[e.id] = std::move(made);
          ++counters_.requests;
          refuse(e, 400, preface ? reason::http2_preface : reason::bad_request,
                 preface ? "an HTTP/2 preface on an HTTP/1.1 connection" : failed->reason, now);
        }
      } else {
        // HTTP/2: the codec sent GOAWAY; what was open is over.
        abort_all(reason::guest_closed, failed->reason + (failed->detail.empty() ? "" : ": " + failed->detail), now);
        out.push_back(Note{"", "", "", "", "", failed->reason + ": " + failed->detail});
        guest_eof_ = true;
      }
    }
  }
}

void HttpLayer::on_request(http::RequestStart start, Clock::time_point now, Commands& out) {
  ++counters_.requests;
  release_at_.reset();  // the connection is wanted again
  auto made = std::make_unique<Exchange>();
  Exchange& x = *made;
  x.id = start.stream;
  x.started = now;
  x.head = std::move(start.head);
  x.body_expected = !start.end_stream;
  x.request_ended = start.end_stream;
  x.upgrade = x.head.upgrade;
  exchanges_[x.id] = std::move(made);

  x.verdict = context_->judge().judge(flow_, x.head, request_set_.get());
  if (!x.verdict.allowed) {
    refuse(x, x.verdict.reason == reason::bad_request ? 400 : 403, x.verdict.reason, x.verdict.detail, now);
    return;
  }
  http::remove_headers(x.head.headers, "proxy-connection");
  http::remove_headers(x.head.headers, "proxy-authorization");
  if (!x.head.upgrade) {
    http::remove_headers(x.head.headers, "upgrade");
    http::remove_headers(x.head.headers, "http2-settings");
  } else if (response_set_) {
    // No WebSocket extension (permessage-deflate) where frames must be scrubbed.
    http::remove_headers(x.head.headers, "sec-websocket-extensions");
  }
  // 100-continue is the proxy's to answer: an origin that answers early and then reads
  // the body as a new request must never see one.
  if (x.head.expect_continue) {
    http::remove_headers(x.head.headers, "expect");
    http::ResponseHead cont;
    cont.status = 100;
    cont.reason = "Continue";
    guest_->respond_informational(x.id, cont);
  }
  if (x.body_expected && request_set_) {
    const bool large = x.head.content_length && *x.head.content_length > context_->options().max_buffered_body;
    if (swaps_ && large) {
      // Too large to hold and re-count: streamed as it is, and no placeholder may be in it.
      x.rewriter.emplace(scan_only_set_);
      x.scan_only = true;
    } else {
      x.rewriter.emplace(request_set_);
    }
  }
  waiting_.push_back(x.id);
  (void)out;
}

void HttpLayer::on_request_body(Exchange& x, http::Bytes data, Clock::time_point now, Commands& out) {
  x.request_bytes += data.size();
  const std::size_t credit = data.size();
  if (x.rewriter) {
    http::Bytes rewritten;
    x.rewriter->feed(data, rewritten);
    if (const auto& found = x.rewriter->stopped()) {
      refuse_body(x, *found, credit, now, out);
      return;
    }
    data = std::move(rewritten);
  }
  x.body_credit += credit;
  send_body(x, std::move(data));
}

// A secret found in the request body: the exchange is withdrawn from the upstream (an
// HTTP/1.1 connection that carried part of it is spent) and refused.
void HttpLayer::refuse_body(Exchange& x, const policy::Finding& found, std::size_t credit, Clock::time_point now,
                            Commands& out) {
  if (credit != 0) guest_->consumed(x.id, credit);
  const bool too_large = x.scan_only && found.form == "placeholder";
  if (x.up && upstream_) {
    upstream_->cancel(*x.up);
    by_upstream_.erase(*x.up);
    x.up.reset();
    if (upstream_->exhausted()) drop_upstream(out, true);
  }
  std::erase(waiting_, x.id);
  x.verdict.swaps.clear();
  refuse(x, 403, too_large ? reason::secret_body_too_large : reason::secret_leak,
         "secret " + found.secret + (found.form == "placeholder" ? "" : " (its real value)") + " in the body", now);
}

void HttpLayer::send_body(Exchange& x, http::Bytes bytes) {
  if (x.up && !x.hold && upstream_) {
    if (!x.body.empty()) {
      upstream_->request_data(*x.up, x.body);
      x.body.clear();
    }
    if (!bytes.empty()) upstream_->request_data(*x.up, bytes);
    guest_->consumed(x.id, x.body_credit);
    x.body_credit = 0;
    return;
  }
  x.body.insert(x.body.end(), bytes.begin(), bytes.end());
}

void HttpLayer::on_request_end(Exchange& x, Clock::time_point now, Commands& out) {
  x.request_ended = true;
  if (x.rewriter) {
    http::Bytes rest;
    x.rewriter->finish(rest);
    // A match the body's last bytes complete is only decided here.
    if (const auto& found = x.rewriter->stopped()) {
      refuse_body(x, *found, 0, now, out);
      return;
    }
    for (const auto& name : x.rewriter->replaced()) x.verdict.swaps.push_back({name, "body"});
    send_body(x, std::move(rest));
  }
  if (x.up && !x.hold && upstream_ && !x.sent_end && x.body_expected) {
    upstream_->request_end(*x.up);
    x.sent_end = true;
  }
}

void HttpLayer::try_start(Commands& out) {
  if (tunnel_) return;
  if (upstream_ && upstream_state_ == Upstream::ready && upstream_->exhausted() &&
      upstream_->open_streams() == 0 && !waiting_.empty()) {
    drop_upstream(out, false);  // spent (Connection: close, GOAWAY): a fresh one for the rest
  }
  while (!waiting_.empty() && upstream_ && upstream_state_ == Upstream::ready && upstream_->can_start()) {
    Exchange* x = find(waiting_.front());
    if (x == nullptr || x->recorded) {
      waiting_.pop_front();
      continue;
    }
    const bool h1 = upstream_->protocol() == "HTTP/1.1";
    // A body that may change length under a Content-Length is held whole for HTTP/1.1.
    x->hold = h1 && x->body_expected && x->rewriter && swaps_ && !x->scan_only && x->head.content_length;
    if (x->hold && !x->request_ended) break;  // later requests wait behind it, in order
    waiting_.pop_front();
    start(*x);
  }
  if (!waiting_.empty() && !upstream_ && upstream_state_ == Upstream::none && !guest_closed_) {
    upstream_state_ = Upstream::opening;
    ++counters_.upstream_opens;
    upstream_closed_sent_ = false;
    std::vector<std::string> alpn;
    if (guest_->protocol() == "HTTP/2" && context_->options().http2) alpn.emplace_back("h2");
    alpn.emplace_back("http/1.1");
    const bool reusable = alpn.size() == 1;  // an idle HTTP/1.1 connection from the pool will do
    out.push_back(Open{std::move(alpn), flow_.tls, reusable});
  }
}

void HttpLayer::start(Exchange& x) {
  http::BodyFraming framing;
  framing.has_body = x.body_expected;
  bool end_stream = !x.body_expected;
  if (x.hold) {
    framing.length = x.body.size();
    end_stream = x.body.empty();
  } else if (x.body_expected) {
    const bool may_change = x.rewriter && swaps_ && !x.scan_only;
    if (!may_change) framing.length = x.head.content_length;  // same bytes, same length
  } else if (x.head.content_length) {
    framing.length = x.head.content_length;  // "Content-Length: 0"
  }
  const http::StreamId up = upstream_->request(x.head, framing, end_stream);
  x.up = up;
  by_upstream_[up] = x.id;
  if (x.hold) {
    if (!x.body.empty()) upstream_->request_data(up, x.body);
    x.body.clear();
    x.hold = false;
    if (!end_stream) upstream_->request_end(up);
    x.sent_end = true;
    guest_->consumed(x.id, x.body_credit);
    x.body_credit = 0;
    return;
  }
  send_body(x, {});
  if (x.request_ended && x.body_expected && !x.sent_end) {
    upstream_->request_end(up);
    x.sent_end = true;
  }
}

// ---- upstream side ----------------------------------------------------------------------

void HttpLayer::on_upstream_events(std::vector<http::UpstreamEvent>& events, Clock::time_point now,
                                   Commands& out) {
  for (auto& event : events) {
    if (auto* start = std::get_if<http::ResponseStart>(&event)) {
      Exchange* x = by_upstream(start->stream);
      if (x == nullptr) continue;
      if (start->informational) {
        // 100 Continue was ours to send; other 1xx (103 Early Hints) go on, scrubbed.
        if (start->head.status == 100 || x->wire) continue;
        if (response_set_) {
          policy::Finding finding;
          if (!scrub_headers(*response_set_, start->head.headers, x->scrubbed, finding)) continue;
        }
        guest_->respond_informational(x->id, start->head);
        continue;
      }
      on_response_head(*x, std::move(start->head), start->end_stream, now, out);
    } else if (auto* body = std::get_if<http::ResponseBody>(&event)) {
      if (Exchange* x = by_upstream(body->stream)) on_response_body(*x, std::move(*body), now, out);
    } else if (auto* wire = std::get_if<http::ResponseWire>(&event)) {
      if (Exchange* x = by_upstream(wire->stream); x != nullptr && x->wire) {
        guest_->respond_wire(x->id, wire->bytes);
        x->head_sent = true;
      }
    } else if (auto* end = std::get_if<http::ResponseEnd>(&event)) {
      if (Exchange* x = by_upstream(end->stream)) on_response_end(*x, std::move(end->trailers), now, out);
    } else if (auto* upgrade = std::get_if<http::ResponseUpgrade>(&event)) {
      if (Exchange* x = by_upstream(upgrade->stream)) on_upgrade(*x, now, out);
    } else if (auto* refused = std::get_if<http::StreamRefused>(&event)) {
      if (Exchange* x = by_upstream(refused->stream)) fail(*x, reason::upstream_failed, refused->reason, now);
    } else if (auto* failed = std::get_if<http::ConnectionFailed>(&event)) {
      // The connection is unusable: every exchange on it is over (or, when the origin just
      // closed it, retried where that is safe).
      lose_upstream(failed->reason == reason::upstream_closed, failed->detail, now, out);
      return;
    }
  }
}

void HttpLayer::on_response_head(Exchange& x, http::ResponseHead head, bool end_stream,
                                 Clock::time_point now, Commands& out) {
  (void)out;
  x.status = head.status;
  x.has_body = !(x.head.method == "HEAD" || head.status / 100 == 1 || head.status == 204 || head.status == 304);
  if (upstream_ && upstream_->protocol() == "HTTP/1.1" && !response_set_ && guest_->protocol() == "HTTP/1.1") {
    x.wire = true;  // the bytes follow as ResponseWire
    return;
  }
  if (head.status == 101) {
    // Answered by on_upgrade, once the codec has seen the switch.
    if (response_set_) {
      policy::Finding finding;
      if (!scrub_headers(*response_set_, head.headers, x.scrubbed, finding)) {
        cut(x, reason::secret_echo, "secret " + finding.secret + " in an encoded form in the response head", now);
        return;
      }
    }
    x.response_head = std::move(head);
    return;
  }
  if (response_set_) {
    x.scrub = true;
    ++counters_.responses_scrubbed;
    policy::Finding finding;
    auto reason_scan = policy::rewrite_string(*response_set_, head.reason);
    if (reason_scan.stopped || !scrub_headers(*response_set_, head.headers, x.scrubbed, finding)) {
      cut(x, reason::secret_echo, "secret " + (reason_scan.stopped ? reason_scan.stopped->secret : finding.secret) +
                                      " in an encoded form in the response head", now);
      return;
    }
    x.scrubbed.insert(reason_scan.replaced.begin(), reason_scan.replaced.end());
    if (x.has_body) {
      const http::Header* coding = http::find_header(head.headers, "content-encoding");
      if (coding != nullptr) {
        if (head.status == 206) {
          cut(x, reason::unscannable_response, "a partial response of an encoded body can't be decoded", now);
          return;
        }
        auto decoder = http::ContentDecoder::create(coding->value);
        if (!decoder) {
          cut(x, reason::unscannable_response, decoder.error(), now);
          return;
        }
        if (!(*decoder)->identity()) x.decoder = std::move(*decoder);
        // The guest gets the decoded body: no coding to undo, no length to trust.
        http::remove_headers(head.headers, "content-encoding");
      }
      x.scrubber.emplace(response_set_);
      const auto length = content_length(head.headers);
      x.hold_response = !x.decoder && length && *length <= context_->options().max_buffered_body;
      http::remove_headers(head.headers, "content-length");
      http::remove_headers(head.headers, "content-md5");
    }
    if (x.hold_response) {
      x.response_head = std::move(head);
      return;
    }
    http::BodyFraming framing{x.has_body, std::nullopt};
    guest_->respond(x.id, std::move(head), framing, end_stream || !x.has_body);
    x.head_sent = true;
    return;
  }
  http::BodyFraming framing{x.has_body, x.has_body ? content_length(head.headers) : std::nullopt};
  guest_->respond(x.id, std::move(head), framing, end_stream || !x.has_body);
  x.head_sent = true;
}

void HttpLayer::on_response_body(Exchange& x, http::ResponseBody body, Clock::time_point now, Commands& out) {
  x.received += body.size;
  if (x.wire) {
    x.response_bytes += body.size;
    return;
  }
  if (!x.scrub) {
    x.response_bytes += body.data.size();
    guest_->respond_data(x.id, body.data);
    if (x.up && upstream_) upstream_->consumed(*x.up, body.data.size());
    return;
  }
  x.encoded.insert(x.encoded.end(), body.data.begin(), body.data.end());
  (void)now;
  (void)out;
}

bool HttpLayer::drain_response(Exchange& x, std::size_t& budget, Clock::time_point now, Commands& out) {
  (void)out;
  if (!x.scrub || x.recorded) return true;
  while (!x.encoded.empty() || (x.upstream_ended && x.decoder && !x.decoder->finished())) {
    if (budget == 0) {
      more_ = true;
      return false;
    }
    http::Bytes plain;
    const std::size_t room = std::min(budget, kDecodeChunk);
    if (!x.encoded.empty()) {
      std::size_t taken = 0;
      if (x.decoder) {
        taken = x.decoder->decode(x.encoded, plain, room);
      } else {
        taken = std::min(x.encoded.size(), room);
        plain.assign(x.encoded.begin(), x.encoded.begin() + static_cast<std::ptrdiff_t>(taken));
      }
      x.encoded.erase(x.encoded.begin(), x.encoded.begin() + static_cast<std::ptrdiff_t>(taken));
      if (x.up && upstream_) upstream_->consumed(*x.up, taken);
      if (x.decoder && x.decoder->failed()) {
        cut(x, reason::unscannable_response, "the response body " + x.decoder->error(), now);
        return true;
      }
      if (taken == 0 && plain.empty()) {
        if (!x.upstream_ended) break;   // the decoder needs more input
        x.encoded.clear();              // input the stream has no use for: the end check fails
      }
    } else {
      x.decoder->finish(plain, room);
      if (x.decoder->failed()) {
        cut(x, reason::unscannable_response, "the response body " + x.decoder->error(), now);
        return true;
      }
    }
    http::Bytes clean;
    x.scrubber->feed(plain, clean);
    if (const auto& found = x.scrubber->stopped()) {
      cut(x, reason::secret_echo, "secret " + found->secret + " echoed in an encoded form", now);
      return true;
    }
    budget -= std::min(budget, std::max<std::size_t>(clean.size(), 1));
    x.response_bytes += clean.size();
    if (x.hold_response)
      x.held_response.insert(x.held_response.end(), clean.begin(), clean.end());
    else
      guest_->respond_data(x.id, clean);
  }
  if (x.upstream_ended && x.encoded.empty() && (!x.decoder || x.decoder->finished())) finish_response(x, now);
  return true;
}

void HttpLayer::on_response_end(Exchange& x, http::Trailers trailers, Clock::time_point now, Commands& out) {
  x.upstream_ended = true;
  if (response_set_ && !trailers.empty()) {
    policy::Finding finding;
    if (!scrub_headers(*response_set_, trailers, x.scrubbed, finding)) {
      cut(x, reason::secret_echo, "secret " + finding.secret + " in an encoded form in the trailers", now);
      return;
    }
  }
  x.trailers = std::move(trailers);
  if (!x.scrub) {
    finish_response(x, now);
    return;
  }
  std::size_t budget = kStepBudget;
  drain_response(x, budget, now, out);
}

std::optional<Clock::time_point> HttpLayer::deadline() const { return release_at_; }

bool HttpLayer::reusable_upstream() const {
  return upstream_ && upstream_state_ == Upstream::ready && upstream_->protocol() == "HTTP/1.1" &&
         !upstream_->exhausted() && upstream_->open_streams() == 0 && !upstream_->has_output() && !tunnel_ &&
         context_->options().pool_upstreams;
}

void HttpLayer::release_upstream(Commands& out) {
  by_upstream_.clear();
  upstream_.reset();
  upstream_state_ = Upstream::none;
  out.push_back(Release{});
}

void HttpLayer::finish_response(Exchange& x, Clock::time_point now) {
  if (x.recorded) return;
  if (x.scrub && x.scrubber) {
    http::Bytes rest;
    x.scrubber->finish(rest);
    if (const auto& found = x.scrubber->stopped()) {  // completed by the body's last bytes
      cut(x, reason::secret_echo, "secret " + found->secret + " echoed in an encoded form", now);
      return;
    }
    x.response_bytes += rest.size();
    x.scrubbed.insert(x.scrubber->replaced().begin(), x.scrubber->replaced().end());
    if (x.hold_response)
      x.held_response.insert(x.held_response.end(), rest.begin(), rest.end());
    else
      guest_->respond_data(x.id, rest);
  }
  if (x.hold_response) {
    guest_->respond(x.id, std::move(x.response_head), http::BodyFraming{true, x.held_response.size()}, false);
    guest_->respond_data(x.id, x.held_response);
    x.held_response.clear();
    x.head_sent = true;
  }
  guest_->respond_end(x.id, x.trailers);
  if (x.up && upstream_ && x.body_expected && !x.sent_end) {
    // Answered before the request's body was all sent: the rest goes nowhere (the guest's
    // remaining bytes are read and dropped), and the upstream can't carry another request.
    upstream_->cancel(*x.up);
    by_upstream_.erase(*x.up);
    x.up.reset();
    if (x.verdict.detail.empty()) x.verdict.detail = "answered before the request body was complete; the rest was not sent";
  }
  ++upstream_served_;
  record(x, now);
  forget(x);
  // Nothing wants the connection now: if that lasts kReleaseAfter, it goes back to the
  // pool, so an idle guest connection holds none and another can use it.
  if (exchanges_.empty() && waiting_.empty() && reusable_upstream()) release_at_ = now + kReleaseAfter;
}

void HttpLayer::on_upgrade(Exchange& x, Clock::time_point now, Commands& out) {
  if (!x.upgrade || x.status != 101) {
    fail(x, reason::upstream_failed, "unsolicited protocol switch", now);
    drop_upstream(out, true);
    return;
  }
  if (!x.wire) {
    http::ResponseHead head = x.response_head;
    head.status = 101;
    head.reason = "Switching Protocols";
    guest_->respond(x.id, std::move(head), http::BodyFraming{false, std::nullopt}, true);
  }
  x.head_sent = true;
  record(x, now);
  forget(x);
  tunnel_ = true;
  ++counters_.websockets;
  // On a flow a secret may reach, frames from the origin are scrubbed message by message.
  if (response_set_) ws_scrubber_.emplace(response_set_);
  flush(out);
  if (auto rest = guest_->take_tunnel_bytes(); !rest.empty()) tunnel_data(Side::guest, std::move(rest), out);
  if (auto rest = upstream_->take_tunnel_bytes(); !rest.empty()) tunnel_data(Side::upstream, std::move(rest), out);
  out.push_back(Note{"websocket", "", "", "", "", ""});
}

void HttpLayer::tunnel_data(Side from, http::Bytes bytes, Commands& out) {
  if (from == Side::guest || !ws_scrubber_) {
    if (!tunnel_failed_) out.push_back(Send{other(from), std::move(bytes)});
    return;
  }
  if (tunnel_failed_) return;
  http::Bytes clean;
  ws_scrubber_->feed(bytes, clean);
  if (!clean.empty()) out.push_back(Send{Side::guest, std::move(clean)});
  if (const auto& why = ws_scrubber_->failed()) {
    // The message can't be made safe: the tunnel ends, both ways.
    tunnel_failed_ = true;
    ++counters_.responses_cut;
    out.push_back(Note{"", "", "", std::string(reason::secret_echo), "", "WebSocket: " + *why});
    out.push_back(Close{Side::guest, true});
    out.push_back(Close{Side::upstream, true});
  }
}

void HttpLayer::on_connect_failed(const ConnectFailed& failure, Clock::time_point now, Commands& out) {
  upstream_state_ = Upstream::none;
  upstream_.reset();
  by_upstream_.clear();
  std::vector<http::StreamId> ids(waiting_.begin(), waiting_.end());
  waiting_.clear();
  for (http::StreamId id : ids) {
    Exchange* x = find(id);
    if (x == nullptr || x->recorded) continue;
    if (failure.reason == policy::reason::private_address) {
      if (!failure.rule.empty()) x->verdict.rule = failure.rule;
      refuse(*x, 403, failure.reason, failure.detail, now);
    } else {
      fail(*x, failure.reason, failure.detail, now);
    }
  }
  (void)out;
}

void HttpLayer::on_upstream_closed(bool reset, const std::string& detail, Clock::time_point now, Commands& out) {
  if (upstream_ && !reset) {
    std::vector<http::UpstreamEvent> events;
    upstream_->eof(events);
    on_upstream_events(events, now, out);
  }
  lose_upstream(!reset, reset ? (detail.empty() ? "the origin reset the connection" : detail)
                              : "the origin closed the connection",
                now, out);
}

void HttpLayer::lose_upstream(bool closed, const std::string& detail, Clock::time_point now, Commands& out) {
  std::vector<http::StreamId> on_it;
  for (const auto& [up, id] : by_upstream_) on_it.push_back(id);
  for (http::StreamId id : on_it) {
    Exchange* x = find(id);
    if (x == nullptr || x->recorded) continue;
    // A keep-alive race: the origin closed an idle connection as the request went out.
    // An idempotent request without a body that got nothing back is sent again, once.
    const bool retry = closed && !x->retried && upstream_served_ > 0 && x->received == 0 && !x->head_sent &&
                       !x->body_expected && idempotent(x->head.method);
    if (retry) {
      ++counters_.retries;
      x->retried = true;
      x->up.reset();
      x->sent_end = false;
      waiting_.push_front(x->id);
      continue;
    }
    fail(*x, reason::upstream_failed, detail, now);
  }
  drop_upstream(out, !closed);
}

void HttpLayer::drop_upstream(Commands& out, bool reset) {
  by_upstream_.clear();
  for (auto& [id, x] : exchanges_) x->up.reset();
  if (upstream_ && !reset) {
    // What the codec still has to say (a GOAWAY, the end of a body) goes before the close.
    if (auto bytes = upstream_->take_output(); !bytes.empty()) out.push_back(Send{Side::upstream, std::move(bytes)});
  }
  if (upstream_state_ != Upstream::none && !upstream_closed_sent_) {
    out.push_back(Close{Side::upstream, reset});
    upstream_closed_sent_ = true;
  }
  upstream_.reset();
  upstream_state_ = Upstream::none;
}

// ---- endings ----------------------------------------------------------------------------

void HttpLayer::respond_error(Exchange& x, int status, std::string_view why) {
  if (x.head_sent) return;
  const std::string payload = refusal_body(why, x.verdict.host).dump(-1, ' ', false,
                                                                      nlohmann::json::error_handler_t::replace) + "\n";
  http::ResponseHead head;
  head.status = status;
  head.reason = std::string(phrase(status));
  head.headers = {{"Content-Type", "application/json"}};
  guest_->respond(x.id, std::move(head), http::BodyFraming{true, payload.size()}, false);
  guest_->respond_data(x.id, to_bytes(payload));
  guest_->respond_end(x.id, {});
  x.head_sent = true;
  x.status = status;
}

void HttpLayer::refuse(Exchange& x, int status, std::string_view why_view, std::string detail, Clock::time_point now) {
  ++counters_.requests_refused;
  const std::string why(why_view);  // why_view may point into x
  x.verdict.allowed = false;
  x.verdict.reason = why;
  x.verdict.detail = std::move(detail);
  if (x.up && upstream_) upstream_->cancel(*x.up);
  respond_error(x, status, why);
  record(x, now);
  if (guest_->protocol() == "HTTP/1.1") {
    // Later requests on this connection were parsed but never judged: none is answered.
    guest_->finish(x.id);
    discarding_ = true;
    discard_after_ = x.id;
    std::vector<http::StreamId> later;
    for (const auto& [id, e] : exchanges_)
      if (id > x.id) later.push_back(id);
    for (http::StreamId id : later)
      if (Exchange* e = find(id)) {
        if (e->up && upstream_) upstream_->cancel(*e->up);
        e->error = std::string(reason::flow_closed);
        e->verdict.detail = "behind a refused request on the same connection";
        record(*e, now);
        forget(*e);
      }
  }
  forget(x);
}

void HttpLayer::fail(Exchange& x, std::string_view error_view, std::string detail, Clock::time_point now) {
  ++counters_.requests_failed;
  const std::string error(error_view);  // error_view may point into x
  x.error = error;
  x.verdict.detail = std::move(detail);
  if (x.up && upstream_) upstream_->cancel(*x.up);
  if (!x.head_sent) {
    respond_error(x, 502, error);
  } else {
    guest_->cancel(x.id);  // part of a response went out: only a reset tells the guest
  }
  record(x, now);
  forget(x);
}

void HttpLayer::cut(Exchange& x, std::string_view why_view, std::string detail, Clock::time_point now) {
  ++counters_.responses_cut;
  const std::string why(why_view);  // why_view may point into x
  x.verdict.allowed = false;
  x.verdict.reason = why;
  x.verdict.detail = std::move(detail);
  x.encoded.clear();
  if (x.up && upstream_) upstream_->cancel(*x.up);
  if (!x.head_sent) {
    x.hold_response = false;
    respond_error(x, 502, why);
  } else {
    guest_->cancel(x.id);
  }
  record(x, now);
  forget(x);
}

void HttpLayer::record(Exchange& x, Clock::time_point now) {
  if (x.recorded) return;
  x.recorded = true;
  audit::HttpRequest e;
  e.method = x.head.method;
  e.url = x.verdict.url;
  e.host = x.verdict.host;
  e.port = flow_.port;
  e.http_version = std::string(guest_->protocol());
  e.status_code = x.status;
  e.request_bytes = x.request_bytes;
  e.response_bytes = x.response_bytes;
  e.duration_ms = millis(x.started, now);
  e.blocked = !x.verdict.reason.empty() && x.verdict.reason != policy::reason::allowed && !x.verdict.allowed;
  if (e.blocked) e.block_reason = x.verdict.reason;
  e.error = x.error;
  e.rule = x.verdict.rule;
  e.detail = x.verdict.detail;
  e.secrets = x.verdict.swaps;
  for (const auto& name : x.scrubbed) e.secrets.push_back({name, "response"});
  pending_events_.push_back(std::move(e));
}

void HttpLayer::forget(Exchange& x) {
  if (x.up) by_upstream_.erase(*x.up);
  std::erase(waiting_, x.id);
  exchanges_.erase(x.id);  // x is gone after this
}

void HttpLayer::abort_all(std::string_view error, const std::string& detail, Clock::time_point now) {
  std::vector<http::StreamId> ids;
  for (const auto& [id, x] : exchanges_) ids.push_back(id);
  for (http::StreamId id : ids) {
    Exchange* x = find(id);
    if (x == nullptr) continue;
    if (x->up && upstream_) upstream_->cancel(*x->up);
    x->error = std::string(error);
    x->verdict.detail = detail;
    record(*x, now);
    forget(*x);
  }
  waiting_.clear();
}

void HttpLayer::flush(Commands& out) {
  for (auto& e : pending_events_) out.push_back(Emit{std::move(e)});
  pending_events_.clear();
  if (upstream_ && upstream_->has_output())
    if (auto bytes = upstream_->take_output(); !bytes.empty()) out.push_back(Send{Side::upstream, std::move(bytes)});
  if (!guest_closed_ && guest_->has_output())
    if (auto bytes = guest_->take_output(); !bytes.empty()) out.push_back(Send{Side::guest, std::move(bytes)});
}

void HttpLayer::check_closes(Commands& out) {
  if (guest_closed_ || tunnel_) return;
  if (guest_->wants_reset()) {
    guest_closed_ = true;
    out.push_back(Close{Side::guest, true});
    drop_upstream(out, true);
    return;
  }
  const bool idle = exchanges_.empty();
  if (idle && (guest_->wants_close() || guest_eof_)) {
    guest_closed_ = true;
    out.push_back(Close{Side::guest, false});
    if (reusable_upstream())
      release_upstream(out);
    else if (upstream_state_ != Upstream::none)
      drop_upstream(out, false);
  }
}

}  // namespace airlock::mitm
