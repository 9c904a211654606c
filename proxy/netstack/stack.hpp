// NetStack: the whole userspace network the guest sees, behind one sans-IO object.
//
// The driver feeds it the Ethernet frames the guest sends (decoded from the QEMU stream
// with LinkDecoder, link.hpp), calls on_timer() when next_deadline() passes, sends
// everything in outbound_frames() to the guest, and answers events() through the flow
// API. Time is always an argument; nothing here reads a clock, opens a socket or
// blocks. See docs/netstack.md for what is answered, what is dropped, and why.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "proxy/netstack/context.hpp"
#include "proxy/netstack/protocols.hpp"
#include "proxy/netstack/tcp.hpp"
#include "proxy/netstack/types.hpp"

namespace airlock::netstack {

class NetStack {
 public:
  // `dns` answers UDP queries to gateway:53 (nullptr: such queries get port unreachable).
  // The config is taken as is; mtu is clamped to [kMinMtu, kMaxMtu].
  NetStack(Config config, DnsCallback dns);
  NetStack(const NetStack&) = delete;
  NetStack& operator=(const NetStack&) = delete;

  void on_frame(std::span<const std::uint8_t> frame, TimePoint now);
  void on_timer(TimePoint now);
  std::optional<TimePoint> next_deadline() const;

  // Frames for the guest, oldest first; the driver pops what it has written.
  std::deque<std::vector<std::uint8_t>>& outbound_frames() { return ctx_.outbound; }
  std::deque<Event>& events() { return ctx_.events; }

  // Flow API (tcp.cpp). Calls on an unknown or finished flow return false / 0 / {}.
  bool accept(FlowId id, TimePoint now) { return tcp_.accept(id, now); }
  bool reject(FlowId id) { return tcp_.reject(id); }
  std::vector<std::uint8_t> read(FlowId id, std::size_t max, TimePoint now) { return tcp_.read(id, max, now); }
  std::size_t send(FlowId id, std::span<const std::uint8_t> bytes, TimePoint now) {
    return tcp_.send(id, bytes, now);
  }
  bool shutdown_write(FlowId id, TimePoint now) { return tcp_.shutdown_write(id, now); }
  bool abort(FlowId id) { return tcp_.abort(id); }
  std::optional<FlowInfo> flow(FlowId id) const { return tcp_.info(id); }
  std::size_t flow_count() const { return tcp_.flow_count(); }

  const Counters& counters() const { return ctx_.counters; }
  const Config& config() const { return ctx_.config; }
  const MacAddress& guest_mac() const { return ctx_.guest_mac; }

 private:
  LinkContext ctx_;
  DnsCallback dns_;
  TcpTerminator tcp_;
};

}  // namespace airlock::netstack
