// Bounds-checked views over guest frames, and builders for the frames we send back.
//
// Every parse() takes the bytes of one layer and returns nothing when they are too short
// or inconsistent; fields are read byte by byte in network order, never through casts
// over the buffer. Ipv4View trusts the IP total length (not the frame length: Ethernet
// pads short frames) and refuses a total length longer than the frame. Checksums are
// verified where the protocol has one (IPv4 header, ICMP, UDP unless zero, TCP). The
// builders write whole Ethernet frames into a caller's vector and fill in every checksum,
// so what leaves the stack always parses back through these views.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "proxy/netstack/types.hpp"

namespace airlock::netstack {

using Bytes = std::span<const std::uint8_t>;

inline constexpr std::uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr std::uint16_t kEtherTypeArp = 0x0806;
inline constexpr std::uint16_t kEtherTypeIpv6 = 0x86dd;
inline constexpr std::uint8_t kProtoIcmp = 1;
inline constexpr std::uint8_t kProtoTcp = 6;
inline constexpr std::uint8_t kProtoUdp = 17;
inline constexpr MacAddress kBroadcastMac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

// Internet checksum (RFC 1071): add 16-bit words into a running sum, fold at the end.
std::uint32_t checksum_add(std::uint32_t sum, Bytes bytes);
std::uint16_t checksum_fold(std::uint32_t sum);
std::uint32_t pseudo_header_sum(Ipv4Address src, Ipv4Address dst, std::uint8_t protocol,
                                std::size_t length);

enum class ParseError : std::uint8_t { none, truncated, malformed, bad_checksum };

struct EthernetView {
  MacAddress dst{};
  MacAddress src{};
  std::uint16_t ethertype = 0;
  Bytes payload;
  static std::optional<EthernetView> parse(Bytes frame);
};

struct ArpView {
  std::uint16_t operation = 0;  // 1 request, 2 reply
  MacAddress sender_mac{};
  Ipv4Address sender_ip = 0;
  MacAddress target_mac{};
  Ipv4Address target_ip = 0;
  // Only Ethernet/IPv4 ARP (htype 1, ptype 0x0800, 6/4 address lengths) parses.
  static std::optional<ArpView> parse(Bytes payload, ParseError* error = nullptr);
};

struct Ipv4View {
  std::uint8_t header_length = 0;  // bytes, options included
  std::uint16_t total_length = 0;
  std::uint16_t identification = 0;
  bool fragment = false;  // MF set or a non-zero offset: we drop these
  std::uint8_t ttl = 0;
  std::uint8_t protocol = 0;
  Ipv4Address src = 0;
  Ipv4Address dst = 0;
  Bytes header;   // options included
  Bytes payload;  // total_length - header_length bytes, padding excluded
  static std::optional<Ipv4View> parse(Bytes packet, ParseError* error = nullptr);
};

struct IcmpView {
  std::uint8_t type = 0;
  std::uint8_t code = 0;
  std::uint16_t identifier = 0;  // echo only
  std::uint16_t sequence = 0;    // echo only
  Bytes rest;                    // everything after the 8-byte header
  static std::optional<IcmpView> parse(Bytes message, ParseError* error = nullptr);
};

struct UdpView {
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  Bytes payload;
  // The UDP length must fit the IP payload; a non-zero checksum must verify.
  static std::optional<UdpView> parse(Bytes datagram, Ipv4Address src, Ipv4Address dst,
                                      ParseError* error = nullptr);
};

namespace tcp_flag {
inline constexpr std::uint8_t fin = 0x01;
inline constexpr std::uint8_t syn = 0x02;
inline constexpr std::uint8_t rst = 0x04;
inline constexpr std::uint8_t psh = 0x08;
inline constexpr std::uint8_t ack = 0x10;
inline constexpr std::uint8_t urg = 0x20;
}  // namespace tcp_flag

struct TcpView {
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  std::uint32_t seq = 0;
  std::uint32_t ack = 0;
  std::uint8_t header_length = 0;
  std::uint8_t flags = 0;
  std::uint16_t window = 0;
  std::optional<std::uint16_t> mss;          // option 2
  std::optional<std::uint8_t> window_scale;  // option 3, clamped to 14
  Bytes payload;
  bool has(std::uint8_t flag) const { return (flags & flag) != 0; }
  // Options other than MSS and window scale (SACK, timestamps...) are skipped; a
  // malformed option list ends option parsing without failing the segment.
  static std::optional<TcpView> parse(Bytes segment, Ipv4Address src, Ipv4Address dst,
                                      ParseError* error = nullptr);
};

// --- builders --------------------------------------------------------------------------

// Where a frame goes: Ethernet and IPv4 addresses. The IP header carries DF, TTL 64.
struct Route {
  MacAddress src_mac{};
  MacAddress dst_mac{};
  Ipv4Address src_ip = 0;
  Ipv4Address dst_ip = 0;
  std::uint16_t ip_id = 0;
};

struct TcpSegment {
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  std::uint32_t seq = 0;
  std::uint32_t ack = 0;
  std::uint8_t flags = 0;
  std::uint16_t window = 0;
  std::optional<std::uint16_t> mss;
  std::optional<std::uint8_t> window_scale;
};

void build_arp_reply(std::vector<std::uint8_t>& out, const MacAddress& our_mac, Ipv4Address our_ip,
                     const MacAddress& peer_mac, Ipv4Address peer_ip);
void build_tcp_frame(std::vector<std::uint8_t>& out, const Route& route, const TcpSegment& segment,
                     Bytes payload);
void build_udp_frame(std::vector<std::uint8_t>& out, const Route& route, std::uint16_t src_port,
                     std::uint16_t dst_port, Bytes payload);
// type/code, then the 4 bytes of "rest of header" (echo id+seq, or zero), then data.
void build_icmp_frame(std::vector<std::uint8_t>& out, const Route& route, std::uint8_t type,
                      std::uint8_t code, std::uint32_t rest_of_header, Bytes data);

}  // namespace airlock::netstack
