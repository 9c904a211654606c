// Shared vocabulary of the network stack: addresses, time, configuration, counters and
// the flow events handed to the layer above. Addresses are host-order integers; only the
// views and builders (views.hpp) convert to and from wire order.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <variant>

namespace airlock::netstack {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Duration = std::chrono::milliseconds;
using Ipv4Address = std::uint32_t;  // host order: 192.168.127.1 == 0xc0a87f01
using MacAddress = std::array<std::uint8_t, 6>;
using FlowId = std::uint64_t;

constexpr Ipv4Address ipv4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  return (Ipv4Address{a} << 24) | (Ipv4Address{b} << 16) | (Ipv4Address{c} << 8) | d;
}

inline constexpr std::size_t kEthernetHeader = 14;
inline constexpr std::size_t kMaxEthernetFrame = 65535 + kEthernetHeader;
inline constexpr std::uint32_t kMaxMtu = 65520;
inline constexpr std::uint32_t kMinMtu = 576;

struct Config {
  // Addressing. The plan is private and chosen never to collide with a host network.
  Ipv4Address guest_ip = ipv4(192, 168, 127, 2);
  Ipv4Address gateway_ip = ipv4(192, 168, 127, 1);
  Ipv4Address netmask = ipv4(255, 255, 255, 0);
  MacAddress gateway_mac{0x52, 0x54, 0x00, 0xa1, 0x10, 0x01};
  MacAddress guest_mac{0x52, 0x54, 0x00, 0x12, 0x34, 0x56};  // until learned from frames
  std::uint32_t mtu = kMaxMtu;  // clamped to [kMinMtu, kMaxMtu]; our MSS is mtu - 40

