// MitmSession: one intercepted guest TCP flow, from its first byte to its close. Sans-IO.
//
// Theory of operation. The flow arrives connected upstream (the engine dialled the name
// the guest resolved, through the IP guard). The session
//   1. classifies the guest's first bytes (bounded, tls::classify_first_bytes): a TLS
//      ClientHello, an HTTP/1.x request, or opaque. A client that says nothing for
//      classify_timeout is opaque (server-first protocols).
//   2. TLS: parses the ClientHello (SNI, ALPN), mints a leaf for the SNI (or the flow's
//      name) and terminates the guest's TLS on memory BIOs while it opens TLS upstream
//      (SNI, verification against the trust store or upstream_ca_file, ALPN http/1.1).
//      An SNI that differs from the flow's name, or names a host the policy refuses,
//      gets the handshake and then an alert: the flow carries nothing.
//   3. HTTP (inside TLS or plain): an HttpPipeline judges and forwards each request.
//   4. Opaque: passes through only when the allow rule that let the flow in names its
//      port explicitly ("host:port"); otherwise it is reset with opaque_not_allowed.
// Inputs are bytes and EOFs from both sides and the time; outputs are bytes for each
// side, how each side should close, and audit events (objects for "network" events).
// Upstream failures before any answer become a 502 to the guest's request.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "proxy/mitm/context.hpp"
#include "proxy/mitm/http_pipeline.hpp"
#include "proxy/tls/client_hello.hpp"
#include "proxy/tls/endpoint.hpp"

namespace airlock::mitm {

class MitmSession {
 public:
  static constexpr std::size_t kMaxFirstBytes = 32 * 1024;
  static constexpr std::size_t kMaxPendingGuest = 256 * 1024;

  // `flow.tls` and `flow.sni` are filled in by the session. `opaque_allowed`: the allow
  // rule names the port explicitly.
  MitmSession(std::shared_ptr<MitmContext> context, FlowTarget flow, bool opaque_allowed,
              Clock::time_point now);

  void on_guest(std::span<const std::uint8_t> bytes, Clock::time_point now);
  void on_guest_eof(Clock::time_point now);
  void on_upstream(std::span<const std::uint8_t> bytes, Clock::time_point now);
  void on_upstream_eof(Clock::time_point now);
  void on_upstream_error(std::string detail, Clock::time_point now);
  void on_timer(Clock::time_point now);
  // The flow is over (either side): requests still waiting get their events.
  void on_closed(Clock::time_point now);
  std::optional<Clock::time_point> next_deadline() const;

  Bytes take_to_guest();
  Bytes take_to_upstream();
  std::size_t pending_to_guest() const { return to_guest_.size(); }
  std::deque<nlohmann::json>& events() { return events_; }
  CloseHow guest_close() const { return guest_close_; }
  CloseHow upstream_close() const { return upstream_close_; }
  // Whether the driver should keep reading the guest (false while plaintext waits).
  bool wants_guest_data() const;
  std::string_view protocol() const;

 private:
  enum class State : std::uint8_t { classifying, tls, http, opaque, closed };

  void classify(Clock::time_point now);
  void start_tls(const tls::ClientHello& hello, Clock::time_point now);
  void start_http(Clock::time_point now);
  void start_opaque(Clock::time_point now);
  void refuse_flow(std::string_view why, std::string detail, CloseHow how);
  void pump(Clock::time_point now);
  bool drain_pipeline(Clock::time_point now);  // true when bytes moved
  bool upstream_ready() const;

  std::shared_ptr<MitmContext> context_;
  FlowTarget flow_;
  bool opaque_allowed_;
  Clock::time_point started_;
  State state_ = State::classifying;
  Bytes first_;
  std::unique_ptr<tls::TlsEndpoint> guest_tls_;
  std::unique_ptr<tls::TlsEndpoint> upstream_tls_;
  std::shared_ptr<const certs::LeafMinter::Leaf> leaf_;
  Bytes guest_cipher_;     // guest ciphertext the TLS endpoint hasn't taken yet
  Bytes upstream_cipher_;  // likewise from upstream
  bool guest_established_ = false;
  bool upstream_established_ = false;
  std::optional<std::pair<std::string, std::string>> refusal_;  // reason, detail
  std::optional<std::string> upstream_failure_;
  bool failure_delivered_ = false;
  bool guest_notified_ = false;
  bool upstream_notified_ = false;
  std::string_view protocol_ = "pending";
  std::unique_ptr<HttpPipeline> pipeline_;
  Bytes guest_plain_;      // guest plaintext the pipeline hasn't taken yet
  bool guest_eof_ = false;
  bool guest_eof_delivered_ = false;
  bool upstream_eof_ = false;
  bool upstream_eof_delivered_ = false;
  Bytes to_guest_, to_upstream_;
  std::deque<nlohmann::json> events_;
  CloseHow guest_close_ = CloseHow::none;
  CloseHow upstream_close_ = CloseHow::none;
  std::string sni_text_;
};

}  // namespace airlock::mitm
