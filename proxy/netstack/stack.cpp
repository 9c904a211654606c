// NetStack: Ethernet demultiplexing, then ARP or IPv4 (see stack.hpp).
//
// Handled: ARP (arp.cpp) and IPv4 (ipv4.cpp) frames addressed to the gateway's MAC or
// broadcast. Refused and counted: IPv6 (the guest gets no IPv6 route; AAAA queries are
// answered with no data by DNS), other ethertypes, frames for other MACs, frames with a
// multicast source MAC, and frames longer than the stream framing allows.
#include "proxy/netstack/stack.hpp"

#include <algorithm>

namespace airlock::netstack {

namespace {

LinkContext make_context(Config config) {
  config.mtu = std::clamp(config.mtu, kMinMtu, kMaxMtu);
  LinkContext ctx;
  ctx.config = config;
  ctx.guest_mac = config.guest_mac;
  return ctx;
}

}  // namespace

// ctx_ is complete before tcp_ is built: the terminator seeds its ISNs from the config.
NetStack::NetStack(Config config, DnsCallback dns)
    : ctx_(make_context(config)), dns_(std::move(dns)), tcp_(ctx_) {}

void NetStack::on_frame(std::span<const std::uint8_t> frame, TimePoint now) {
  ++ctx_.counters.frames_in;
  if (frame.size() > kMaxEthernetFrame) {
    ++ctx_.counters.dropped_malformed;
    return;
  }
  const auto ethernet = EthernetView::parse(frame);
  if (!ethernet) {
    ++ctx_.counters.dropped_truncated;
    return;
  }
  if ((ethernet->src[0] & 0x01U) != 0) {  // a source MAC is never multicast
    ++ctx_.counters.dropped_malformed;
    return;
  }
  if (ethernet->ethertype == kEtherTypeIpv6) {
    ++ctx_.counters.dropped_ipv6;
    return;
  }
  if (ethernet->dst != ctx_.config.gateway_mac && ethernet->dst != kBroadcastMac) {
    ++ctx_.counters.dropped_not_for_us;
    return;
  }
  switch (ethernet->ethertype) {
    case kEtherTypeArp: handle_arp(ctx_, *ethernet); break;
    case kEtherTypeIpv4:
      if (ethernet->dst != ctx_.config.gateway_mac) {
        ++ctx_.counters.dropped_not_for_us;  // IPv4 broadcast: DHCP and the like
        break;
      }
      handle_ipv4(ctx_, *ethernet, tcp_, dns_, now);
      break;
    default: ++ctx_.counters.dropped_ethertype; break;
  }
}

void NetStack::on_timer(TimePoint now) { tcp_.on_timer(now); }

std::optional<TimePoint> NetStack::next_deadline() const { return tcp_.next_deadline(); }

}  // namespace airlock::netstack
