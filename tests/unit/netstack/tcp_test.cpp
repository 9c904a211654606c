// The TCP terminator driven by a scripted guest: handshake, data, windows, close, reset,
// timers and caps.
#include <doctest/doctest.h>

#include "tests/unit/netstack/guest_sim.hpp"

using namespace airlock::netstack;
using namespace airlock::netstack::test;
using std::chrono::milliseconds;

namespace {

constexpr Ipv4Address kDst = ipv4(93, 184, 216, 34);

Config small_config() {
  Config c;
  c.mtu = 1500;
  c.isn_seed = 42;
  c.receive_buffer = 4096;
  c.send_buffer = 8192;
  return c;
}

}  // namespace

TEST_CASE("handshake: FlowRequested - accept gives SYN-ACK with MSS and window scale") {
  Config config;
  config.isn_seed = 1;
  NetStack stack(config, nullptr);
  GuestSim guest(stack);
  GuestConn conn{guest, kDst, 443};
  conn.syn();
  auto events = guest.take_events();
  REQUIRE(events.size() == 1);
  const auto req = std::get<FlowRequested>(events[0]);
  CHECK(req.key == FlowKey{40000, kDst, 443});
  REQUIRE(stack.accept(req.id, guest.now));
  CHECK_FALSE(stack.accept(req.id, guest.now));  // only once
  auto out = guest.take_tcp();
  REQUIRE(out.size() == 1);
  CHECK(out[0].src_ip == kDst);
  CHECK(out[0].src_port == 443);
  CHECK(out[0].dst_port == 40000);
  CHECK(out[0].mss == 65480);
  CHECK(out[0].window_scale == 5);  // 1 MiB receive buffer
  CHECK(out[0].ack == 1001);
  // Same seed, same ISN.
  NetStack again(config, nullptr);
  GuestSim guest2(again);
  GuestConn conn2{guest2, kDst, 443};
  CHECK(conn2.open(again).seq == out[0].seq);
}

TEST_CASE("handshake: no window scale offered - none used") {
  NetStack stack(small_config(), nullptr);
  GuestSim guest(stack);
  GuestConn conn{guest, kDst, 80};
  const auto synack = conn.open(stack, 1460, std::nullopt);
  CHECK_FALSE(synack.window_scale);
  CHECK(synack.mss == 1460);
  CHECK(stack.flow(conn.id)->state == TcpState::established);
}

TEST_CASE("handshake: reject sends RST and closes the flow") {
  NetStack stack(small_config(), nullptr);
  GuestSim guest(stack);
  GuestConn conn{guest, kDst, 25};
  conn.syn();
  const auto id = std::get<FlowRequested>(guest.take_events().at(0)).id;
  REQUIRE(stack.reject(id));
  auto out = guest.take_tcp();
  REQUIRE(out.size() == 1);
  CHECK(out[0].flags == (tcp_flag::rst | tcp_flag::ack));
  CHECK(out[0].ack == 1001);
  auto closed = events_of<FlowClosed>(guest.take_events());
  REQUIRE(closed.size() == 1);
  CHECK(closed[0].reason == "rejected");
  CHECK_FALSE(stack.flow(id));
}

TEST_CASE("handshake: duplicate SYNs while pending are absorbed - pending too long is reset") {
  NetStack stack(small_config(), nullptr);
  GuestSim guest(stack);
  GuestConn conn{guest, kDst, 80};
  conn.syn();
  conn.syn();
  conn.syn();
  auto events = guest.take_events();
  CHECK(events.size() == 1);
  CHECK(guest.take_frames().empty());
  CHECK(stack.counters().tcp_duplicate_syns == 2);
  const auto deadline = stack.next_deadline();
  REQUIRE(deadline);
  CHECK(*deadline == guest.now + small_config().pending_timeout);
  guest.advance(small_config().pending_timeout);
  auto out = guest.take_tcp();
  REQUIRE(out.size() == 1);
  CHECK(out[0].has(tcp_flag::rst));
  auto closed = events_of<FlowClosed>(guest.take_events());
  REQUIRE(closed.size() == 1);
  CHECK(closed[0].reason == "pending_timeout");
  CHECK(stack.flow_count() == 0);
}

