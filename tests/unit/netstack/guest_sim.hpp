// A scripted guest for the netstack tests: builds the frames a guest would send and
// parses what the stack sends back, checking every returned frame is well-formed (valid
// IPv4 and L4 checksums, addressed to the guest).
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "proxy/netstack/stack.hpp"
#include "proxy/netstack/views.hpp"

namespace airlock::netstack::test {

using Frame = std::vector<std::uint8_t>;

inline std::vector<std::uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }
inline std::string string_of(std::span<const std::uint8_t> b) { return {b.begin(), b.end()}; }

// A TCP segment as the stack sent it, copied out of its frame.
struct TcpOut {
  Ipv4Address src_ip = 0;
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  std::uint32_t seq = 0;
  std::uint32_t ack = 0;
  std::uint8_t flags = 0;
  std::uint16_t window = 0;
  std::optional<std::uint16_t> mss;
  std::optional<std::uint8_t> window_scale;
  std::string payload;
  bool has(std::uint8_t f) const { return (flags & f) != 0; }
};

inline Ipv4View parse_ip_out(const Frame& frame, const Config& config) {
  const auto eth = EthernetView::parse(frame);
  REQUIRE(eth);
  CHECK(eth->src == config.gateway_mac);
  REQUIRE(eth->ethertype == kEtherTypeIpv4);
  const auto ip = Ipv4View::parse(eth->payload);
  REQUIRE(ip);  // header checksum verified by the view
  CHECK(ip->dst == config.guest_ip);
  CHECK(ip->payload.size() + ip->header_length == eth->payload.size());
  return *ip;
}

inline TcpOut parse_tcp_out(const Frame& frame, const Config& config) {
  const Ipv4View ip = parse_ip_out(frame, config);
  REQUIRE(ip.protocol == kProtoTcp);
  const auto tcp = TcpView::parse(ip.payload, ip.src, ip.dst);
  REQUIRE(tcp);  // checksum verified by the view
  return TcpOut{ip.src, tcp->src_port, tcp->dst_port, tcp->seq, tcp->ack, tcp->flags, tcp->window,
                tcp->mss, tcp->window_scale, string_of(tcp->payload)};
}

class GuestSim {
 public:
  explicit GuestSim(NetStack& stack) : stack_(stack), config_(stack.config()) {}

  TimePoint now = TimePoint{} + std::chrono::hours(1);

  Route route_to(Ipv4Address dst) const {
    return Route{config_.guest_mac, config_.gateway_mac, config_.guest_ip, dst, 7};
  }
  Frame tcp_frame(Ipv4Address dst, std::uint16_t sport, std::uint16_t dport, std::uint32_t seq,
                  std::uint32_t ack, std::uint8_t flags, std::uint16_t window,
                  const std::string& payload = {}, std::optional<std::uint16_t> mss = {},
                  std::optional<std::uint8_t> ws = {}) const {
    TcpSegment seg{sport, dport, seq, ack, flags, window, mss, ws};
    Frame f;
    const auto data = bytes_of(payload);
    build_tcp_frame(f, route_to(dst), seg, data);
    return f;
  }
  void send(const Frame& f) { stack_.on_frame(f, now); }
  void advance(std::chrono::milliseconds d) {
    now += d;
    stack_.on_timer(now);
  }
  std::vector<Frame> take_frames() {
    std::vector<Frame> out(stack_.outbound_frames().begin(), stack_.outbound_frames().end());
    stack_.outbound_frames().clear();
    return out;
  }
  std::vector<TcpOut> take_tcp() {
    std::vector<TcpOut> out;
    for (const auto& f : take_frames()) out.push_back(parse_tcp_out(f, config_));
    return out;
  }
  std::vector<Event> take_events() {
    std::vector<Event> out(stack_.events().begin(), stack_.events().end());
    stack_.events().clear();
    return out;
  }

 private:
  NetStack& stack_;
  Config config_;
};

// One guest connection, tracking sequence numbers like the guest's TCP would.
struct GuestConn {
  GuestSim& sim;
  Ipv4Address dst;
  std::uint16_t dport;
  std::uint16_t sport = 40000;
  std::uint32_t seq = 1000;  // next sequence the guest sends
  std::uint32_t ack = 0;     // next sequence the guest expects
  std::uint16_t window = 65535;
  FlowId id = 0;

  void syn(std::optional<std::uint16_t> mss = 1460, std::optional<std::uint8_t> ws = 7) {
    sim.send(sim.tcp_frame(dst, sport, dport, seq, 0, tcp_flag::syn, window, {}, mss, ws));
  }
  // SYN, FlowRequested, accept, SYN-ACK, ACK: returns the SYN-ACK.
  TcpOut open(NetStack& stack, std::optional<std::uint16_t> mss = 1460, std::optional<std::uint8_t> ws = 7) {
    syn(mss, ws);
    auto events = sim.take_events();
    REQUIRE(events.size() == 1);
    const auto* requested = std::get_if<FlowRequested>(&events[0]);
    REQUIRE(requested);
    id = requested->id;
    CHECK(sim.take_frames().empty());  // nothing is said before accept()
    REQUIRE(stack.accept(id, sim.now));
    auto out = sim.take_tcp();
    REQUIRE(out.size() == 1);
    const TcpOut synack = out[0];
    CHECK(synack.flags == (tcp_flag::syn | tcp_flag::ack));
    CHECK(synack.ack == seq + 1);
    seq += 1;
    ack = synack.seq + 1;
    send_ack();
    CHECK(sim.take_frames().empty());
    return synack;
  }
  void send_ack() { sim.send(sim.tcp_frame(dst, sport, dport, seq, ack, tcp_flag::ack, window)); }
  void send_data(const std::string& data, std::uint8_t extra = 0) {
    sim.send(sim.tcp_frame(dst, sport, dport, seq, ack, tcp_flag::ack | tcp_flag::psh | extra, window, data));
    seq += static_cast<std::uint32_t>(data.size());
    if (extra & tcp_flag::fin) seq += 1;
  }
  void send_fin() {
    sim.send(sim.tcp_frame(dst, sport, dport, seq, ack, tcp_flag::ack | tcp_flag::fin, window));
    seq += 1;
  }
  void send_rst() { sim.send(sim.tcp_frame(dst, sport, dport, seq, 0, tcp_flag::rst, 0)); }
  // Takes the stack's segments, advancing `ack` past in-order data and FIN.
  std::vector<TcpOut> receive() {
    auto out = sim.take_tcp();
    for (const auto& s : out) {
      CHECK(s.src_ip == dst);
      CHECK(s.src_port == dport);
      CHECK(s.dst_port == sport);
      if (s.seq == ack) {
        ack += static_cast<std::uint32_t>(s.payload.size());
        if (s.has(tcp_flag::fin)) ack += 1;
      }
    }
    return out;
  }
};

template <typename T>
std::vector<T> events_of(const std::vector<Event>& events) {
  std::vector<T> out;
  for (const auto& e : events)
    if (const auto* p = std::get_if<T>(&e)) out.push_back(*p);
  return out;
}

}  // namespace airlock::netstack::test
