#include <doctest/doctest.h>

#include "proxy/netstack/views.hpp"

using namespace airlock::netstack;

namespace {

Route route() {
  return Route{{2, 0, 0, 0, 0, 1}, {2, 0, 0, 0, 0, 2}, ipv4(192, 168, 127, 2), ipv4(93, 184, 216, 34), 9};
}

}  // namespace

TEST_CASE("checksum matches the RFC 1071 example") {
  const std::uint8_t data[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  CHECK(checksum_fold(checksum_add(0, data)) == static_cast<std::uint16_t>(~0xddf2U & 0xffffU));
  const std::uint8_t odd[] = {0x01};
  CHECK(checksum_fold(checksum_add(0, odd)) == static_cast<std::uint16_t>(~0x0100U & 0xffffU));
}

TEST_CASE("a built TCP frame parses back with options and payload") {
  std::vector<std::uint8_t> frame;
  TcpSegment seg{1234, 443, 100, 200, tcp_flag::syn | tcp_flag::ack, 5000, 1460, 7};
  const std::uint8_t payload[] = {'h', 'i'};
  build_tcp_frame(frame, route(), seg, payload);
  const auto eth = EthernetView::parse(frame);
  REQUIRE(eth);
  const auto ip = Ipv4View::parse(eth->payload);
  REQUIRE(ip);
  CHECK_FALSE(ip->fragment);
  const auto tcp = TcpView::parse(ip->payload, ip->src, ip->dst);
  REQUIRE(tcp);
  CHECK(tcp->seq == 100);
  CHECK(tcp->ack == 200);
  CHECK(tcp->window == 5000);
  CHECK(tcp->mss == 1460);
  CHECK(tcp->window_scale == 7);
  CHECK(tcp->payload.size() == 2);
  // The pseudo-header binds the checksum to the addresses.
  CHECK_FALSE(TcpView::parse(ip->payload, ip->src, ip->dst + 1));
}

TEST_CASE("IPv4 uses the total length - skips options - flags fragments") {
  std::vector<std::uint8_t> frame;
  build_udp_frame(frame, route(), 1000, 53, std::vector<std::uint8_t>{1, 2, 3});
  auto packet = std::vector<std::uint8_t>(frame.begin() + 14, frame.end());
  packet.resize(packet.size() + 10, 0xee);  // Ethernet padding
  auto ip = Ipv4View::parse(packet);
  REQUIRE(ip);
  CHECK(ip->payload.size() == 11);
  auto udp = UdpView::parse(ip->payload, ip->src, ip->dst);
  REQUIRE(udp);
  CHECK(udp->payload.size() == 3);

  // IHL 6: one option word, checksum recomputed.
  std::vector<std::uint8_t> with_option(packet.begin(), packet.begin() + 20);
  with_option.insert(with_option.end(), {1, 1, 1, 0});
  with_option.insert(with_option.end(), packet.begin() + 20, packet.begin() + 31);
  with_option[0] = 0x46;
  with_option[3] = static_cast<std::uint8_t>(with_option.size());
  with_option[10] = with_option[11] = 0;
  const std::uint16_t sum = checksum_fold(checksum_add(0, std::span(with_option).first(24)));
  with_option[10] = static_cast<std::uint8_t>(sum >> 8);
  with_option[11] = static_cast<std::uint8_t>(sum & 0xff);
  ip = Ipv4View::parse(with_option);
  REQUIRE(ip);
  CHECK(ip->header_length == 24);
  CHECK(UdpView::parse(ip->payload, ip->src, ip->dst));

  ParseError why{};
  auto longer = packet;
  longer[3] = 200;  // total length past the end (checksum no longer matters: length first)
  CHECK_FALSE(Ipv4View::parse(std::span(longer).first(31), &why));
  CHECK(why == ParseError::truncated);
}

TEST_CASE("views refuse every truncation") {
  std::vector<std::uint8_t> frame;
  build_tcp_frame(frame, route(), TcpSegment{1, 2, 3, 4, tcp_flag::ack, 5, 1460, 2}, {});
  const std::span<const std::uint8_t> all(frame);
  for (std::size_t n = 0; n < 14; ++n) CHECK_FALSE(EthernetView::parse(all.first(n)));
  const auto ip_bytes = all.subspan(14);
  for (std::size_t n = 0; n < ip_bytes.size(); ++n) CHECK_FALSE(Ipv4View::parse(ip_bytes.first(n)));
  const auto ip = Ipv4View::parse(ip_bytes);
  REQUIRE(ip);
  for (std::size_t n = 0; n < ip->payload.size(); ++n)
    CHECK_FALSE(TcpView::parse(ip->payload.first(n), ip->src, ip->dst));
  for (std::size_t n = 0; n < 28; ++n) CHECK_FALSE(ArpView::parse(ip_bytes.first(std::min(n, ip_bytes.size()))));
  for (std::size_t n = 0; n < 8; ++n) CHECK_FALSE(IcmpView::parse(ip_bytes.first(n)));
}

TEST_CASE("malformed TCP options end option parsing without failing") {
  std::vector<std::uint8_t> frame;
  build_tcp_frame(frame, route(), TcpSegment{1, 2, 3, 4, tcp_flag::syn, 5, 1460, 3}, {});
  // Turn the window-scale option (NOP, 3, 3, 3) into a bad length.
  const std::size_t opt = 14 + 20 + 20 + 4;
  frame[opt + 2] = 40;
  // Recompute the TCP checksum.
  const std::size_t tcp = 14 + 20;
  frame[tcp + 16] = frame[tcp + 17] = 0;
  const auto r = route();
  const std::size_t len = frame.size() - tcp;
  const auto sum = checksum_fold(checksum_add(pseudo_header_sum(r.src_ip, r.dst_ip, kProtoTcp, len),
                                              std::span(frame).subspan(tcp)));
  frame[tcp + 16] = static_cast<std::uint8_t>(sum >> 8);
  frame[tcp + 17] = static_cast<std::uint8_t>(sum & 0xff);
  const auto ip = Ipv4View::parse(std::span(frame).subspan(14));
  REQUIRE(ip);
  const auto seg = TcpView::parse(ip->payload, ip->src, ip->dst);
  REQUIRE(seg);
  CHECK(seg->mss == 1460);
  CHECK_FALSE(seg->window_scale);
}