TEST_CASE("segments for no flow get RST - RSTs for no flow are ignored") {
  NetStack stack(small_config(), nullptr);
  GuestSim guest(stack);
  guest.send(guest.tcp_frame(kDst, 5000, 80, 10, 77, tcp_flag::ack, 100, "x"));
  auto out = guest.take_tcp();
  REQUIRE(out.size() == 1);
  CHECK(out[0].flags == tcp_flag::rst);
  CHECK(out[0].seq == 77);
  guest.send(guest.tcp_frame(kDst, 5000, 80, 10, 0, tcp_flag::rst, 0));
  CHECK(guest.take_frames().empty());
  CHECK(stack.counters().dropped_tcp_no_flow == 2);
}

TEST_CASE("data guest -> host: readable - read - acknowledged") {
  NetStack stack(small_config(), nullptr);
  GuestSim guest(stack);
  GuestConn conn{guest, kDst, 80};
  conn.open(stack);
  conn.send_data("GET / HTTP/1.1\r\n\r\n");
  auto out = conn.receive();
  REQUIRE(out.size() == 1);
  CHECK(out[0].flags == tcp_flag::ack);
  CHECK(out[0].ack == conn.seq);
  auto events = guest.take_events();
  REQUIRE(events.size() == 1);
  CHECK(std::get<FlowReadable>(events[0]).id == conn.id);
  CHECK(string_of(stack.read(conn.id, 4, guest.now)) == "GET ");
  CHECK(string_of(stack.read(conn.id, 100, guest.now)) == "/ HTTP/1.1\r\n\r\n");
  CHECK(stack.read(conn.id, 100, guest.now).empty());

  // A retransmission of old data is acknowledged, not delivered twice.
  guest.send(guest.tcp_frame(kDst, conn.sport, 80, conn.seq - 4, conn.ack, tcp_flag::ack, 1000, "\r\n\r\n"));
  out = conn.receive();
  REQUIRE(out.size() == 1);
  CHECK(out[0].ack == conn.seq);
  CHECK(stack.flow(conn.id)->readable == 0);

  // Overlapping: old prefix trimmed, new suffix taken.
  guest.send(guest.tcp_frame(kDst, conn.sport, 80, conn.seq - 2, conn.ack, tcp_flag::ack, 1000, "\r\nXY"));
  conn.seq += 2;
  conn.receive();
  CHECK(string_of(stack.read(conn.id, 100, guest.now)) == "XY");
}

TEST_CASE("out-of-order segments are dropped with a duplicate ACK") {
  NetStack stack(small_config(), nullptr);
  GuestSim guest(stack);
  GuestConn conn{guest, kDst, 80};
  conn.open(stack);
  guest.send(guest.tcp_frame(kDst, conn.sport, 80, conn.seq + 10, conn.ack, tcp_flag::ack, 1000, "later"));
  auto out = conn.receive();
  REQUIRE(out.size() == 1);
  CHECK(out[0].ack == conn.seq);
  CHECK(stack.counters().dropped_tcp_out_of_order == 1);
  CHECK(stack.flow(conn.id)->readable == 0);
}

TEST_CASE("data host -> guest: segmented by MSS - checksummed - acknowledged") {
  NetStack stack(small_config(), nullptr);
  GuestSim guest(stack);
  GuestConn conn{guest, kDst, 80};
  conn.open(stack, 1000, 0);
  std::string body(2500, 'b');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 26);
  CHECK(stack.send(conn.id, bytes_of(body), guest.now) == body.size());
  auto out = conn.receive();
  REQUIRE(out.size() == 3);
  CHECK(out[0].payload.size() == 1000);
  CHECK(out[1].payload.size() == 1000);
  CHECK(out[2].payload.size() == 500);
  CHECK(out[2].has(tcp_flag::psh));
  CHECK(out[0].payload + out[1].payload + out[2].payload == body);
  CHECK(stack.flow(conn.id)->unacked == 2500);
  conn.send_ack();
  CHECK(stack.flow(conn.id)->unacked == 0);
  CHECK_FALSE(stack.next_deadline() < guest.now + milliseconds(1000000));  // no RTO armed: idle only
}

TEST_CASE("host -> guest respects the guest's window and resumes on its ACK") {
  NetStack stack(small_config(), nullptr);
  GuestSim guest(stack);
  GuestConn conn{guest, kDst, 80};
  conn.window = 1500;
  conn.open(stack, 1000, 0);
  CHECK(stack.send(conn.id, bytes_of(std::string(4000, 'z')), guest.now) == 4000);
  auto out = conn.receive();
  REQUIRE(out.size() == 2);  // 1000 + 500 fills the 1500-byte window
  CHECK(out[1].payload.size() == 500);
  conn.send_ack();
  out = conn.receive();
  REQUIRE(out.size() == 2);
  conn.send_ack();
  out = conn.receive();
  REQUIRE(out.size() == 1);
  CHECK(out[0].payload.size() == 1000);
  conn.send_ack();
  CHECK(stack.flow(conn.id)->unacked == 0);
}

