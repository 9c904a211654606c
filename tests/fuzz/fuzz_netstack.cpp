// libFuzzer target for the userspace network stack (proxy/netstack).
//
// The input is a list of records: a control byte, a 2-byte big-endian length, then that
// many bytes of one Ethernet frame. Control bit 0 repairs the frame's IPv4 and L4
// checksums (and bit 1 its source address and destination MAC) before it is fed, so the
// fuzzer reaches the TCP state machine instead of stopping at checksum checks; bits 2-7
// advance `now` by that many times 100 ms, with on_timer() called. The ISN seed is fixed
// so runs reproduce. The upper layer accepts every flow (but rejects port 1), reads
// everything, echoes it back (aborts a flow whose data starts with 'A'), and half-closes
// when the guest does. Invariants (trap otherwise): the stack never crashes, no timer is
// still due right after on_timer(), and every outbound frame parses back through the
// views with valid checksums, from the gateway's MAC to the guest.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <variant>
#include <vector>

#include "proxy/netstack/link.hpp"
#include "proxy/netstack/stack.hpp"
#include "proxy/netstack/views.hpp"

using namespace airlock::netstack;

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

void put16(std::vector<std::uint8_t>& f, std::size_t at, std::uint16_t v) {
  f[at] = static_cast<std::uint8_t>(v >> 8);
  f[at + 1] = static_cast<std::uint8_t>(v & 0xff);
}

void repair(std::vector<std::uint8_t>& f, const Config& config, bool addresses) {
  if (f.size() < 14 + 20) return;
  if (addresses) {
    std::copy(config.gateway_mac.begin(), config.gateway_mac.end(), f.begin());
    f[12] = 0x08;
    f[13] = 0x00;
    f[14] = static_cast<std::uint8_t>(0x40 | (f[14] & 0x0f));
    for (int i = 0; i < 4; ++i) f[26 + i] = static_cast<std::uint8_t>(config.guest_ip >> (24 - 8 * i));
  }
  const std::size_t ihl = (f[14] & 0x0fU) * 4U;
  if (ihl < 20 || 14 + ihl > f.size()) return;
  f[24] = f[25] = 0;
  put16(f, 24, checksum_fold(checksum_add(0, std::span(f).subspan(14, ihl))));
  const std::size_t total = std::min<std::size_t>((std::size_t{f[16]} << 8) | f[17], f.size() - 14);
  if (total < ihl) return;
  const std::size_t l4 = 14 + ihl;
  const std::size_t l4_len = total - ihl;
  const auto src = (std::uint32_t{f[26]} << 24) | (std::uint32_t{f[27]} << 16) | (std::uint32_t{f[28]} << 8) | f[29];
  const auto dst = (std::uint32_t{f[30]} << 24) | (std::uint32_t{f[31]} << 16) | (std::uint32_t{f[32]} << 8) | f[33];
  const std::uint8_t proto = f[23];
  std::size_t at = 0;
  std::uint32_t sum = 0;
  if (proto == kProtoTcp && l4_len >= 18) {
    at = 16;
    sum = pseudo_header_sum(src, dst, kProtoTcp, l4_len);
  } else if (proto == kProtoUdp && l4_len >= 8) {
    at = 6;
    sum = pseudo_header_sum(src, dst, kProtoUdp, l4_len);
  } else if (proto == kProtoIcmp && l4_len >= 4) {
    at = 2;
  } else {
    return;
  }
  f[l4 + at] = f[l4 + at + 1] = 0;
  put16(f, l4 + at, checksum_fold(checksum_add(sum, std::span(f).subspan(l4, l4_len))));
}

void check_outbound(const std::vector<std::uint8_t>& frame, const Config& config) {
  std::vector<std::uint8_t> wire;
  append_link_frame(wire, frame);  // throws (and so aborts) on a size the link can't carry
  const auto eth = EthernetView::parse(frame);
  check(eth.has_value());
  check(eth->src == config.gateway_mac);
  if (eth->ethertype == kEtherTypeArp) {
    check(ArpView::parse(eth->payload).has_value());
    return;
  }
  check(eth->ethertype == kEtherTypeIpv4);
  const auto ip = Ipv4View::parse(eth->payload);
  check(ip.has_value());
  check(!ip->fragment && ip->dst == config.guest_ip);
  check(ip->header_length + ip->payload.size() == eth->payload.size());
  switch (ip->protocol) {
    case kProtoTcp: {
      const auto tcp = TcpView::parse(ip->payload, ip->src, ip->dst);
      check(tcp.has_value());
      check(tcp->payload.size() <= config.mtu - 40U);
      break;
    }
    case kProtoUdp: check(UdpView::parse(ip->payload, ip->src, ip->dst).has_value()); break;
    case kProtoIcmp: check(IcmpView::parse(ip->payload).has_value()); break;
    default: check(false);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Config config;
  config.isn_seed = 1;
  config.mtu = 1500;
  config.receive_buffer = 8192;
  config.send_buffer = 8192;
  config.max_flows = 8;
  config.max_pending_flows = 4;
  NetStack stack(config, [](std::span<const std::uint8_t> q) -> std::optional<std::vector<std::uint8_t>> {
    if (q.empty()) return std::nullopt;
    return std::vector<std::uint8_t>(q.begin(), q.end());
  });
  TimePoint now = TimePoint{} + std::chrono::hours(1);
  const std::span<const std::uint8_t> input(data, size);
  std::size_t at = 0;
  std::uint64_t echoed = 0;
  while (at + 3 <= input.size()) {
    const std::uint8_t control = input[at];
    const std::size_t length = (std::size_t{input[at + 1]} << 8) | input[at + 2];
    at += 3;
    const std::size_t n = std::min(length, input.size() - at);
    std::vector<std::uint8_t> frame(input.begin() + static_cast<std::ptrdiff_t>(at),
                                    input.begin() + static_cast<std::ptrdiff_t>(at + n));
    at += n;
    if (control & 0x01) repair(frame, config, (control & 0x02) != 0);
    now += std::chrono::milliseconds(100 * (control >> 2));
    stack.on_timer(now);
    // Timers never stay due after on_timer(): a driver would spin on them.
    if (const auto deadline = stack.next_deadline()) check(*deadline > now);
    stack.on_frame(frame, now);

    // The upper layer.
    while (!stack.events().empty()) {
      const Event event = stack.events().front();
      stack.events().pop_front();
      if (const auto* e = std::get_if<FlowRequested>(&event)) {
        if (e->key.dst_port == 1) {
          stack.reject(e->id);
        } else {
          check(stack.accept(e->id, now));
        }
      } else if (const auto* r = std::get_if<FlowReadable>(&event)) {
        const auto bytes = stack.read(r->id, 1 << 20, now);
        if (!bytes.empty() && bytes[0] == 'A') {
          stack.abort(r->id);
        } else if (echoed < (1U << 20)) {
          echoed += stack.send(r->id, bytes, now);
        }
      } else if (const auto* c = std::get_if<FlowReadClosed>(&event)) {
        (void)stack.read(c->id, 1 << 20, now);
        stack.shutdown_write(c->id, now);
      }
    }
    while (!stack.outbound_frames().empty()) {
      check_outbound(stack.outbound_frames().front(), config);
      stack.outbound_frames().pop_front();
    }
  }
  return 0;
}
