// What every protocol handler of the stack shares: the configuration, the guest's MAC as
// last learned, the queue of frames for the guest, the counters and the events queue.
// Internal to the netstack; the outside sees NetStack (stack.hpp).
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "proxy/netstack/types.hpp"
#include "proxy/netstack/views.hpp"

namespace airlock::netstack {

struct LinkContext {
  Config config;
  MacAddress guest_mac{};
  std::deque<std::vector<std::uint8_t>> outbound;
  std::deque<Event> events;
  Counters counters;
  std::uint16_t next_ip_id = 1;
  // ICMP error rate limit: how many were sent during `icmp_second`.
  std::int64_t icmp_second = -1;
  unsigned icmp_sent_this_second = 0;

  // A route from `src_ip` (the gateway, or the destination a flow impersonates) to the guest.
  Route route_to_guest(Ipv4Address src_ip) {
    return Route{config.gateway_mac, guest_mac, src_ip, config.guest_ip, next_ip_id++};
  }
  void emit(std::vector<std::uint8_t> frame) {
    ++counters.frames_out;
    outbound.push_back(std::move(frame));
  }
};

}  // namespace airlock::netstack