TEST_CASE("receive window fills - excess is dropped - reading reopens it with a window update") {
  NetStack stack(small_config(), nullptr);  // 4096-byte receive buffer
  GuestSim guest(stack);
  GuestConn conn{guest, kDst, 80};
  conn.open(stack, 1460, std::nullopt);
  for (int i = 0; i < 4; ++i) conn.send_data(std::string(1024, 'a'));
  auto out = conn.receive();
  REQUIRE(out.size() == 4);
  CHECK(out.back().window == 0);
  CHECK(out.back().ack == conn.seq);
  // Beyond the window: dropped, the ACK does not move.
  conn.send_data("overflow");
  out = conn.receive();
  REQUIRE(out.size() == 1);
  CHECK(out[0].ack == conn.seq - 8);
  conn.seq -= 8;
  CHECK(stack.counters().dropped_tcp_out_of_window == 1);
  // Reading a little does not announce a silly window; reading enough does.
  CHECK(stack.read(conn.id, 100, guest.now).size() == 100);
  CHECK(guest.take_frames().empty());
  CHECK(stack.read(conn.id, 2000, guest.now).size() == 2000);
  out = conn.receive();
  REQUIRE(out.size() == 1);
  CHECK(out[0].window == 2100);
  CHECK(out[0].ack == conn.seq);
  CHECK(stack.counters().tcp_window_updates == 1);
  conn.send_data("more");
  CHECK(stack.flow(conn.id)->readable == 4096 - 2100 + 4);
}

TEST_CASE("zero window: persist probes - then data once the window opens") {
  NetStack stack(small_config(), nullptr);
  GuestSim guest(stack);
  GuestConn conn{guest, kDst, 80};
  conn.window = 0;
  conn.open(stack, 1000, 0);
  CHECK(stack.send(conn.id, bytes_of("hello"), guest.now) == 5);
  CHECK(guest.take_frames().empty());
  guest.advance(small_config().persist_interval);
  auto out = conn.receive();
  REQUIRE(out.size() == 1);
  CHECK(out[0].payload.empty());
  CHECK(out[0].seq == conn.ack - 1);  // a probe the guest must answer
  CHECK(stack.counters().tcp_window_probes == 1);
  guest.advance(small_config().persist_interval);  // backed off: not yet
  CHECK(guest.take_frames().empty());
  guest.advance(small_config().persist_interval);
  CHECK(conn.receive().size() == 1);
  conn.window = 100;
  conn.send_ack();
  out = conn.receive();
  REQUIRE(out.size() == 1);
  CHECK(out[0].payload == "hello");
}

TEST_CASE("zero window stuck too long resets the flow") {
  auto config = small_config();
  config.zero_window_timeout = milliseconds(3000);
  NetStack stack(config, nullptr);
  GuestSim guest(stack);
  GuestConn conn{guest, kDst, 80};
  conn.window = 0;
  conn.open(stack, 1000, 0);
  stack.send(conn.id, bytes_of("x"), guest.now);
  for (int i = 0; i < 20 && stack.flow(conn.id); ++i) {
    guest.advance(milliseconds(500));
    conn.send_ack();  // answers each probe, window still zero
  }
  CHECK_FALSE(stack.flow(conn.id));
  auto closed = events_of<FlowClosed>(guest.take_events());
  REQUIRE(closed.size() == 1);
  CHECK(closed[0].reason == "zero_window_timeout");
}

TEST_CASE("unacknowledged data is retransmitted on timeout - then the flow is reset") {
  NetStack stack(small_config(), nullptr);
  GuestSim guest(stack);
  GuestConn conn{guest, kDst, 80};
  conn.open(stack, 1000, 0);
  stack.send(conn.id, bytes_of("data"), guest.now);
  auto first = conn.receive();
  REQUIRE(first.size() == 1);
  guest.advance(small_config().initial_rto);
  auto again = guest.take_tcp();
  REQUIRE(again.size() == 1);
  CHECK(again[0].seq == first[0].seq);
  CHECK(again[0].payload == "data");
  CHECK(stack.counters().tcp_retransmits == 1);
  for (int i = 0; i < 20 && stack.flow(conn.id); ++i) guest.advance(small_config().max_rto);
  CHECK_FALSE(stack.flow(conn.id));
  auto closed = events_of<FlowClosed>(guest.take_events());
  REQUIRE(closed.size() == 1);
  CHECK(closed[0].reason == "retransmit_timeout");
}

