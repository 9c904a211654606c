// HttpPipeline: HTTP/1.1 proxying of one intercepted flow's plaintext, both directions.
//
// Theory of operation. Guest bytes go through http::RequestParser, which stops after
// each request head so the RequestJudge can decide before any of its body moves:
//   - allowed: the head is re-serialised toward upstream (origin-form, placeholders
//     swapped) and the body follows as it arrives, never whole in memory. When a secret
//     may be swapped into the body its length can change: a chunked body is re-framed
//     anyway, a Content-Length body up to kMaxBufferedBody is held and re-counted (a
//     client waiting for 100-continue gets it from the proxy), and a larger one streams
//     unchanged with its length, scanned only (a placeholder in it stops the request with
//     secret_body_too_large). Bodies to other hosts are only scanned (same length,
//     framing kept). A placeholder found in a body bound elsewhere aborts the request
//     upstream and answers 403 secret_leak; the placeholder itself never leaves.
//   - refused: what the guest sends afterwards is read and dropped; once every earlier
//     response has been delivered (pipelining keeps order) the guest gets a 403 with a
//     JSON body {error, reason, host} and the connection closes.
// `Expect: 100-continue` is always answered by the proxy (in order, once earlier
// responses are out) and never forwarded, so an origin can't be made to read a body as a
// new request that was never judged; for the same reason a connection whose origin
// answered before the request body ended is not reused.
// Upstream bytes are forwarded to the guest (through a ResponseScrubber on flows a secret
// may reach, so an echoed real value goes back as its placeholder) while
// http::ResponseParser finds
// where each response ends (HEAD, 1xx, 204/304, read-until-close) to close each request's
// record: one network event per request with status, body bytes each way and duration.
// An Upgrade request (WebSocket only), once allowed and answered 101, turns the flow into
// a raw tunnel; a 101 nobody asked for ends the flow. Every request gets its event, also
// those cut short by a failing upstream or the flow's end (abort_all).
// Smuggling shapes are refused by the parsers (400 bad_request), not guessed at.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/secret_store.hpp"
#include "proxy/http/request_parser.hpp"
#include "proxy/http/response_parser.hpp"
#include "proxy/mitm/judge.hpp"
#include "proxy/mitm/response_scrubber.hpp"

namespace airlock::mitm {

using Clock = std::chrono::steady_clock;
using Bytes = std::vector<std::uint8_t>;

enum class CloseHow : std::uint8_t { none, graceful, reset };

class HttpPipeline {
 public:
  static constexpr std::size_t kMaxBufferedBody = 1u << 20;

  HttpPipeline(const RequestJudge& judge, const policy::SecretStore& secrets, FlowTarget flow);

  // Guest plaintext. Returns how many bytes were taken; the rest must be offered again
  // later (the pipeline is waiting for a response before it can refuse, or for 101).
  std::size_t on_guest(std::span<const std::uint8_t> bytes, Clock::time_point now);
  void on_upstream(std::span<const std::uint8_t> bytes, Clock::time_point now);
  void on_guest_eof(Clock::time_point now);
  void on_upstream_eof(Clock::time_point now);
  // The upstream connection failed before or while answering (TLS verification, reset).
  void on_upstream_failed(std::string_view why, std::string detail, Clock::time_point now);
  // The flow is gone: every request still waiting gets its event (blocked, `why`).
  void abort_all(std::string_view why, Clock::time_point now);

  Bytes& to_guest() { return to_guest_; }
  Bytes& to_upstream() { return to_upstream_; }
  std::deque<nlohmann::json>& events() { return events_; }
  CloseHow guest_close() const { return guest_close_; }
  CloseHow upstream_close() const { return upstream_close_; }
  bool tunnel() const { return tunnel_; }
  std::size_t requests() const { return requests_; }

 private:
  struct Exchange {
    std::string method;
    Verdict verdict;
    Clock::time_point started;
    std::uint64_t request_bytes = 0;
    std::uint64_t response_bytes = 0;
    int status = 0;
    bool response_started = false;
    bool upgrade = false;
    bool answered = false;  // the final response came before the request's body ended
  };
  enum class BodyOut : std::uint8_t { none, raw, chunked, buffered };

  void on_request_head(http::RequestHead head, Clock::time_point now);
  void on_request_body(std::span<const std::uint8_t> data);
  void on_request_complete();
  void send_body(std::span<const std::uint8_t> data);
  void emit(const Exchange& x, Clock::time_point now);
  void flush_pending_refusal(Clock::time_point now);
  // The exchange the next response bytes belong to: the oldest in flight, else the one
  // whose body is still arriving (a server may answer early, e.g. 413).
  Exchange* responding();
  // Upstream bytes on their way to the guest, through the scrubber when there is one.
  void forward(std::span<const std::uint8_t> bytes);
  // After forward(): records scrubbed secrets, or cuts the flow when one was echoed.
  bool check_scrubber(Clock::time_point now);
  // Emits each in-flight exchange as cut short (blocked, `why`) and forgets them.
  void drop_in_flight(std::string_view why, const std::string& detail, Clock::time_point now);
  void append(Bytes& out, std::string_view text);

  const RequestJudge& judge_;
  const policy::SecretStore& secrets_;
  FlowTarget flow_;
  http::RequestParser requests_parser_;
  http::ResponseParser responses_parser_;
  std::deque<Exchange> in_flight_;
  std::optional<Exchange> refused_;     // waits for in_flight_ to drain
  std::optional<Exchange> current_;     // the request whose body is being read (allowed)
  std::optional<policy::BodySubstituter> substituter_;
  std::optional<ResponseScrubber> scrubber_;  // TLS flows to a secret's host
  std::size_t scrubbed_seen_ = 0;
  BodyOut body_out_ = BodyOut::none;
  http::RequestHead held_head_;         // buffered mode: the head waits for the body
  Bytes held_body_;
  bool stop_reading_ = false;           // refused, failed, or waiting for 101
  bool scan_only_large_ = false;        // a body too large to re-count: scanned, not swapped
  bool discard_guest_ = false;          // refused: later guest bytes are dropped
  bool pending_continue_ = false;       // a 100 Continue waits for earlier responses
  bool awaiting_upgrade_ = false;
  bool tunnel_ = false;
  bool guest_eof_ = false;
  bool close_after_response_ = false;
  std::size_t requests_ = 0;
  Bytes to_guest_, to_upstream_;
  std::deque<nlohmann::json> events_;
  CloseHow guest_close_ = CloseHow::none;
  CloseHow upstream_close_ = CloseHow::none;
};

// The JSON body of a refusal: {"error","reason","host"}.
nlohmann::json refusal_body(std::string_view reason, const std::string& host);

}  // namespace airlock::mitm
