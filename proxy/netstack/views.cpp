// Views and builders for Ethernet, ARP, IPv4, ICMP, UDP and TCP (see views.hpp).
//
// Each parse() checks the length it needs before reading a field, so the readers below
// (be16/be32 at an offset) are only ever called on offsets already proven in range.
// Builders size the output vector once and write fields in network order.
#include "proxy/netstack/views.hpp"

#include <algorithm>

namespace airlock::netstack {
namespace {

std::uint16_t be16(Bytes b, std::size_t at) {
  return static_cast<std::uint16_t>((b[at] << 8) | b[at + 1]);
}

std::uint32_t be32(Bytes b, std::size_t at) {
  return (std::uint32_t{b[at]} << 24) | (std::uint32_t{b[at + 1]} << 16) |
         (std::uint32_t{b[at + 2]} << 8) | std::uint32_t{b[at + 3]};
}

MacAddress mac_at(Bytes b, std::size_t at) {
  MacAddress mac{};
  std::copy_n(b.begin() + static_cast<std::ptrdiff_t>(at), mac.size(), mac.begin());
  return mac;
}

void put16(std::vector<std::uint8_t>& out, std::size_t at, std::uint32_t v) {
  out[at] = static_cast<std::uint8_t>((v >> 8) & 0xffU);
  out[at + 1] = static_cast<std::uint8_t>(v & 0xffU);
}

void put32(std::vector<std::uint8_t>& out, std::size_t at, std::uint32_t v) {
  put16(out, at, v >> 16);
  put16(out, at + 2, v & 0xffffU);
}

void put_mac(std::vector<std::uint8_t>& out, std::size_t at, const MacAddress& mac) {
  std::copy(mac.begin(), mac.end(), out.begin() + static_cast<std::ptrdiff_t>(at));
}

void fail(ParseError* error, ParseError why) {
  if (error != nullptr) *error = why;
}

constexpr std::size_t kIpHeader = 20;

// Writes Ethernet + a 20-byte IPv4 header for `l4_length` bytes of payload and returns
// the offset where the payload starts. The vector is resized to the whole frame.
std::size_t begin_ipv4_frame(std::vector<std::uint8_t>& out, const Route& route,
                             std::uint8_t protocol, std::size_t l4_length) {
  out.assign(kEthernetHeader + kIpHeader + l4_length, 0);
  put_mac(out, 0, route.dst_mac);
  put_mac(out, 6, route.src_mac);
  put16(out, 12, kEtherTypeIpv4);
  const std::size_t ip = kEthernetHeader;
  out[ip] = 0x45;
  put16(out, ip + 2, static_cast<std::uint32_t>(kIpHeader + l4_length));
  put16(out, ip + 4, route.ip_id);
  put16(out, ip + 6, 0x4000);  // DF
  out[ip + 8] = 64;
  out[ip + 9] = protocol;
  put32(out, ip + 12, route.src_ip);
  put32(out, ip + 16, route.dst_ip);
  const auto header = Bytes(out).subspan(ip, kIpHeader);
  put16(out, ip + 10, checksum_fold(checksum_add(0, header)));
  return ip + kIpHeader;
}

}  // namespace

std::uint32_t checksum_add(std::uint32_t sum, Bytes bytes) {
  std::size_t i = 0;
  // Fold as we go so the 32-bit sum never overflows, whatever the length.
  for (; i + 1 < bytes.size(); i += 2) {
    sum += static_cast<std::uint32_t>((bytes[i] << 8) | bytes[i + 1]);
    if (sum & 0x80000000U) sum = (sum & 0xffffU) + (sum >> 16);
  }
  if (i < bytes.size()) sum += static_cast<std::uint32_t>(bytes[i] << 8);
  return sum;
}

std::uint16_t checksum_fold(std::uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffffU) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum & 0xffffU);
}

std::uint32_t pseudo_header_sum(Ipv4Address src, Ipv4Address dst, std::uint8_t protocol,
                                std::size_t length) {
  std::uint32_t sum = 0;
  sum += src >> 16;
  sum += src & 0xffffU;
  sum += dst >> 16;
  sum += dst & 0xffffU;
  sum += protocol;
  sum += static_cast<std::uint32_t>(length & 0xffffU);
  return sum;
}

std::optional<EthernetView> EthernetView::parse(Bytes frame) {
  if (frame.size() < kEthernetHeader) return std::nullopt;
  EthernetView v;
  v.dst = mac_at(frame, 0);
  v.src = mac_at(frame, 6);
  v.ethertype = be16(frame, 12);
  v.payload = frame.subspan(kEthernetHeader);
  return v;
}