TEST_CASE("FIN both ways: guest closes first") {
  NetStack stack(small_config(), nullptr);
  GuestSim guest(stack);
  GuestConn conn{guest, kDst, 80};
  conn.open(stack);
  conn.send_data("bye", tcp_flag::fin);
  auto out = conn.receive();
  REQUIRE(out.size() == 1);
  CHECK(out[0].ack == conn.seq);
  auto events = guest.take_events();
  CHECK(events_of<FlowReadable>(events).size() == 1);
  CHECK(events_of<FlowReadClosed>(events).size() == 1);
  CHECK(stack.flow(conn.id)->read_closed);
  // The host can still send after the guest's half-close.
  CHECK(stack.send(conn.id, bytes_of("reply"), guest.now) == 5);
  REQUIRE(stack.shutdown_write(conn.id, guest.now));
  out = conn.receive();
  REQUIRE(out.size() == 2);
  CHECK(out[0].payload == "reply");
  CHECK(out[1].has(tcp_flag::fin));
  conn.send_ack();
  CHECK(events_of<FlowClosed>(guest.take_events()).empty());  // "bye" is still unread
  CHECK(string_of(stack.read(conn.id, 10, guest.now)) == "bye");
  auto closed = events_of<FlowClosed>(guest.take_events());
  REQUIRE(closed.size() == 1);
  CHECK(closed[0].reason == "closed");
  CHECK(closed[0].bytes_in == 3);
  CHECK(closed[0].bytes_out == 5);
  CHECK(stack.flow(conn.id)->state == TcpState::time_wait);
  // A retransmitted FIN in TIME_WAIT is acknowledged again.
  guest.send(guest.tcp_frame(kDst, conn.sport, 80, conn.seq - 1, conn.ack, tcp_flag::ack | tcp_flag::fin, 1000));
  CHECK(conn.receive().size() == 1);
  guest.advance(small_config().time_wait);
  CHECK_FALSE(stack.flow(conn.id));
  CHECK(guest.take_events().empty());
}

TEST_CASE("FIN both ways: host closes first") {
  NetStack stack(small_config(), nullptr);
  GuestSim guest(stack);
  GuestConn conn{guest, kDst, 80};
  conn.open(stack);
  REQUIRE(stack.shutdown_write(conn.id, guest.now));
  CHECK(stack.send(conn.id, bytes_of("late"), guest.now) == 0);
  auto out = conn.receive();
  REQUIRE(out.size() == 1);
  CHECK(out[0].has(tcp_flag::fin));
  conn.send_ack();
  CHECK(guest.take_events().empty());
  conn.send_data("still talking");
  conn.receive();
  CHECK(string_of(stack.read(conn.id, 100, guest.now)) == "still talking");
  conn.send_fin();
  CHECK(conn.receive().size() == 1);
  auto events = guest.take_events();
  CHECK(events_of<FlowReadClosed>(events).size() == 1);
  REQUIRE(events_of<FlowClosed>(events).size() == 1);
  CHECK(std::holds_alternative<FlowClosed>(events.back()));
}

TEST_CASE("RST from the guest: FlowReset then FlowClosed - out-of-window RST ignored") {
  NetStack stack(small_config(), nullptr);
  GuestSim guest(stack);
  GuestConn conn{guest, kDst, 80};
  conn.open(stack);
  guest.send(guest.tcp_frame(kDst, conn.sport, 80, conn.seq + 100000, 0, tcp_flag::rst, 0));
  CHECK(stack.flow(conn.id));
  conn.send_rst();
  auto events = guest.take_events();
  REQUIRE(events.size() == 2);
  CHECK(std::holds_alternative<FlowReset>(events[0]));
  CHECK(std::get<FlowClosed>(events[1]).reason == "reset_by_guest");
  CHECK_FALSE(stack.flow(conn.id));
  CHECK(guest.take_frames().empty());
}

