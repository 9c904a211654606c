// HttpLayer: HTTP proxying of one intercepted flow's plaintext, whatever the two sides
// speak (HTTP/1.1 or HTTP/2 toward the guest, HTTP/1.1 or HTTP/2 toward the origin).
//
// Theory of operation. The guest's codec (proxy/http/h1_codec.hpp,
// proxy/http2/h2_codec.hpp) turns the guest's bytes into requests; each request is an
// exchange, judged by the RequestJudge before any byte of its body moves:
//   - refused: the guest gets 403 (400 for a malformed request) with a JSON body
//     {error, reason, host}; on HTTP/1.1 the connection ends after it (later requests on
//     it were never judged), on HTTP/2 only that stream ends.
//   - allowed: the exchange waits for an upstream connection. There is none until the
//     first allowed request: then Open goes to the driver (the TLS bridge adds TLS), and
//     an origin that closed an idle connection is dialled again for the next request
//     (an idempotent request without a body that met a keep-alive race is retried once).
//     The head goes out re-serialised by the upstream's codec; the body follows as it
//     arrives through a SecretRewriter with the flow's request MatchSet: placeholders
//     swapped where authorized, any secret bound elsewhere (placeholder or real value)
//     stops the request: the upstream stream is cancelled and the guest gets 403
//     secret_leak. A body whose length may change is re-framed (HTTP/2, chunked) or, on
//     HTTP/1.1 under a Content-Length, held whole up to max_buffered_body and re-counted;
//     a larger one streams unchanged and may carry no placeholder at all
//     (secret_body_too_large).
// Responses. On a flow to a host some secret may reach (its real value may be echoed
// back), the response is scrubbed as a message, never as wire bytes: the head's reason,
// header names and values, the body after transfer framing and after content coding
// (ContentDecoder: gzip, deflate, br, zstd, stacked; an unknown coding can't be made
// safe), and trailers, each through a SecretRewriter with the response MatchSet (real
// value -> placeholder). The decoded body goes to the guest without Content-Encoding,
// with honest framing: a known length when the body was small enough to hold, else
// streamed. A response that can't be made safe (an encoded form of a value, an unknown
// coding, corrupt compressed data) is ended: 502 if nothing of it went out yet, else the
// stream is reset (HTTP/2 RST_STREAM, HTTP/1.1 the connection) - never a second status
// line. On other flows HTTP/1.1 responses pass through as the origin's bytes.
// `Expect: 100-continue` is always answered by the proxy and never forwarded. A WebSocket
// upgrade, once allowed and answered 101, turns the flow into a tunnel; on a flow a secret
// may reach, its frames from the origin are scrubbed message by message
// (WebSocketScrubber) and no extension is let through.
// Every request ends with exactly one `network` request event, also those refused, cut
// short (error: upstream_failed, connect_failed, guest_closed, ...) or never answered.
#pragma once

#include <deque>
#include <map>
#include <memory>

#include "policy/secret_scan.hpp"
#include "proxy/http/codec.hpp"
#include "proxy/mitm/context.hpp"
#include "proxy/mitm/layer.hpp"
#include "proxy/mitm/websocket_scrubber.hpp"

namespace airlock::mitm {

class HttpLayer final : public Layer {
 public:
  // Output produced per event at most before yielding to the driver (resumed at Drained).
  static constexpr std::size_t kStepBudget = 1u << 20;
  // Guest body bytes waiting for an upstream, and origin bytes waiting to be decoded,
  // above which the driver stops reading that side.
  static constexpr std::size_t kMaxWaiting = 1u << 20;
  // An upstream connection idle this long goes back to the pool (Release).
  static constexpr std::chrono::milliseconds kReleaseAfter{250};

  HttpLayer(std::shared_ptr<MitmContext> context, FlowTarget flow, std::unique_ptr<http::GuestCodec> guest);
  ~HttpLayer() override;

  void handle(Event event, Clock::time_point now, Commands& out) override;
  bool wants(Side side) const override;
  bool pending(Side side) const override;
  std::optional<Clock::time_point> deadline() const override;

 private:
  struct Exchange;
  enum class Upstream : std::uint8_t { none, opening, ready };

