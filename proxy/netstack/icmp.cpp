// ICMP: echo requests to the gateway are answered (so `ping <gateway>` works as a link
// check); every other ICMP message from the guest is dropped and counted - pinging the
// outside would need raw sockets on the host, and error messages from the guest concern
// flows we terminate ourselves. We originate one kind of error: port unreachable for
// UDP we do not serve, capped per second of `now` so a guest can't make us amplify.
#include <algorithm>
#include <chrono>

#include "proxy/netstack/protocols.hpp"

namespace airlock::netstack {
namespace {

constexpr std::uint8_t kEchoReply = 0;
constexpr std::uint8_t kUnreachable = 3;
constexpr std::uint8_t kPortUnreachable = 3;
constexpr std::uint8_t kEchoRequest = 8;
constexpr std::size_t kQuotedPayload = 8;  // RFC 792: the IP header and 64 bits of data

}  // namespace

void handle_icmp(LinkContext& ctx, const Ipv4View& packet) {
  ParseError why = ParseError::none;
  const auto icmp = IcmpView::parse(packet.payload, &why);
  if (!icmp) {
    ++(why == ParseError::truncated ? ctx.counters.dropped_truncated : ctx.counters.dropped_bad_checksum);
    return;
  }
  if (icmp->type != kEchoRequest || icmp->code != 0) {
    ++ctx.counters.dropped_icmp_other;
    return;
  }
  if (packet.dst != ctx.config.gateway_ip) {
    ++ctx.counters.dropped_not_for_us;
    return;
  }
  std::vector<std::uint8_t> out;
  const std::uint32_t id_seq = (std::uint32_t{icmp->identifier} << 16) | icmp->sequence;
  build_icmp_frame(out, ctx.route_to_guest(ctx.config.gateway_ip), kEchoReply, 0, id_seq, icmp->rest);
  ++ctx.counters.icmp_echo_replies;
  ctx.emit(std::move(out));
}

void send_port_unreachable(LinkContext& ctx, const Ipv4View& packet, TimePoint now) {
  const auto second = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  if (second != ctx.icmp_second) {
    ctx.icmp_second = second;
    ctx.icmp_sent_this_second = 0;
  }
  if (ctx.icmp_sent_this_second >= ctx.config.icmp_errors_per_second) {
    ++ctx.counters.icmp_rate_limited;
    return;
  }
  ++ctx.icmp_sent_this_second;
  std::vector<std::uint8_t> quoted(packet.header.begin(), packet.header.end());
  const auto data = packet.payload.first(std::min(packet.payload.size(), kQuotedPayload));
  quoted.insert(quoted.end(), data.begin(), data.end());
  std::vector<std::uint8_t> out;
  // The error comes from the address the guest tried to reach, like a real host's would.
  build_icmp_frame(out, ctx.route_to_guest(packet.dst), kUnreachable, kPortUnreachable, 0, quoted);
  ++ctx.counters.icmp_unreachable_sent;
  ctx.emit(std::move(out));
}

}  // namespace airlock::netstack
