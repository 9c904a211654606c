// HTTP/1.1 proxying of an intercepted flow; see http_pipeline.hpp.
#include "proxy/mitm/http_pipeline.hpp"

#include <variant>

#include "proxy/http/serialize.hpp"

namespace airlock::mitm {

namespace {

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

}  // namespace

nlohmann::json refusal_body(std::string_view reason, const std::string& host) {
  return {{"error", "blocked by airlock policy"}, {"reason", std::string(reason)}, {"host", host}};
}

HttpPipeline::HttpPipeline(const RequestJudge& judge, const policy::SecretStore& secrets,
                           FlowTarget flow)
    : judge_(judge), secrets_(secrets), flow_(std::move(flow)) {
  if (flow_.tls) {
    scrubber_.emplace(secrets_, flow_.host, flow_.port);
    if (!scrubber_->active()) scrubber_.reset();
  }
}

void HttpPipeline::forward(std::span<const std::uint8_t> bytes) {
  if (scrubber_)
    scrubber_->feed(bytes, to_guest_);
  else
    to_guest_.insert(to_guest_.end(), bytes.begin(), bytes.end());
}

bool HttpPipeline::check_scrubber(Clock::time_point now) {
  if (!scrubber_) return true;
  if (scrubber_->echoed()) {
    // The value can't be replaced in place: the response is cut here.
    on_upstream_failed(reason::secret_echo, "secret " + *scrubber_->echoed() + " echoed in a response", now);
    guest_close_ = CloseHow::reset;
    return false;
  }
  if (scrubber_->scrubbed().size() != scrubbed_seen_) {
    scrubbed_seen_ = scrubber_->scrubbed().size();
    if (Exchange* x = responding())
      for (const auto& name : scrubber_->scrubbed()) x->verdict.swaps.push_back({name, "response"});
  }
  return true;
}

void HttpPipeline::append(Bytes& out, std::string_view text) {
  out.insert(out.end(), text.begin(), text.end());
}

std::size_t HttpPipeline::on_guest(std::span<const std::uint8_t> bytes, Clock::time_point now) {
  if (tunnel_) {
    to_upstream_.insert(to_upstream_.end(), bytes.begin(), bytes.end());
    return bytes.size();
  }
  if (discard_guest_) return bytes.size();  // refused: the connection ends after the answer
  std::size_t taken = 0;
  std::vector<http::RequestEvent> events;
  while (taken < bytes.size() && !stop_reading_) {
    events.clear();
    const std::size_t n = requests_parser_.feed(bytes.subspan(taken), events);
    taken += n;
    for (auto& event : events) {
      if (auto* head = std::get_if<http::RequestHeadEvent>(&event)) {
        on_request_head(std::move(head->head), now);
      } else if (auto* body = std::get_if<http::BodyEvent>(&event)) {
        if (current_) on_request_body(body->data);
      } else if (std::holds_alternative<http::MessageCompleteEvent>(event)) {
        if (current_) on_request_complete();
      } else if (std::holds_alternative<http::UpgradeEvent>(event)) {
        // The head went upstream (or was refused); bytes after it wait for the 101.
        if (current_) on_request_complete();
        if (!refused_) awaiting_upgrade_ = true;
        stop_reading_ = true;
      } else if (auto* error = std::get_if<http::ParseErrorEvent>(&event)) {
        stop_reading_ = true;
        discard_guest_ = true;
        if (current_) {
          // A broken body mid-request: the upstream request can't be finished cleanly,
          // and nothing more comes back on the reset connection.
          upstream_close_ = CloseHow::reset;
          if (!current_->answered) in_flight_.push_back(std::move(*current_));
          current_.reset();
          drop_in_flight(reason::bad_request, "the request broke off mid-body", now);
        }
        Exchange x;
        x.method = "";
        x.verdict.host = flow_.host.to_string();
        x.verdict.url = event_url(flow_.tls, x.verdict.host, flow_.port, "/");
        x.verdict.rule = flow_.rule;
        x.verdict.reason = std::string(reason::bad_request);
        x.verdict.detail = error->reason;
        x.started = now;
        refused_ = std::move(x);
        flush_pending_refusal(now);
      }
      if (stop_reading_) break;
    }
    if (n == 0 && events.empty()) break;
  }
  return taken;
}

void HttpPipeline::on_request_head(http::RequestHead head, Clock::time_point now) {
  ++requests_;
  Exchange x;
  x.method = head.method;
  x.started = now;
  x.upgrade = head.upgrade;
  x.verdict = judge_.judge(flow_, head);
  if (!x.verdict.allowed) {
    stop_reading_ = true;
    discard_guest_ = true;
    refused_ = std::move(x);
    flush_pending_refusal(now);
    return;
  }
  // Hop-by-hop headers meant for a proxy never go upstream, nor an upgrade the parser did
  // not take as one (h2c and the like would become an unjudged tunnel).
  http::remove_headers(head.headers, "proxy-connection");
  http::remove_headers(head.headers, "proxy-authorization");
  if (!head.upgrade) {
    http::remove_headers(head.headers, "upgrade");
    http::remove_headers(head.headers, "http2-settings");
  }
  // 100-continue is the proxy's to answer: an origin that answers early and then reads
  // the body as a new request must never see one.
  if (head.expect_continue) {
    http::remove_headers(head.headers, "expect");
    if (in_flight_.empty())
      append(to_guest_, "HTTP/1.1 100 Continue\r\n\r\n");
    else
      pending_continue_ = true;
  }

  const bool has_body = head.chunked || head.content_length.value_or(0) > 0;
  substituter_.reset();
  scan_only_large_ = false;
  body_out_ = BodyOut::none;
  if (has_body) {
    body_out_ = head.chunked ? BodyOut::chunked : BodyOut::raw;
    if (!secrets_.entries().empty()) {
      const bool may_grow = judge_.host_has_secrets(flow_);
      if (head.chunked || !may_grow) {
        // Chunked bodies are re-framed anyway; elsewhere nothing is swapped, so the scan
        // for leaks keeps the length.
        substituter_.emplace(secrets_, flow_.host, flow_.port, flow_.tls);
      } else if (*head.content_length <= kMaxBufferedBody) {
        // Swapping changes the length: hold the head until the body is in and re-count.
        substituter_.emplace(secrets_, flow_.host, flow_.port, flow_.tls);
        body_out_ = BodyOut::buffered;
      } else {
        // Too large to hold, and re-framing as chunked breaks servers that want a length:
        // streamed as is, and a placeholder in it stops the request (scan with no
        // authorisation: every placeholder counts).
        substituter_.emplace(secrets_, flow_.host, flow_.port, false);
        scan_only_large_ = true;
      }
    }
  }
  responses_parser_.expect_response_to(head.method);
  if (!head.keep_alive) close_after_response_ = true;
  if (body_out_ == BodyOut::buffered) {
    held_head_ = head;  // serialised once the body's new length is known
    held_body_.clear();
  } else {
    append(to_upstream_, http::serialize_request_head(head));
  }
  current_ = std::move(x);
  if (!has_body && !head.upgrade) on_request_complete();
  else if (!has_body && head.upgrade) {
    // Completed by the UpgradeEvent that follows.
  }
}

void HttpPipeline::send_body(std::span<const std::uint8_t> data) {
  if (data.empty()) return;
  current_->request_bytes += data.size();
  switch (body_out_) {
    case BodyOut::raw:
      to_upstream_.insert(to_upstream_.end(), data.begin(), data.end());
      break;
    case BodyOut::chunked:
      append(to_upstream_, http::chunk_frame(data));
      break;
    case BodyOut::buffered:
      held_body_.insert(held_body_.end(), data.begin(), data.end());
      break;
    case BodyOut::none:
      break;
  }
}

void HttpPipeline::on_request_body(std::span<const std::uint8_t> data) {
  if (!substituter_) {
    send_body(data);
    return;
  }
  Bytes out;
  substituter_->feed(data, out);
  if (substituter_->leaked()) {
    // Abort upstream mid-request: the bytes held back contain the placeholder and never
    // leave; the guest gets the refusal.
    Exchange x = std::move(*current_);
    current_.reset();
    x.verdict.allowed = false;
    x.verdict.reason = std::string(scan_only_large_ ? reason::secret_body_too_large : reason::secret_leak);
    x.verdict.detail = "secret " + *substituter_->leaked() + " in the body";
    x.verdict.swaps.clear();
    upstream_close_ = CloseHow::reset;
    stop_reading_ = true;
    discard_guest_ = true;
    const Clock::time_point started = x.started;
    // Nothing more can come back on the aborted connection.
    drop_in_flight(reason::upstream_failed, "aborted with a refused request", started);
    refused_ = std::move(x);
    flush_pending_refusal(started);
    return;
  }
  send_body(out);
}

void HttpPipeline::on_request_complete() {
  if (!current_) return;
  if (substituter_) {
    Bytes out;
    substituter_->finish(out);
    if (substituter_->leaked()) {
      on_request_body({});  // reports the leak
      return;
    }
    send_body(out);
    for (const auto& name : substituter_->swapped()) current_->verdict.swaps.push_back({name, "body"});
    substituter_.reset();
  }
  if (body_out_ == BodyOut::chunked) append(to_upstream_, http::last_chunk());
  if (body_out_ == BodyOut::buffered) {
    http::set_header(held_head_.headers, "Content-Length", std::to_string(held_body_.size()));
    append(to_upstream_, http::serialize_request_head(held_head_));
    to_upstream_.insert(to_upstream_.end(), held_body_.begin(), held_body_.end());
    held_body_.clear();
    held_head_ = {};
  }
  body_out_ = BodyOut::none;
  const bool answered = current_->answered;
  if (!answered) in_flight_.push_back(std::move(*current_));
  current_.reset();
  if (answered) {
    // The origin answered before the body ended: the connection's framing is no longer
    // something both sides agree on, so it ends here.
    stop_reading_ = true;
    discard_guest_ = true;
    guest_close_ = CloseHow::graceful;
    upstream_close_ = CloseHow::graceful;
  }
}

void HttpPipeline::drop_in_flight(std::string_view why, const std::string& detail,
                                  Clock::time_point now) {
  for (auto& x : in_flight_) {
    x.verdict.allowed = false;
    x.verdict.reason = std::string(why);
    x.verdict.detail = detail;
    emit(x, now);
  }
  in_flight_.clear();
}

void HttpPipeline::abort_all(std::string_view why, Clock::time_point now) {
  if (current_ && !current_->answered) in_flight_.push_front(std::move(*current_));
  current_.reset();
  drop_in_flight(why, "the flow ended before the response", now);
  if (refused_) {
    emit(*refused_, now);
    refused_.reset();
  }
}

HttpPipeline::Exchange* HttpPipeline::responding() {
  if (!in_flight_.empty()) return &in_flight_.front();
  if (current_ && !current_->answered) return &*current_;
  return nullptr;
}

void HttpPipeline::on_upstream(std::span<const std::uint8_t> bytes, Clock::time_point now) {
  if (tunnel_) {
    forward(bytes);
    check_scrubber(now);
    return;
  }
  std::size_t taken = 0;
  std::vector<http::ResponseEvent> events;
  while (taken < bytes.size()) {
    events.clear();
    const std::size_t n = responses_parser_.feed(bytes.subspan(taken), events);
    forward(bytes.subspan(taken, n));
    taken += n;
    if (!check_scrubber(now)) return;
    for (auto& event : events) {
      if (auto* head = std::get_if<http::ResponseHeadEvent>(&event)) {
        Exchange* x = responding();
        if (x == nullptr) continue;  // the parser refuses unsolicited responses
        x->response_started = true;
        if (!head->informational) x->status = head->head.status;
        if (!head->informational && !head->head.keep_alive) close_after_response_ = true;
      } else if (auto* body = std::get_if<http::ResponseBodyEvent>(&event)) {
        if (Exchange* x = responding()) x->response_bytes += body->bytes;
      } else if (std::holds_alternative<http::ResponseCompleteEvent>(event)) {
        if (scrubber_) scrubber_->flush(to_guest_);
        if (!in_flight_.empty()) {
          emit(in_flight_.front(), now);
          in_flight_.pop_front();
        } else if (current_ && !current_->answered) {
          // Answered before its body ended: recorded now, the rest of the body still
          // goes upstream (or the server closes).
          emit(*current_, now);
          current_->answered = true;
        }
        if (pending_continue_ && in_flight_.empty()) {
          pending_continue_ = false;
          append(to_guest_, "HTTP/1.1 100 Continue\r\n\r\n");
        }
        flush_pending_refusal(now);
        if (in_flight_.empty() && !current_ && (close_after_response_ || guest_eof_) && !refused_) {
          guest_close_ = CloseHow::graceful;
          upstream_close_ = CloseHow::graceful;
        }
      } else if (std::holds_alternative<http::ResponseUpgradeEvent>(event)) {
        if (in_flight_.empty() || !in_flight_.front().upgrade) {
          // A 101 (or 2xx to CONNECT) nobody asked for: never a tunnel.
          on_upstream_failed(reason::upstream_failed, "unsolicited protocol switch", now);
          guest_close_ = CloseHow::reset;  // its 101 head is already on the way
          return;
        }
        {
          in_flight_.front().status = 101;
          emit(in_flight_.front(), now);
          in_flight_.pop_front();
        }
        tunnel_ = true;
        awaiting_upgrade_ = false;
        stop_reading_ = false;
        // The rest of this read is already tunnel data.
        forward(bytes.subspan(taken));
        check_scrubber(now);
        return;
      } else if (auto* error = std::get_if<http::ResponseErrorEvent>(&event)) {
        on_upstream_failed(reason::upstream_failed, "bad response: " + error->reason, now);
        return;
      }
    }
    if (n == 0 && events.empty()) break;
  }
  if (awaiting_upgrade_ && in_flight_.empty()) {
    // The upgrade was answered with a final non-101 status: the flow ends there.
    guest_close_ = CloseHow::graceful;
    upstream_close_ = CloseHow::graceful;
  }
}

void HttpPipeline::on_guest_eof(Clock::time_point now) {
  guest_eof_ = true;
  if (tunnel_) {
    upstream_close_ = CloseHow::graceful;
    return;
  }
  if (current_) {
    // The guest stopped mid-body: that request can't complete.
    current_.reset();
    upstream_close_ = CloseHow::reset;
    guest_close_ = CloseHow::reset;
    return;
  }
  flush_pending_refusal(now);
  if (in_flight_.empty() && !refused_) {
    guest_close_ = CloseHow::graceful;
    upstream_close_ = CloseHow::graceful;
  }
}

void HttpPipeline::on_upstream_eof(Clock::time_point now) {
  if (scrubber_) scrubber_->flush(to_guest_);
  if (tunnel_) {
    guest_close_ = CloseHow::graceful;
    return;
  }
  std::vector<http::ResponseEvent> events;
  responses_parser_.finish(events);
  for (auto& event : events) {
    if (std::holds_alternative<http::ResponseCompleteEvent>(event) && !in_flight_.empty()) {
      emit(in_flight_.front(), now);
      in_flight_.pop_front();
    }
  }
  if (current_ && current_->answered) {
    // Answered (and recorded) already; the rest of its body has nowhere to go.
    current_.reset();
    discard_guest_ = true;
    stop_reading_ = true;
  }
  if (!in_flight_.empty() || current_) {
    on_upstream_failed(reason::upstream_failed, "upstream closed the connection", now);
    return;
  }
  flush_pending_refusal(now);
  if (!refused_) {
    guest_close_ = CloseHow::graceful;
    upstream_close_ = CloseHow::graceful;
  }
}

void HttpPipeline::on_upstream_failed(std::string_view why, std::string detail,
                                      Clock::time_point now) {
  upstream_close_ = CloseHow::reset;
  stop_reading_ = true;
  discard_guest_ = true;
  if (current_) {
    if (!current_->answered) in_flight_.push_back(std::move(*current_));
    current_.reset();
  }
  if (in_flight_.empty()) {
    // Nobody is waiting for an answer: the flow ends (with a pending refusal's 403).
    if (!refused_) guest_close_ = CloseHow::graceful;
    flush_pending_refusal(now);
    return;
  }
  Exchange x = std::move(in_flight_.front());
  in_flight_.pop_front();
  const bool answered = x.response_started;
  x.verdict.allowed = false;
  x.verdict.reason = std::string(why);
  x.verdict.detail = detail;
  if (!answered) {
    x.status = 502;
    append(to_guest_, http::error_response(502, phrase(502), refusal_body(why, x.verdict.host), true));
  }
  emit(x, now);
  // Requests behind it never reach an answer; a refusal queued behind them is recorded.
  drop_in_flight(why, "behind a failed request", now);
  if (refused_) {
    emit(*refused_, now);
    refused_.reset();
  }
  // Part of a response went out already: only a reset tells the guest.
  guest_close_ = answered ? CloseHow::reset : CloseHow::graceful;
}

void HttpPipeline::flush_pending_refusal(Clock::time_point now) {
  if (!refused_ || !in_flight_.empty() || current_) return;
  Exchange x = std::move(*refused_);
  refused_.reset();
  const int status = x.verdict.reason == reason::bad_request ? 400 : 403;
  x.status = status;
  append(to_guest_, http::error_response(status, phrase(status),
                                         refusal_body(x.verdict.reason, x.verdict.host), true));
  emit(x, now);
  guest_close_ = CloseHow::graceful;
  if (upstream_close_ == CloseHow::none) upstream_close_ = CloseHow::graceful;
}

void HttpPipeline::emit(const Exchange& x, Clock::time_point now) {
  nlohmann::json event = {
      {"kind", "request"},
      {"method", x.method},
      {"url", x.verdict.url},
      {"host", x.verdict.host},
      {"port", flow_.port},
      {"status_code", x.status},
      {"request_bytes", x.request_bytes},
      {"response_bytes", x.response_bytes},
      {"duration_ms", millis(x.started, now)},
      {"blocked", !x.verdict.allowed},
      {"rule", x.verdict.rule},
  };
  if (!x.verdict.allowed) event["block_reason"] = x.verdict.reason;
  if (!x.verdict.detail.empty()) event["detail"] = x.verdict.detail;
  if (!x.verdict.swaps.empty()) {
    nlohmann::json swaps = nlohmann::json::array();
    for (const auto& s : x.verdict.swaps) swaps.push_back({{"name", s.name}, {"location", s.location}});
    event["secrets"] = std::move(swaps);
  }
  events_.push_back(std::move(event));
}

}  // namespace airlock::mitm
