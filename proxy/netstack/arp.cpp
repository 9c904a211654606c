// ARP: the guest asks who has the gateway's address; we answer, and nothing else.
//
// Handled: requests whose target is the gateway IP, from the guest's IP (the reply goes
// to the sender's MAC, which we learn as the guest's). Refused and counted: duplicate-
// address probes (sender IP 0.0.0.0; answering one would make the guest think its own
// address is taken, and no other host exists on this link to defend it), requests for
// any other address (there is no one else to find: every off-link destination is routed
// via the gateway), replies and gratuitous announcements.
#include "proxy/netstack/protocols.hpp"

namespace airlock::netstack {

void handle_arp(LinkContext& ctx, const EthernetView& frame) {
  ParseError why = ParseError::none;
  const auto arp = ArpView::parse(frame.payload, &why);
  if (!arp) {
    ++(why == ParseError::truncated ? ctx.counters.dropped_truncated : ctx.counters.dropped_malformed);
    return;
  }
  if (arp->operation != 1) {
    ++ctx.counters.dropped_arp_other;
    return;
  }
  if (arp->sender_ip == 0) {
    ++ctx.counters.dropped_arp_probe;
    return;
  }
  if (arp->target_ip != ctx.config.gateway_ip || arp->sender_ip != ctx.config.guest_ip ||
      arp->sender_mac != frame.src) {
    ++ctx.counters.dropped_arp_other;
    return;
  }
  ctx.guest_mac = arp->sender_mac;
  std::vector<std::uint8_t> out;
  build_arp_reply(out, ctx.config.gateway_mac, ctx.config.gateway_ip, arp->sender_mac, arp->sender_ip);
  ++ctx.counters.arp_replies;
  ctx.emit(std::move(out));
}

}  // namespace airlock::netstack