std::optional<ArpView> ArpView::parse(Bytes p, ParseError* error) {
  if (p.size() < 28) return fail(error, ParseError::truncated), std::nullopt;
  if (be16(p, 0) != 1 || be16(p, 2) != kEtherTypeIpv4 || p[4] != 6 || p[5] != 4)
    return fail(error, ParseError::malformed), std::nullopt;
  ArpView v;
  v.operation = be16(p, 6);
  v.sender_mac = mac_at(p, 8);
  v.sender_ip = be32(p, 14);
  v.target_mac = mac_at(p, 18);
  v.target_ip = be32(p, 24);
  return v;
}

std::optional<Ipv4View> Ipv4View::parse(Bytes p, ParseError* error) {
  if (p.size() < kIpHeader) return fail(error, ParseError::truncated), std::nullopt;
  if ((p[0] >> 4) != 4) return fail(error, ParseError::malformed), std::nullopt;
  const auto header_length = static_cast<std::uint8_t>((p[0] & 0x0fU) * 4U);
  if (header_length < kIpHeader) return fail(error, ParseError::malformed), std::nullopt;
  if (p.size() < header_length) return fail(error, ParseError::truncated), std::nullopt;
  const std::uint16_t total = be16(p, 2);
  if (total < header_length) return fail(error, ParseError::malformed), std::nullopt;
  if (total > p.size()) return fail(error, ParseError::truncated), std::nullopt;
  if (checksum_fold(checksum_add(0, p.first(header_length))) != 0)
    return fail(error, ParseError::bad_checksum), std::nullopt;
  Ipv4View v;
  v.header_length = header_length;
  v.total_length = total;
  v.identification = be16(p, 4);
  const std::uint16_t flags_offset = be16(p, 6);
  v.fragment = (flags_offset & 0x2000U) != 0 || (flags_offset & 0x1fffU) != 0;
  v.ttl = p[8];
  v.protocol = p[9];
  v.src = be32(p, 12);
  v.dst = be32(p, 16);
  v.header = p.first(header_length);
  v.payload = p.subspan(header_length, total - header_length);
  return v;
}

std::optional<IcmpView> IcmpView::parse(Bytes m, ParseError* error) {
  if (m.size() < 8) return fail(error, ParseError::truncated), std::nullopt;
  if (checksum_fold(checksum_add(0, m)) != 0)
    return fail(error, ParseError::bad_checksum), std::nullopt;
  IcmpView v;
  v.type = m[0];
  v.code = m[1];
  v.identifier = be16(m, 4);
  v.sequence = be16(m, 6);
  v.rest = m.subspan(8);
  return v;
}

std::optional<UdpView> UdpView::parse(Bytes d, Ipv4Address src, Ipv4Address dst,
                                      ParseError* error) {
  if (d.size() < 8) return fail(error, ParseError::truncated), std::nullopt;
  const std::uint16_t length = be16(d, 4);
  if (length < 8) return fail(error, ParseError::malformed), std::nullopt;
  if (length > d.size()) return fail(error, ParseError::truncated), std::nullopt;
  const Bytes datagram = d.first(length);
  if (be16(d, 6) != 0) {
    const std::uint32_t sum = checksum_add(pseudo_header_sum(src, dst, kProtoUdp, length), datagram);
    if (checksum_fold(sum) != 0) return fail(error, ParseError::bad_checksum), std::nullopt;
  }
  UdpView v;
  v.src_port = be16(d, 0);
  v.dst_port = be16(d, 2);
  v.payload = datagram.subspan(8);
  return v;
}

std::optional<TcpView> TcpView::parse(Bytes s, Ipv4Address src, Ipv4Address dst,
                                      ParseError* error) {
  if (s.size() < 20) return fail(error, ParseError::truncated), std::nullopt;
  const auto header_length = static_cast<std::uint8_t>((s[12] >> 4) * 4);
  if (header_length < 20) return fail(error, ParseError::malformed), std::nullopt;
  if (header_length > s.size()) return fail(error, ParseError::truncated), std::nullopt;
  const std::uint32_t sum = checksum_add(pseudo_header_sum(src, dst, kProtoTcp, s.size()), s);
  if (checksum_fold(sum) != 0) return fail(error, ParseError::bad_checksum), std::nullopt;
  TcpView v;
  v.src_port = be16(s, 0);
  v.dst_port = be16(s, 2);
  v.seq = be32(s, 4);
  v.ack = be32(s, 8);
  v.header_length = header_length;
  v.flags = s[13] & 0x3fU;
  v.window = be16(s, 14);
  v.payload = s.subspan(header_length);
  const Bytes options = s.subspan(20, header_length - 20U);
  for (std::size_t i = 0; i < options.size();) {
    const std::uint8_t kind = options[i];
    if (kind == 0) break;  // end of list
    if (kind == 1) {       // no-op
      ++i;
      continue;
    }
    if (i + 1 >= options.size()) break;
    const std::uint8_t length = options[i + 1];
    if (length < 2 || i + length > options.size()) break;
    if (kind == 2 && length == 4) v.mss = be16(options, i + 2);
    if (kind == 3 && length == 3) v.window_scale = std::min<std::uint8_t>(options[i + 2], 14);
    i += length;
  }
  return v;
}