TEST_CASE("abort sends RST to the guest") {
  NetStack stack(small_config(), nullptr);
  GuestSim guest(stack);
  GuestConn conn{guest, kDst, 80};
  conn.open(stack);
  REQUIRE(stack.abort(conn.id));
  auto out = conn.receive();
  REQUIRE(out.size() == 1);
  CHECK(out[0].has(tcp_flag::rst));
  CHECK(out[0].seq == conn.ack);
  CHECK(std::get<FlowClosed>(guest.take_events().at(0)).reason == "aborted");
  CHECK_FALSE(stack.abort(conn.id));
}

TEST_CASE("caps: max flows and max half-open flows get RST") {
  auto config = small_config();
  config.max_flows = 3;
  config.max_pending_flows = 2;
  NetStack stack(config, nullptr);
  GuestSim guest(stack);
  for (std::uint16_t port = 1; port <= 3; ++port)
    guest.send(guest.tcp_frame(kDst, port, 80, 1, 0, tcp_flag::syn, 1000));
  auto events = guest.take_events();
  CHECK(events_of<FlowRequested>(events).size() == 2);
  // The refused SYN is reported, so the attempt gets its record upstairs.
  auto refused = events_of<FlowRefused>(events);
  REQUIRE(refused.size() == 1);
  CHECK(refused[0].reason == "pending_cap");
  CHECK(refused[0].key.guest_port == 3);
  auto out = guest.take_tcp();
  REQUIRE(out.size() == 1);
  CHECK(out[0].has(tcp_flag::rst));
  CHECK(out[0].dst_port == 3);
  CHECK(stack.counters().dropped_tcp_pending_cap == 1);

  // Complete the two pending flows, then open one more: the fourth hits max_flows.
  for (FlowId id = 1; id <= 2; ++id) REQUIRE(stack.accept(id, guest.now));
  for (const auto& s : guest.take_tcp())
    guest.send(guest.tcp_frame(kDst, s.dst_port, 80, 2, s.seq + 1, tcp_flag::ack, 1000));
  guest.send(guest.tcp_frame(kDst, 10, 80, 1, 0, tcp_flag::syn, 1000));
  guest.send(guest.tcp_frame(kDst, 11, 80, 1, 0, tcp_flag::syn, 1000));
  auto later = guest.take_events();
  CHECK(events_of<FlowRequested>(later).size() == 1);
  REQUIRE(events_of<FlowRefused>(later).size() == 1);
  CHECK(events_of<FlowRefused>(later)[0].reason == "flow_cap");
  CHECK(stack.counters().dropped_tcp_flow_cap == 1);
  CHECK(stack.flow_count() == 3);
}

TEST_CASE("send buffer is bounded and signals writable when it drains") {
  NetStack stack(small_config(), nullptr);  // 8192-byte send buffer
  GuestSim guest(stack);
  GuestConn conn{guest, kDst, 80};
  conn.window = 0;
  conn.open(stack, 1000, 0);
  CHECK(stack.send(conn.id, bytes_of(std::string(10000, 'q')), guest.now) == 8192);
  CHECK(stack.send(conn.id, bytes_of("x"), guest.now) == 0);
  conn.window = 2000;
  conn.send_ack();
  conn.receive();
  conn.send_ack();
  auto writable = events_of<FlowWritable>(guest.take_events());
  REQUIRE(writable.size() == 1);
  CHECK(stack.send(conn.id, bytes_of("x"), guest.now) == 1);
}

TEST_CASE("idle flows are reset") {
  auto config = small_config();
  config.idle_timeout = milliseconds(5000);
  NetStack stack(config, nullptr);
  GuestSim guest(stack);
  GuestConn conn{guest, kDst, 80};
  conn.open(stack);
  REQUIRE(stack.next_deadline());
  CHECK(*stack.next_deadline() == guest.now + milliseconds(5000));
  guest.advance(milliseconds(5000));
  CHECK_FALSE(stack.flow(conn.id));
  CHECK(std::get<FlowClosed>(guest.take_events().at(0)).reason == "idle_timeout");
}

TEST_CASE("a new SYN on a TIME_WAIT port opens a new flow") {
  NetStack stack(small_config(), nullptr);
  GuestSim guest(stack);
  GuestConn conn{guest, kDst, 80};
  conn.open(stack);
  stack.shutdown_write(conn.id, guest.now);
  conn.receive();
  conn.send_fin();
  conn.receive();
  REQUIRE(stack.flow(conn.id)->state == TcpState::time_wait);
  guest.take_events();
  GuestConn again{guest, kDst, 80};
  again.seq = conn.seq + 100000;
  again.open(stack);
  CHECK(again.id != conn.id);
  CHECK_FALSE(stack.flow(conn.id));
}