  void on_guest_events(std::vector<http::GuestEvent>& events, Clock::time_point now, Commands& out);
  void on_upstream_events(std::vector<http::UpstreamEvent>& events, Clock::time_point now, Commands& out);
  void on_request(http::RequestStart start, Clock::time_point now, Commands& out);
  void on_request_body(Exchange& x, http::Bytes data, Clock::time_point now, Commands& out);
  void on_request_end(Exchange& x, Clock::time_point now, Commands& out);
  void refuse_body(Exchange& x, const policy::Finding& found, std::size_t credit, Clock::time_point now,
                   Commands& out);
  void on_response_head(Exchange& x, http::ResponseHead head, bool end_stream, Clock::time_point now,
                        Commands& out);
  void on_response_body(Exchange& x, http::ResponseBody body, Clock::time_point now, Commands& out);
  void on_response_end(Exchange& x, http::Trailers trailers, Clock::time_point now, Commands& out);
  void on_upgrade(Exchange& x, Clock::time_point now, Commands& out);
  // Bytes across the tunnel after a WebSocket upgrade (scrubbed toward the guest).
  void tunnel_data(Side from, http::Bytes bytes, Commands& out);
  // Decodes and scrubs what waits in x.encoded, within `budget` output bytes.
  bool drain_response(Exchange& x, std::size_t& budget, Clock::time_point now, Commands& out);
  void finish_response(Exchange& x, Clock::time_point now);

  void try_start(Commands& out);
  void start(Exchange& x);
  void send_body(Exchange& x, http::Bytes bytes);
  void on_connect_failed(const ConnectFailed& failure, Clock::time_point now, Commands& out);
  void on_upstream_closed(bool reset, const std::string& detail, Clock::time_point now, Commands& out);
  void drop_upstream(Commands& out, bool reset);
  bool reusable_upstream() const;
  void release_upstream(Commands& out);
  // The upstream connection is gone: its exchanges fail, or (closed, idempotent, nothing
  // received) go again on a new one.
  void lose_upstream(bool closed, const std::string& detail, Clock::time_point now, Commands& out);

  // Ends exchange x: refused (403/400) with the policy's reason.
  void refuse(Exchange& x, int status, std::string_view reason, std::string detail, Clock::time_point now);
  // The request was cut short: an error response when nothing went out, else a reset.
  void fail(Exchange& x, std::string_view error, std::string detail, Clock::time_point now);
  // A response that can't be made safe.
  void cut(Exchange& x, std::string_view reason, std::string detail, Clock::time_point now);
  void respond_error(Exchange& x, int status, std::string_view reason);
  void record(Exchange& x, Clock::time_point now);
  void forget(Exchange& x);
  Exchange* find(http::StreamId guest_stream);
  Exchange* by_upstream(http::StreamId upstream_stream);
  void abort_all(std::string_view error, const std::string& detail, Clock::time_point now);
  void flush(Commands& out);
  void check_closes(Commands& out);

  std::shared_ptr<MitmContext> context_;
  FlowTarget flow_;
  std::unique_ptr<http::GuestCodec> guest_;
  std::unique_ptr<http::UpstreamCodec> upstream_;
  Upstream upstream_state_ = Upstream::none;
  std::string upstream_alpn_;
  std::uint64_t upstream_served_ = 0;   // exchanges completed on the current connection
  std::shared_ptr<const policy::MatchSet> request_set_;
  std::shared_ptr<const policy::MatchSet> scan_only_set_;
  std::shared_ptr<const policy::MatchSet> response_set_;  // null: no scrubbing on this flow
  bool swaps_ = false;                  // some secret is swapped into requests here
  std::map<http::StreamId, std::unique_ptr<Exchange>> exchanges_;
  std::map<http::StreamId, http::StreamId> by_upstream_;  // upstream stream -> guest stream
  std::deque<http::StreamId> waiting_;  // allowed, not yet started upstream, in order
  http::StreamId discard_after_ = 0;    // HTTP/1.1 after a refusal: later requests ignored
  bool discarding_ = false;
  bool guest_eof_ = false;
  bool guest_closed_ = false;           // Close{guest} went out
  bool upstream_closed_sent_ = false;
  bool tunnel_ = false;
  bool tunnel_failed_ = false;
  std::optional<WebSocketScrubber> ws_scrubber_;
  bool more_ = false;                   // response bytes wait for the guest to drain
  std::optional<Clock::time_point> release_at_;  // the idle upstream goes to the pool then
  std::vector<audit::HttpRequest> pending_events_;
  Counters& counters_;
};

// The JSON body of a refusal: {"error","reason","host"}.
nlohmann::json refusal_body(std::string_view reason, const std::string& host);

}  // namespace airlock::mitm
