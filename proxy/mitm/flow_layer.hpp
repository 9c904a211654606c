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
//   - anything else, or a client silent for classify_timeout (server-first protocols
//     such as SSH): a tunnel when the grant lets opaque bytes through (its rule names the
//     port), else refused with opaque_not_allowed and reset.
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
  bool wants(Side side) const override;
  bool pending(Side side) const override;

 private:
  void classify(Clock::time_point now, Commands& out);
  void become(std::unique_ptr<Layer> child, std::string_view protocol, Clock::time_point now, Commands& out);
  void refuse(std::string_view protocol, std::string_view why, std::string detail, bool reset, Commands& out);

  std::shared_ptr<MitmContext> context_;
  FlowTarget flow_;
  bool opaque_allowed_;
  Bytes first_;
  std::optional<Clock::time_point> started_;
  std::unique_ptr<Layer> child_;
  bool done_ = false;
};

}  // namespace airlock::mitm
