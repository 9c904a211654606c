// IPv4: validate a guest packet and hand it to ICMP, UDP or TCP.
//
// Accepted: unfragmented IPv4 from the guest's own address, header checksum valid, total
// length within the frame (trailing Ethernet padding is ignored), options skipped by IHL.
// Refused and counted: fragments (a guest with a sane MTU never needs them, and
// reassembly is attack surface), any other source address, destinations that are not a
// single host (0/8, loopback, multicast, broadcast of the guest subnet or the limited
// broadcast), and IP protocols other than ICMP, UDP and TCP. TCP may go to any unicast
// address: the terminator impersonates the destination the guest asked for.
#include "proxy/netstack/protocols.hpp"
#include "proxy/netstack/tcp.hpp"

namespace airlock::netstack {
namespace {

bool unicast_destination(const Config& config, Ipv4Address dst) {
  const std::uint32_t first = dst >> 24;
  if (first == 0 || first == 127 || first >= 224) return false;  // this-net, loopback, class D/E
  const Ipv4Address subnet_broadcast = (config.guest_ip & config.netmask) | ~config.netmask;
  return dst != subnet_broadcast;
}

}  // namespace

void handle_ipv4(LinkContext& ctx, const EthernetView& frame, TcpTerminator& tcp,
                 const DnsCallback& dns, TimePoint now) {
  ParseError why = ParseError::none;
  const auto packet = Ipv4View::parse(frame.payload, &why);
  if (!packet) {
    ++(why == ParseError::bad_checksum ? ctx.counters.dropped_bad_checksum
       : why == ParseError::truncated  ? ctx.counters.dropped_truncated
                                       : ctx.counters.dropped_malformed);
    return;
  }
  if (packet->fragment) {
    ++ctx.counters.dropped_fragment;
    return;
  }
  if (packet->src != ctx.config.guest_ip) {
    ++ctx.counters.dropped_bad_source;
    return;
  }
  if (!unicast_destination(ctx.config, packet->dst)) {
    ++ctx.counters.dropped_not_for_us;
    return;
  }
  ctx.guest_mac = frame.src;
  switch (packet->protocol) {
    case kProtoIcmp: handle_icmp(ctx, *packet); break;
    case kProtoUdp: handle_udp(ctx, *packet, dns, now); break;
    case kProtoTcp: tcp.on_segment(*packet, now); break;
    default: ++ctx.counters.dropped_protocol; break;
  }
}

}  // namespace airlock::netstack