  // TCP. The seed makes initial sequence numbers reproducible (tests, fuzzing); the
  // driver passes a random one.
  std::uint64_t isn_seed = 0;
  std::size_t max_flows = 1024;           // live flows of any state, TIME_WAIT included
  // SYNs awaiting accept()/reject() or the final ACK. Flows are admitted at once, so this
  // counts handshakes the guest has not finished: a busy guest (TCG) opening a hundred
  // connections may well be this far behind; over the cap a SYN gets RST (and a record).
  std::size_t max_pending_flows = 256;
  std::size_t max_buffered_bytes = 256u << 20;  // all receive + send buffers together
  std::size_t receive_buffer = 1u << 20;  // per flow, guest -> host; the advertised window
  std::size_t send_buffer = 1u << 20;     // per flow, host -> guest
  Duration pending_timeout{10'000};       // SYN left without accept()/reject() -> RST
  Duration initial_rto{1'000};            // retransmission timeout, doubled per retry
  Duration max_rto{16'000};
  // Then the flow is reset: about two minutes with no ACK at all (the count starts again
  // at every ACK), so only a guest that stopped, not a slow one, loses its flows.
  unsigned max_retransmits = 10;
  Duration persist_interval{500};         // first zero-window probe, doubled per probe
  // Guest window stuck at zero (its probes answered, nothing read) this long -> reset. A
  // slow reader is not an attacker: five minutes.
  Duration zero_window_timeout{300'000};
  Duration time_wait{2'000};              // short: the link neither loses nor reorders
  Duration idle_timeout{3'600'000};

  // UDP/ICMP.
  unsigned icmp_errors_per_second = 50;   // port-unreachable replies per second of `now`
};

// Every frame or segment dropped bumps exactly one dropped_* field; the others count
// what was answered or sent.
struct Counters {
  // link / ethernet
  std::uint64_t frames_in = 0;
  std::uint64_t frames_out = 0;
  std::uint64_t dropped_truncated = 0;      // shorter than a header says
  std::uint64_t dropped_malformed = 0;      // bad version/IHL/lengths, bad ARP shape
  std::uint64_t dropped_bad_checksum = 0;
  std::uint64_t dropped_ipv6 = 0;
  std::uint64_t dropped_ethertype = 0;      // neither ARP, IPv4 nor IPv6
  std::uint64_t dropped_not_for_us = 0;     // wrong MAC/IP, broadcast/multicast targets
  std::uint64_t dropped_bad_source = 0;     // IPv4 source other than the guest's
  std::uint64_t dropped_fragment = 0;
  std::uint64_t dropped_protocol = 0;       // IP protocols other than ICMP/UDP/TCP
  // arp
  std::uint64_t arp_replies = 0;
  std::uint64_t dropped_arp_probe = 0;      // duplicate-address probes (sender 0.0.0.0)
  std::uint64_t dropped_arp_other = 0;      // replies, requests for other addresses
  // icmp
  std::uint64_t icmp_echo_replies = 0;
  std::uint64_t dropped_icmp_other = 0;
  std::uint64_t icmp_unreachable_sent = 0;
  std::uint64_t icmp_rate_limited = 0;
  // udp
  std::uint64_t dns_queries = 0;
  std::uint64_t dns_replies = 0;
  std::uint64_t dropped_dns_unanswered = 0;  // the handler returned nothing
  std::uint64_t dropped_dns_reply_too_big = 0;
  std::uint64_t dropped_udp_other = 0;
  // tcp
  std::uint64_t tcp_flows_requested = 0;
  std::uint64_t tcp_flows_accepted = 0;
  std::uint64_t tcp_flows_rejected = 0;
  std::uint64_t tcp_flows_closed = 0;
  std::uint64_t tcp_rst_sent = 0;
  std::uint64_t tcp_rst_received = 0;
  std::uint64_t tcp_retransmits = 0;
  std::uint64_t tcp_window_probes = 0;
  std::uint64_t tcp_window_updates = 0;
  std::uint64_t tcp_duplicate_syns = 0;
  std::uint64_t tcp_timeouts = 0;           // pending, retransmit, zero-window, idle
  std::uint64_t dropped_tcp_no_flow = 0;     // answered with RST
  std::uint64_t dropped_tcp_out_of_order = 0;  // answered with a duplicate ACK
  std::uint64_t dropped_tcp_out_of_window = 0;  // data beyond the advertised window
  std::uint64_t dropped_tcp_bad_flags = 0;
  std::uint64_t dropped_tcp_flow_cap = 0;    // SYN over max_flows -> RST
  std::uint64_t dropped_tcp_pending_cap = 0;  // SYN over max_pending_flows -> RST
  std::uint64_t dropped_tcp_buffer_cap = 0;  // SYN or data over max_buffered_bytes
};

// Calls fn(name, value) for every counter, in declaration order (for logs and events).
template <typename Fn>
void for_each_counter(const Counters& c, Fn&& fn) {
  fn("frames_in", c.frames_in);
  fn("frames_out", c.frames_out);
  fn("dropped_truncated", c.dropped_truncated);
  fn("dropped_malformed", c.dropped_malformed);
  fn("dropped_bad_checksum", c.dropped_bad_checksum);
  fn("dropped_ipv6", c.dropped_ipv6);
  fn("dropped_ethertype", c.dropped_ethertype);
  fn("dropped_not_for_us", c.dropped_not_for_us);
  fn("dropped_bad_source", c.dropped_bad_source);
  fn("dropped_fragment", c.dropped_fragment);
  fn("dropped_protocol", c.dropped_protocol);
  fn("arp_replies", c.arp_replies);
  fn("dropped_arp_probe", c.dropped_arp_probe);
  fn("dropped_arp_other", c.dropped_arp_other);
  fn("icmp_echo_replies", c.icmp_echo_replies);
  fn("dropped_icmp_other", c.dropped_icmp_other);
  fn("icmp_unreachable_sent", c.icmp_unreachable_sent);
  fn("icmp_rate_limited", c.icmp_rate_limited);
  fn("dns_queries", c.dns_queries);
  fn("dns_replies", c.dns_replies);
  fn("dropped_dns_unanswered", c.dropped_dns_unanswered);
  fn("dropped_dns_reply_too_big", c.dropped_dns_reply_too_big);
  fn("dropped_udp_other", c.dropped_udp_other);
  fn("tcp_flows_requested", c.tcp_flows_requested);
  fn("tcp_flows_accepted", c.tcp_flows_accepted);
  fn("tcp_flows_rejected", c.tcp_flows_rejected);
  fn("tcp_flows_closed", c.tcp_flows_closed);
  fn("tcp_rst_sent", c.tcp_rst_sent);
  fn("tcp_rst_received", c.tcp_rst_received);
  fn("tcp_retransmits", c.tcp_retransmits);
  fn("tcp_window_probes", c.tcp_window_probes);
  fn("tcp_window_updates", c.tcp_window_updates);
  fn("tcp_duplicate_syns", c.tcp_duplicate_syns);
  fn("tcp_timeouts", c.tcp_timeouts);
  fn("dropped_tcp_no_flow", c.dropped_tcp_no_flow);
  fn("dropped_tcp_out_of_order", c.dropped_tcp_out_of_order);
  fn("dropped_tcp_out_of_window", c.dropped_tcp_out_of_window);
  fn("dropped_tcp_bad_flags", c.dropped_tcp_bad_flags);
  fn("dropped_tcp_flow_cap", c.dropped_tcp_flow_cap);
  fn("dropped_tcp_pending_cap", c.dropped_tcp_pending_cap);
  fn("dropped_tcp_buffer_cap", c.dropped_tcp_buffer_cap);
}

// A TCP flow as the guest opened it: its source port and the destination it asked for.
struct FlowKey {
  std::uint16_t guest_port = 0;
  Ipv4Address dst_ip = 0;
  std::uint16_t dst_port = 0;
  friend bool operator==(const FlowKey&, const FlowKey&) = default;
};

// Events for the layer above. Every FlowRequested is followed, eventually, by exactly one
// FlowClosed, the flow's last event; after it the flow id is dead.
struct FlowRequested { FlowId id; FlowKey key; };       // answer with accept() or reject()
struct FlowReadable { FlowId id; };     // the receive buffer went from empty to non-empty
struct FlowWritable { FlowId id; };     // send() had refused bytes; space is free again
struct FlowReadClosed { FlowId id; };   // the guest sent FIN; read() drains what is left
struct FlowReset { FlowId id; };        // the guest sent RST; FlowClosed follows
// A SYN refused before any flow existed (a cap was hit): answered with RST, reported so
// the attempt has its record. reason: flow_cap, pending_cap, buffer_cap.
struct FlowRefused { FlowKey key; std::string_view reason; };
struct FlowClosed {
  FlowId id;
  std::uint64_t bytes_in;   // guest -> host payload accepted
  std::uint64_t bytes_out;  // host -> guest payload acknowledged
  std::string_view reason;  // closed, rejected, aborted, reset_by_guest, pending_timeout,
                            // retransmit_timeout, zero_window_timeout, idle_timeout
};
using Event = std::variant<FlowRequested, FlowReadable, FlowWritable, FlowReadClosed, FlowReset,
                           FlowClosed, FlowRefused>;

}  // namespace airlock::netstack
