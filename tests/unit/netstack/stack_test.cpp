// NetStack below TCP: ARP, ICMP, UDP/DNS and the IPv4/Ethernet drop rules.
#include <doctest/doctest.h>

#include "tests/unit/netstack/guest_sim.hpp"

using namespace airlock::netstack;
using namespace airlock::netstack::test;

namespace {

const Config kConfig{};

Frame arp_request(Ipv4Address sender_ip, Ipv4Address target_ip) {
  Frame f(42, 0);
  std::fill(f.begin(), f.begin() + 6, 0xff);
  std::copy(kConfig.guest_mac.begin(), kConfig.guest_mac.end(), f.begin() + 6);
  f[12] = 0x08; f[13] = 0x06;
  const std::uint8_t fixed[] = {0, 1, 8, 0, 6, 4, 0, 1};
  std::copy(std::begin(fixed), std::end(fixed), f.begin() + 14);
  std::copy(kConfig.guest_mac.begin(), kConfig.guest_mac.end(), f.begin() + 22);
  for (int i = 0; i < 4; ++i) f[28 + i] = static_cast<std::uint8_t>(sender_ip >> (24 - 8 * i));
  for (int i = 0; i < 4; ++i) f[38 + i] = static_cast<std::uint8_t>(target_ip >> (24 - 8 * i));
  return f;
}

Route guest_route(Ipv4Address dst) { return Route{kConfig.guest_mac, kConfig.gateway_mac, kConfig.guest_ip, dst, 1}; }

Frame ping(Ipv4Address dst) {
  Frame f;
  build_icmp_frame(f, guest_route(dst), 8, 0, 0x12340001, bytes_of("abcdefgh"));
  return f;
}

Frame udp(Ipv4Address dst, std::uint16_t dport, const std::string& payload) {
  Frame f;
  build_udp_frame(f, guest_route(dst), 5353, dport, bytes_of(payload));
  return f;
}

void fix_ip_checksum(Frame& f) {
  const std::size_t ihl = (f[14] & 0x0fU) * 4U;
  f[24] = f[25] = 0;
  const auto sum = checksum_fold(checksum_add(0, std::span(f).subspan(14, ihl)));
  f[24] = static_cast<std::uint8_t>(sum >> 8);
  f[25] = static_cast<std::uint8_t>(sum & 0xff);
}

}  // namespace

TEST_CASE("ARP: answers for the gateway only - never DAD probes") {
  NetStack stack(kConfig, nullptr);
  GuestSim guest(stack);
  guest.send(arp_request(kConfig.guest_ip, kConfig.gateway_ip));
  auto frames = guest.take_frames();
  REQUIRE(frames.size() == 1);
  const auto eth = EthernetView::parse(frames[0]);
  REQUIRE(eth);
  CHECK(eth->dst == kConfig.guest_mac);
  const auto arp = ArpView::parse(eth->payload);
  REQUIRE(arp);
  CHECK(arp->operation == 2);
  CHECK(arp->sender_mac == kConfig.gateway_mac);
  CHECK(arp->sender_ip == kConfig.gateway_ip);
  CHECK(arp->target_ip == kConfig.guest_ip);
  CHECK(stack.counters().arp_replies == 1);

  guest.send(arp_request(0, kConfig.guest_ip));          // DAD probe for its own address
  guest.send(arp_request(0, kConfig.gateway_ip));        // DAD probe naming the gateway
  guest.send(arp_request(kConfig.guest_ip, ipv4(192, 168, 127, 9)));  // someone else
  CHECK(guest.take_frames().empty());
  CHECK(stack.counters().dropped_arp_probe == 2);
  CHECK(stack.counters().dropped_arp_other == 1);
}

TEST_CASE("ARP learns the guest MAC") {
  NetStack stack(kConfig, nullptr);
  auto f = arp_request(kConfig.guest_ip, kConfig.gateway_ip);
  const MacAddress mac{0x52, 0x54, 0, 1, 2, 3};
  std::copy(mac.begin(), mac.end(), f.begin() + 6);
  std::copy(mac.begin(), mac.end(), f.begin() + 22);
  stack.on_frame(f, TimePoint{});
  CHECK(stack.guest_mac() == mac);
}

