// TunnelLayer: bytes passed both ways unchanged, for opaque TCP that a rule naming the
// host:port lets through (databases, SSH, anything not HTTP or TLS).
//
// Theory of operation. The tunnel asks for its upstream when it starts (unless it is
// made on a connection already up: a server-first protocol) and holds what the guest
// sends until the connection is up (at most kMaxHeld bytes; reading the guest
// pauses beyond). Then bytes go across as they come; an EOF on one side becomes a
// half-close on the other, a reset a reset. A failed dial resets the guest with the
// reason on the flow's record. The MITM never looks inside: no secret is swapped or
// scrubbed here, which is why only an explicit host:port rule opens one.
#pragma once

#include "proxy/mitm/layer.hpp"

namespace airlock::mitm {

class TunnelLayer final : public Layer {
 public:
  static constexpr std::size_t kMaxHeld = 256 * 1024;

  TunnelLayer(Bytes held, bool connected);

  void handle(Event event, Clock::time_point now, Commands& out) override;
  bool wants(Side side) const override { return side == Side::upstream || connected_ || held_.size() < kMaxHeld; }

 private:
  Bytes held_;
  bool connected_ = false;
  bool failed_ = false;
  bool guest_eof_ = false;
};

}  // namespace airlock::mitm
