// Opaque bytes both ways; see tunnel_layer.hpp.
#include "proxy/mitm/tunnel_layer.hpp"

namespace airlock::mitm {

TunnelLayer::TunnelLayer(Bytes held, bool connected) : held_(std::move(held)), connected_(connected) {}

void TunnelLayer::handle(Event event, Clock::time_point, Commands& out) {
  if (failed_) return;
  if (std::holds_alternative<Start>(event)) {
    if (connected_) {
      if (!held_.empty()) out.push_back(Send{Side::upstream, std::exchange(held_, {})});
    } else {
      out.push_back(Open{});
    }
  } else if (std::holds_alternative<Connected>(event)) {
    connected_ = true;
    if (!held_.empty()) out.push_back(Send{Side::upstream, std::exchange(held_, {})});
    if (guest_eof_) out.push_back(Close{Side::upstream, false});
  } else if (auto* failed = std::get_if<ConnectFailed>(&event)) {
    failed_ = true;
    held_.clear();
    // The IP guard's refusal is the policy's; anything else is a failure to connect.
    const bool refused = failed->reason == "private_address";
    out.push_back(Note{"", "", "", refused ? failed->reason : "", refused ? "" : failed->reason, failed->detail});
    out.push_back(Close{Side::guest, true});
  } else if (auto* data = std::get_if<DataIn>(&event)) {
    if (data->side == Side::guest && !connected_) {
      held_.insert(held_.end(), data->bytes.begin(), data->bytes.end());
    } else {
      out.push_back(Send{other(data->side), std::move(data->bytes)});
    }
  } else if (auto* closed = std::get_if<ClosedIn>(&event)) {
    if (closed->side == Side::guest && !connected_) {
      guest_eof_ = true;
      if (closed->reset) {
        failed_ = true;
        out.push_back(Close{Side::upstream, true});
      }
      return;
    }
    out.push_back(Close{other(closed->side), closed->reset});
  }
}

}  // namespace airlock::mitm