TEST_CASE("ICMP: ping to the gateway is answered - elsewhere dropped") {
  NetStack stack(kConfig, nullptr);
  GuestSim guest(stack);
  guest.send(ping(kConfig.gateway_ip));
  auto frames = guest.take_frames();
  REQUIRE(frames.size() == 1);
  const auto ip = parse_ip_out(frames[0], kConfig);
  CHECK(ip.src == kConfig.gateway_ip);
  const auto icmp = IcmpView::parse(ip.payload);  // checksum verified
  REQUIRE(icmp);
  CHECK(icmp->type == 0);
  CHECK(icmp->identifier == 0x1234);
  CHECK(icmp->sequence == 1);
  CHECK(string_of(icmp->rest) == "abcdefgh");

  guest.send(ping(ipv4(8, 8, 8, 8)));
  CHECK(guest.take_frames().empty());
  CHECK(stack.counters().dropped_not_for_us == 1);
  CHECK(stack.counters().icmp_echo_replies == 1);
}

TEST_CASE("UDP: gateway:53 goes to the DNS callback - the rest gets port unreachable") {
  std::string seen;
  NetStack stack(kConfig, [&](std::span<const std::uint8_t> q) -> std::optional<std::vector<std::uint8_t>> {
    seen = string_of(q);
    return bytes_of("answer");
  });
  GuestSim guest(stack);
  guest.send(udp(kConfig.gateway_ip, 53, "query"));
  auto frames = guest.take_frames();
  REQUIRE(frames.size() == 1);
  CHECK(seen == "query");
  auto ip = parse_ip_out(frames[0], kConfig);
  CHECK(ip.src == kConfig.gateway_ip);
  auto reply = UdpView::parse(ip.payload, ip.src, ip.dst);
  REQUIRE(reply);
  CHECK(reply->src_port == 53);
  CHECK(reply->dst_port == 5353);
  CHECK(string_of(reply->payload) == "answer");

  guest.send(udp(ipv4(8, 8, 8, 8), 53, "query"));
  guest.send(udp(kConfig.gateway_ip, 123, "ntp"));
  frames = guest.take_frames();
  REQUIRE(frames.size() == 2);
  ip = parse_ip_out(frames[0], kConfig);
  CHECK(ip.src == ipv4(8, 8, 8, 8));
  auto icmp = IcmpView::parse(ip.payload);
  REQUIRE(icmp);
  CHECK(icmp->type == 3);
  CHECK(icmp->code == 3);
  CHECK(icmp->rest.size() == 28);  // quoted IP header + 8 bytes
  CHECK(stack.counters().dropped_udp_other == 2);
  CHECK(stack.counters().icmp_unreachable_sent == 2);
}

TEST_CASE("UDP: port-unreachable replies are capped per second") {
  Config config;
  config.icmp_errors_per_second = 3;
  NetStack stack(config, nullptr);
  GuestSim guest(stack);
  for (int i = 0; i < 10; ++i) guest.send(udp(kConfig.gateway_ip, 9, "x"));
  CHECK(guest.take_frames().size() == 3);
  CHECK(stack.counters().icmp_rate_limited == 7);
  guest.now += std::chrono::seconds(1);
  guest.send(udp(kConfig.gateway_ip, 9, "x"));
  CHECK(guest.take_frames().size() == 1);
}