void build_arp_reply(std::vector<std::uint8_t>& out, const MacAddress& our_mac, Ipv4Address our_ip,
                     const MacAddress& peer_mac, Ipv4Address peer_ip) {
  out.assign(kEthernetHeader + 28, 0);
  put_mac(out, 0, peer_mac);
  put_mac(out, 6, our_mac);
  put16(out, 12, kEtherTypeArp);
  const std::size_t a = kEthernetHeader;
  put16(out, a, 1);
  put16(out, a + 2, kEtherTypeIpv4);
  out[a + 4] = 6;
  out[a + 5] = 4;
  put16(out, a + 6, 2);
  put_mac(out, a + 8, our_mac);
  put32(out, a + 14, our_ip);
  put_mac(out, a + 18, peer_mac);
  put32(out, a + 24, peer_ip);
}

void build_tcp_frame(std::vector<std::uint8_t>& out, const Route& route, const TcpSegment& seg,
                     Bytes payload) {
  const std::size_t options = (seg.mss ? 4U : 0U) + (seg.window_scale ? 4U : 0U);
  const std::size_t header = 20 + options;
  const std::size_t at = begin_ipv4_frame(out, route, kProtoTcp, header + payload.size());
  put16(out, at, seg.src_port);
  put16(out, at + 2, seg.dst_port);
  put32(out, at + 4, seg.seq);
  put32(out, at + 8, seg.ack);
  out[at + 12] = static_cast<std::uint8_t>((header / 4) << 4);
  out[at + 13] = seg.flags;
  put16(out, at + 14, seg.window);
  std::size_t o = at + 20;
  if (seg.mss) {
    out[o] = 2;
    out[o + 1] = 4;
    put16(out, o + 2, *seg.mss);
    o += 4;
  }
  if (seg.window_scale) {
    out[o] = 1;  // NOP keeps the list 4-byte aligned
    out[o + 1] = 3;
    out[o + 2] = 3;
    out[o + 3] = *seg.window_scale;
    o += 4;
  }
  std::copy(payload.begin(), payload.end(), out.begin() + static_cast<std::ptrdiff_t>(o));
  const std::size_t length = header + payload.size();
  const std::uint32_t sum = checksum_add(pseudo_header_sum(route.src_ip, route.dst_ip, kProtoTcp, length),
                                         Bytes(out).subspan(at, length));
  put16(out, at + 16, checksum_fold(sum));
}

void build_udp_frame(std::vector<std::uint8_t>& out, const Route& route, std::uint16_t src_port,
                     std::uint16_t dst_port, Bytes payload) {
  const std::size_t length = 8 + payload.size();
  const std::size_t at = begin_ipv4_frame(out, route, kProtoUdp, length);
  put16(out, at, src_port);
  put16(out, at + 2, dst_port);
  put16(out, at + 4, static_cast<std::uint32_t>(length));
  std::copy(payload.begin(), payload.end(), out.begin() + static_cast<std::ptrdiff_t>(at + 8));
  const std::uint32_t sum = checksum_add(pseudo_header_sum(route.src_ip, route.dst_ip, kProtoUdp, length),
                                         Bytes(out).subspan(at, length));
  std::uint16_t folded = checksum_fold(sum);
  if (folded == 0) folded = 0xffff;  // zero means "no checksum" in UDP
  put16(out, at + 6, folded);
}

void build_icmp_frame(std::vector<std::uint8_t>& out, const Route& route, std::uint8_t type,
                      std::uint8_t code, std::uint32_t rest_of_header, Bytes data) {
  const std::size_t length = 8 + data.size();
  const std::size_t at = begin_ipv4_frame(out, route, kProtoIcmp, length);
  out[at] = type;
  out[at + 1] = code;
  put32(out, at + 4, rest_of_header);
  std::copy(data.begin(), data.end(), out.begin() + static_cast<std::ptrdiff_t>(at + 8));
  put16(out, at + 2, checksum_fold(checksum_add(0, Bytes(out).subspan(at, length))));
}

}  // namespace airlock::netstack
