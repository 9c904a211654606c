// Entry points of the per-protocol handlers (arp.cpp, ipv4.cpp, icmp.cpp, udp.cpp), called
// by NetStack. Each handler drops and counts what it refuses; none of them throws on
// guest input.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "proxy/netstack/context.hpp"
#include "proxy/netstack/views.hpp"

namespace airlock::netstack {

class TcpTerminator;
using DnsCallback =
    std::function<std::optional<std::vector<std::uint8_t>>(std::span<const std::uint8_t>)>;

void handle_arp(LinkContext& ctx, const EthernetView& frame);
void handle_ipv4(LinkContext& ctx, const EthernetView& frame, TcpTerminator& tcp,
                 const DnsCallback& dns, TimePoint now);
void handle_icmp(LinkContext& ctx, const Ipv4View& packet);
void handle_udp(LinkContext& ctx, const Ipv4View& packet, const DnsCallback& dns, TimePoint now);
// ICMP destination unreachable (port) for `packet`, subject to the per-second cap.
void send_port_unreachable(LinkContext& ctx, const Ipv4View& packet, TimePoint now);

}  // namespace airlock::netstack