TEST_CASE("dropped: IPv6 - fragments - bad checksums - bad sources - broadcast - other MACs") {
  NetStack stack(kConfig, [](std::span<const std::uint8_t>) { return std::optional<std::vector<std::uint8_t>>{}; });
  GuestSim guest(stack);

  auto v6 = ping(kConfig.gateway_ip);
  v6[12] = 0x86; v6[13] = 0xdd;
  guest.send(v6);
  CHECK(stack.counters().dropped_ipv6 == 1);

  for (const unsigned flags : {0x2000U, 0x0001U, 0x3fffU}) {  // MF, offset, both
    auto frag = ping(kConfig.gateway_ip);
    frag[20] = static_cast<std::uint8_t>(flags >> 8);
    frag[21] = static_cast<std::uint8_t>(flags & 0xff);
    fix_ip_checksum(frag);
    guest.send(frag);
  }
  CHECK(stack.counters().dropped_fragment == 3);

  auto bad_ip = ping(kConfig.gateway_ip);
  bad_ip[24] ^= 0x01;
  guest.send(bad_ip);
  auto bad_icmp = ping(kConfig.gateway_ip);
  bad_icmp.back() ^= 0x01;
  guest.send(bad_icmp);
  auto bad_udp = udp(kConfig.gateway_ip, 53, "q");
  bad_udp.back() ^= 0x01;
  guest.send(bad_udp);
  CHECK(stack.counters().dropped_bad_checksum == 3);

  Frame spoofed;
  build_icmp_frame(spoofed, Route{kConfig.guest_mac, kConfig.gateway_mac, ipv4(10, 0, 0, 1), kConfig.gateway_ip, 1},
                   8, 0, 0, {});
  guest.send(spoofed);
  CHECK(stack.counters().dropped_bad_source == 1);

  guest.send(udp(ipv4(192, 168, 127, 255), 9, "x"));
  guest.send(udp(ipv4(255, 255, 255, 255), 9, "x"));
  guest.send(udp(ipv4(224, 0, 0, 251), 5353, "x"));
  auto other_mac = ping(kConfig.gateway_ip);
  other_mac[5] ^= 0x01;
  guest.send(other_mac);
  CHECK(stack.counters().dropped_not_for_us == 4);

  auto other_type = ping(kConfig.gateway_ip);
  other_type[12] = 0x88; other_type[13] = 0xcc;
  guest.send(other_type);
  CHECK(stack.counters().dropped_ethertype == 1);
  CHECK(guest.take_frames().empty());
}

TEST_CASE("IP total length: shorter than the frame is padding - longer is truncation") {
  NetStack stack(kConfig, nullptr);
  GuestSim guest(stack);
  auto padded = ping(kConfig.gateway_ip);
  padded.resize(padded.size() + 20, 0);
  guest.send(padded);
  auto frames = guest.take_frames();
  REQUIRE(frames.size() == 1);
  auto icmp = IcmpView::parse(parse_ip_out(frames[0], kConfig).payload);
  REQUIRE(icmp);
  CHECK(string_of(icmp->rest) == "abcdefgh");  // the padding is not echoed

  auto longer = ping(kConfig.gateway_ip);
  longer[17] = static_cast<std::uint8_t>(longer[17] + 4);
  fix_ip_checksum(longer);
  guest.send(longer);
  CHECK(guest.take_frames().empty());
  CHECK(stack.counters().dropped_truncated == 1);
}

TEST_CASE("every truncation of a TCP SYN frame is dropped and counted") {
  NetStack stack(kConfig, nullptr);
  GuestSim guest(stack);
  const Frame syn = guest.tcp_frame(ipv4(1, 1, 1, 1), 4000, 80, 1, 0, tcp_flag::syn, 1000, {}, 1460, 7);
  std::uint64_t dropped = 0;
  for (std::size_t n = 0; n < syn.size(); ++n) {
    Frame cut(syn.begin(), syn.begin() + static_cast<std::ptrdiff_t>(n));
    guest.send(cut);
    const auto& c = stack.counters();
    const std::uint64_t now_dropped = c.dropped_truncated + c.dropped_malformed + c.dropped_bad_checksum;
    CHECK(now_dropped == dropped + 1);
    dropped = now_dropped;
  }
  CHECK(guest.take_frames().empty());
  CHECK(guest.take_events().empty());
  // The IP header claims more than is there: truncated; a cut TCP header: checksum/length.
  CHECK(stack.counters().dropped_truncated > 0);
}

TEST_CASE("TCP with a bad checksum is dropped without an answer") {
  NetStack stack(kConfig, nullptr);
  GuestSim guest(stack);
  Frame syn = guest.tcp_frame(ipv4(1, 1, 1, 1), 4000, 80, 1, 0, tcp_flag::syn, 1000);
  syn[14 + 20 + 16] ^= 0x40;
  guest.send(syn);
  CHECK(guest.take_frames().empty());
  CHECK(guest.take_events().empty());
  CHECK(stack.counters().dropped_bad_checksum == 1);
}
