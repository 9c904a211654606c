// FlowLayer: the root of every intercepted flow. It decides from the guest's first bytes
// what the flow carries and hands it to the layer for that.
//
// Theory of operation. The flow was admitted (policy::PolicyEngine::admit) with a grant:
// the host and port it may reach and the rule that let it in. Nothing is dialled yet.
// The first bytes (bounded: at most kMaxFirstBytes) are classified:
//   - a TLS ClientHello -> TlsBridge. Its SNI must name the flow's host (else
//     sni_host_mismatch) and a host the policy allows on this port; a refused SNI still
//     gets its handshake, then an alert;
//   - an HTTP/1.x request -> HttpLayer over plaintext (the HTTP/1.1 guest codec);
//   - the HTTP/2 connection preface in cleartext -> refused (h2c_refused);
//   - anything else: a tunnel when the grant lets opaque bytes through (its rule names
//     the port), else refused with opaque_not_allowed and reset.
// Server-first protocols (SSH, SMTP) send nothing until the server has: so on a flow whose
// grant lets opaque bytes through, the upstream is dialled at once, and whoever speaks
// first decides - the origin's banner makes the flow a tunnel, the client's first bytes
// are classified as above. No clock decides, so a slow guest (TCG, a busy host) is never
// taken for a silent one. An early connection the layer above then wants is handed to it
// (Connected, without a second dial); one the origin closed before it was used is
// forgotten and the layer above dials afresh.
// A flow refused here records why in its Note; a malformed ClientHello is refused with
// bad_client_hello.
#pragma once

#include <memory>

#include "policy/engine.hpp"
#include "proxy/mitm/context.hpp"
#include "proxy/mitm/layer.hpp"

namespace airlock::mitm {

class FlowLayer final : public Layer {
 public:
  static constexpr std::size_t kMaxFirstBytes = 32 * 1024;

  FlowLayer(std::shared_ptr<MitmContext> context, const policy::Grant& grant);
  ~FlowLayer() override;

  void handle(Event event, Clock::time_point now, Commands& out) override;
  std::optional<Clock::time_point> deadline() const override;

  // The upstream dialled early (opaque-allowed flows), as far as the layer above knows.
  enum class Early : std::uint8_t { none, dialling, connected };
  bool wants(Side side) const override;
  bool pending(Side side) const override;

 private:
  void classify(Clock::time_point now, Commands& out);
  void become(std::unique_ptr<Layer> child, std::string_view protocol, Clock::time_point now, Commands& out);
  void refuse(std::string_view protocol, std::string_view why, std::string detail, bool reset, Commands& out);
  // Runs an event through the child, answering its Open from the early connection.
  void to_child(Event event, Clock::time_point now, Commands& out);

  std::shared_ptr<MitmContext> context_;
  FlowTarget flow_;
  bool opaque_allowed_;
  Bytes first_;
  std::unique_ptr<Layer> child_;
  bool done_ = false;
  Early early_ = Early::none;
  bool child_opened_ = false;  // the child asked for its upstream
};

}  // namespace airlock::mitm
