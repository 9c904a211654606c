// UDP: only DNS to the gateway (port 53) is served, by the caller's DNS callback; the
// reply goes back as a datagram from gateway:53. Every other datagram is dropped with a
// port-unreachable (rate-limited) so the guest's resolvers and tools fail fast instead
// of timing out. No UDP ever leaves the host: DNS is the only UDP service there is.
#include "proxy/netstack/protocols.hpp"

namespace airlock::netstack {
namespace {

constexpr std::uint16_t kDnsPort = 53;

}  // namespace

void handle_udp(LinkContext& ctx, const Ipv4View& packet, const DnsCallback& dns, TimePoint now) {
  ParseError why = ParseError::none;
  const auto udp = UdpView::parse(packet.payload, packet.src, packet.dst, &why);
  if (!udp) {
    ++(why == ParseError::bad_checksum ? ctx.counters.dropped_bad_checksum
       : why == ParseError::truncated  ? ctx.counters.dropped_truncated
                                       : ctx.counters.dropped_malformed);
    return;
  }
  if (packet.dst != ctx.config.gateway_ip || udp->dst_port != kDnsPort || !dns) {
    ++ctx.counters.dropped_udp_other;
    send_port_unreachable(ctx, packet, now);
    return;
  }
  ++ctx.counters.dns_queries;
  const auto reply = dns(udp->payload);
  if (!reply) {
    ++ctx.counters.dropped_dns_unanswered;
    return;
  }
  if (reply->size() + 28 > ctx.config.mtu) {  // the DNS handler truncates (TC) itself
    ++ctx.counters.dropped_dns_reply_too_big;
    return;
  }
  std::vector<std::uint8_t> out;
  build_udp_frame(out, ctx.route_to_guest(ctx.config.gateway_ip), kDnsPort, udp->src_port, *reply);
  ++ctx.counters.dns_replies;
  ctx.emit(std::move(out));
}

}  // namespace airlock::netstack
