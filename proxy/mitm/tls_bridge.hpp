// TlsBridge: TLS terminated toward the guest and originated toward the upstream, with the
// HTTP layer in between seeing plaintext only.
//
// Theory of operation. Built from the guest's ClientHello (already parsed by the flow
// layer) with a leaf minted for its SNI (or the flow's name) and signed by the VM's CA.
// The guest's handshake completes first, on its own: nothing is dialled for it. ALPN
// toward the guest is ours to choose (h2 when offered and enabled, else http/1.1), and
// decides the HTTP layer's guest codec. A flow refused by its SNI (a name other than the
// one the guest resolved, or one the policy refuses) gets the handshake and then an
// access_denied alert: it carries nothing.
// The layer above asks for the upstream with Open{alpn}; the bridge passes Open to the
// driver, and when the TCP connection is up starts TLS on it: SNI and certificate check
// for the flow's name, verification against the host's trust store (and the policy's
// upstream_ca_file), the ALPN list the HTTP layer can speak. Only once that handshake is
// done does the layer above hear Connected{alpn}; a failure (a certificate that doesn't
// verify, a reset or close mid-handshake) becomes ConnectFailed{upstream_tls_failed}. A
// closed upstream is forgotten, so the next Open dials and handshakes afresh.
// Plaintext the layer above sends is encrypted; its graceful Close becomes close_notify
// then FIN. Reading pauses while the layer above wants no more (backpressure), and at
// most kMaxPlaintextStep bytes are decrypted per step.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "proxy/mitm/context.hpp"
#include "proxy/mitm/layer.hpp"
#include "proxy/tls/client_hello.hpp"
#include "proxy/tls/endpoint.hpp"

namespace airlock::mitm {

class TlsBridge final : public Layer {
 public:
  static constexpr std::size_t kMaxPlaintextStep = 256 * 1024;

  struct Refusal {
    std::string reason;
    std::string detail;
  };

  // `first` is the guest's bytes so far (the ClientHello and whatever followed).
  TlsBridge(std::shared_ptr<MitmContext> context, FlowTarget flow, const tls::ClientHello& hello,
            Bytes first, std::optional<Refusal> refusal);
  ~TlsBridge() override;

  void handle(Event event, Clock::time_point now, Commands& out) override;
  std::optional<Clock::time_point> deadline() const override;
  bool wants(Side side) const override;
  bool pending(Side side) const override;

 private:
  void pump_guest(Clock::time_point now, Commands& out);
  void pump_upstream(Clock::time_point now, Commands& out);
  // Runs an event through the layer above and carries out (or rewrites) its commands.
  void to_child(Event event, Clock::time_point now, Commands& out);
  void encrypt(tls::TlsEndpoint& tls, Side side, Bytes& plain, Commands& out);
  void fail_guest(std::string detail, Commands& out);
  void drop_upstream();

  std::shared_ptr<MitmContext> context_;
  FlowTarget flow_;
  std::string leaf_name_;
  std::optional<Refusal> refusal_;
  std::unique_ptr<tls::TlsEndpoint> guest_;
  std::shared_ptr<const certs::LeafMinter::Leaf> leaf_;
  Bytes guest_cipher_;
  bool guest_established_ = false;
  bool guest_eof_delivered_ = false;
  bool dead_ = false;
  std::unique_ptr<Layer> child_;
  // Upstream.
  std::vector<std::string> alpn_offer_;
  std::shared_ptr<tls::TlsEndpoint> upstream_;  // shared: a pooled connection carries it
  Bytes upstream_cipher_;
  Bytes upstream_plain_;        // from the layer above, before the handshake is done
  bool upstream_open_ = false;  // an Open is under way or done
  bool upstream_established_ = false;
  bool upstream_eof_delivered_ = false;
};

}  // namespace airlock::mitm
