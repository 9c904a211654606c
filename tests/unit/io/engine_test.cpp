// NetworkEngine end to end on loopback: the test plays QEMU and the guest, speaking
// length-prefixed Ethernet frames to the engine's Unix socket, and runs TCP servers on
// 127.0.0.1 as "the internet". Every admitted flow goes through the MITM's layers, so the
// byte-level tests use opaque tunnels (rules naming host:port) with non-HTTP payloads.
// Refusals are checked to dial nothing: the servers count their connections, and no
// test ever names a non-loopback address that the policy would let through.
#include <doctest/doctest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio.hpp>

#include "policy/policy.hpp"
#include "proxy/netstack/link.hpp"
#include "proxy/netstack/views.hpp"
#include "policy/engine.hpp"
#include "proxy/guest/engine.hpp"
#include "tests/unit/dns/query_builder.hpp"
#include "tests/unit/netstack/guest_sim.hpp"

namespace asio = boost::asio;
namespace policy = airlock::policy;
namespace netstack = airlock::netstack;
using namespace airlock::guest;
namespace audit = airlock::audit;
namespace mitm = airlock::mitm;
using namespace std::chrono_literals;
using netstack::test::TcpOut;
namespace tcp_flag = netstack::tcp_flag;

namespace {

std::vector<policy::HostPattern> patterns(const std::vector<std::string>& texts) {
  std::vector<policy::HostPattern> out;
  for (const auto& text : texts) {
    auto parsed = policy::HostPattern::parse(text);
    REQUIRE_MESSAGE(parsed.ok(), text);
    out.push_back(*parsed);
  }
  return out;
}

policy::IpAddress ip(const char* text) {
  auto parsed = policy::IpAddress::parse(text);
  REQUIRE(parsed);
  return *parsed;
}

std::string temp_socket_path() {
  static std::atomic<int> n{0};
  return "/tmp/airlock-io-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++) +
         ".sock";
}

// A loopback TCP echo server: echoes everything, half-closes after the client's FIN.
class EchoServer {
 public:
  explicit EchoServer(asio::io_context& io)
      : acceptor_(io, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0)) {
    accept();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  int accepted = 0;
  int resets_seen = 0;
  std::size_t bytes = 0;

 private:
  struct Session : std::enable_shared_from_this<Session> {
    Session(asio::ip::tcp::socket s, EchoServer& o) : socket(std::move(s)), owner(o) {}
    asio::ip::tcp::socket socket;
    EchoServer& owner;
    std::array<char, 4096> buffer{};
    void read() {
      socket.async_read_some(asio::buffer(buffer), [self = shared_from_this()](
                                                       const boost::system::error_code& ec,
                                                       std::size_t n) {
        if (ec == asio::error::eof) {
          boost::system::error_code ignored;
          self->socket.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
          return;
        }
        if (ec) {
          if (ec == asio::error::connection_reset) ++self->owner.resets_seen;
          return;
        }
        self->owner.bytes += n;
        asio::async_write(self->socket, asio::buffer(self->buffer.data(), n),
                          [self](const boost::system::error_code& wec, std::size_t) {
                            if (!wec) self->read();
                          });
      });
    }
  };
  void accept() {
    acceptor_.async_accept([this](const boost::system::error_code& ec, asio::ip::tcp::socket s) {
      if (ec) return;
      ++accepted;
      std::make_shared<Session>(std::move(s), *this)->read();
      accept();
    });
  }
  asio::ip::tcp::acceptor acceptor_;
};

// A loopback server that sends `size` pattern bytes on each connection, then FIN.
class DownloadServer {
 public:
  DownloadServer(asio::io_context& io, std::size_t size)
      : acceptor_(io, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0)), data_(size, '\0') {
    for (std::size_t i = 0; i < size; ++i) data_[i] = static_cast<char>('a' + i % 26);
    acceptor_.async_accept([this](const boost::system::error_code& ec, asio::ip::tcp::socket s) {
      if (ec) return;
      socket_.emplace(std::move(s));
      asio::async_write(*socket_, asio::buffer(data_), [this](const boost::system::error_code& wec,
                                                              std::size_t) {
        if (wec) return;
        boost::system::error_code ignored;
        socket_->shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
        done = true;
      });
    });
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  const std::string& data() const { return data_; }
  bool done = false;

 private:
  asio::ip::tcp::acceptor acceptor_;
  std::optional<asio::ip::tcp::socket> socket_;
  std::string data_;
};

// A loopback listener whose accept queue is full, so Linux drops further SYNs and a
// connect to it hangs: an upstream that never answers, without leaving loopback.
class FullListener {
 public:
  FullListener() : acceptor_(io_) {
    acceptor_.open(asio::ip::tcp::v4());
    acceptor_.bind(asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    acceptor_.listen(0);
    for (int i = 0; i < 4; ++i) {  // started, never awaited: they fill the queue
      fillers_.emplace_back(io_);
      fillers_.back().async_connect(acceptor_.local_endpoint(), [](const boost::system::error_code&) {});
    }
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  std::vector<asio::ip::tcp::socket> fillers_;
};

// The guest's side of the QEMU stream: frames out, frames in (non-blocking polls).
class WireGuest {
 public:
  WireGuest(const std::string& path, const netstack::Config& config)
      : socket_(io_), config_(config) {
    socket_.connect(asio::local::stream_protocol::endpoint(path));
    socket_.non_blocking(true);
  }

  void send_frame(const std::vector<std::uint8_t>& frame) {
    std::vector<std::uint8_t> wire;
    netstack::append_link_frame(wire, frame);
    socket_.non_blocking(false);
    asio::write(socket_, asio::buffer(wire));
    socket_.non_blocking(true);
  }

  netstack::Route route_to(netstack::Ipv4Address dst) {
    return netstack::Route{config_.guest_mac, config_.gateway_mac, config_.guest_ip, dst,
                           ip_id_++};
  }

  void send_udp(netstack::Ipv4Address dst, std::uint16_t sport, std::uint16_t dport,
                const std::vector<std::uint8_t>& payload) {
    std::vector<std::uint8_t> frame;
    netstack::build_udp_frame(frame, route_to(dst), sport, dport, payload);
    send_frame(frame);
  }

  void send_tcp(netstack::Ipv4Address dst, const netstack::TcpSegment& segment,
                const std::string& payload = {}) {
    std::vector<std::uint8_t> frame;
    const auto data = netstack::test::bytes_of(payload);
    netstack::build_tcp_frame(frame, route_to(dst), segment, data);
    send_frame(frame);
  }

  // Reads whatever arrived and sorts the frames.
  void poll() {
    std::array<std::uint8_t, 65536> buffer{};
    for (;;) {
      boost::system::error_code ec;
      const std::size_t n = socket_.read_some(asio::buffer(buffer), ec);
      if (ec) break;
      decoder_.feed(std::span<const std::uint8_t>(buffer.data(), n));
      while (auto frame = decoder_.next()) sort(*frame);
    }
    REQUIRE_FALSE(decoder_.failed());
  }

  std::deque<TcpOut> tcp;
  std::deque<std::vector<std::uint8_t>> udp;  // payloads from gateway:53

 private:
  void sort(const std::vector<std::uint8_t>& frame) {
    const auto eth = netstack::EthernetView::parse(frame);
    REQUIRE(eth);
    REQUIRE(eth->ethertype == netstack::kEtherTypeIpv4);
    const auto packet = netstack::Ipv4View::parse(eth->payload);
    REQUIRE(packet);
    if (packet->protocol == netstack::kProtoTcp) {
      tcp.push_back(netstack::test::parse_tcp_out(frame, config_));
    } else if (packet->protocol == netstack::kProtoUdp) {
      const auto datagram = netstack::UdpView::parse(packet->payload, packet->src, packet->dst);
      REQUIRE(datagram);
      CHECK(datagram->src_port == 53);
      udp.emplace_back(datagram->payload.begin(), datagram->payload.end());
    }
  }

  asio::io_context io_;
  asio::local::stream_protocol::socket socket_;
  netstack::LinkDecoder decoder_;
  netstack::Config config_;
  std::uint16_t ip_id_ = 1;
};

// An audit event as the tests read it: its type and its object.
struct AuditEvent {
  std::string type;
  nlohmann::json data;
};

// Engine, servers and guest on one io_context, stepped by the test. start() builds the
// engine once the test's servers exist (the policy names their ports).
struct Harness {
  asio::io_context io;
  EchoServer echo{io};
  policy::Policy policy;
  EngineConfig config;
  std::vector<AuditEvent> events;
  std::shared_ptr<mitm::MitmContext> context;
  std::unique_ptr<NetworkEngine> engine;
  std::unique_ptr<WireGuest> guest;

  Harness() = default;
  explicit Harness(policy::NetworkPolicy network, const std::function<void(EngineConfig&)>& adjust = {}) {
    start(std::move(network), adjust);
  }
  void start(policy::NetworkPolicy network, const std::function<void(EngineConfig&)>& adjust = {}) {
    policy.network = std::move(network);
    config.socket_path = temp_socket_path();
    config.net.isn_seed = 42;
    config.resolver.timeout = 1500ms;
    config.resolver.try_timeout = 300ms;
    config.resolver.tries = 1;
    config.dialer.connect_timeout = 2000ms;
    config.log = [](std::string_view) {};
    if (adjust) adjust(config);
    auto made = airlock::policy::PolicyEngine::create(policy.network);
    REQUIRE(made.ok());
    auto ctx = mitm::MitmContext::create(*made, {});
    REQUIRE(ctx.ok());
    context = *ctx;
    engine = std::make_unique<NetworkEngine>(io, context, config, [this](audit::Event e) {
      const std::string type(audit::type_of(e));
      auto j = nlohmann::json::parse(audit::to_json(e).dump());
      events.push_back(AuditEvent{type, j[type]});
    });
    engine->start();
    guest = std::make_unique<WireGuest>(config.socket_path.string(), config.net);
    step_until([this] { return engine->link_counters().connections == 1; });
  }
  ~Harness() {
    guest.reset();
    engine.reset();
  }

  bool step_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 3000ms) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (io.stopped()) io.restart();
      io.run_for(2ms);
      guest->poll();
      if (done()) return true;
    }
    return false;
  }
  void settle(std::chrono::milliseconds d = 50ms) {
    step_until([] { return false; }, d);
  }

  std::vector<AuditEvent> events_of(const std::string& type) const {
    std::vector<AuditEvent> out;
    for (const auto& e : events)
      if (e.type == type) out.push_back(e);
    return out;
  }

  // A/other query over UDP to the gateway; returns the response bytes.
  std::vector<std::uint8_t> ask(const std::string& name, std::uint16_t type = 1) {
    airlock::dns::test::QueryBuilder query;
    query.name = name;
    query.type = type;
    query.id = static_cast<std::uint16_t>(0x1000 + guest->udp.size());
    guest->send_udp(config.net.gateway_ip, 5353, 53, query.build());
    REQUIRE(step_until([this] { return !guest->udp.empty(); }));
    auto response = guest->udp.front();
    guest->udp.pop_front();
    REQUIRE(response.size() >= 12);
    CHECK(response[0] == (query.id >> 8));
    CHECK(response[1] == (query.id & 0xff));
    return response;
  }
};

int rcode_of(const std::vector<std::uint8_t>& response) { return response[3] & 0x0f; }

// The A record's address: the last 4 bytes of a response with one answer and no OPT.
netstack::Ipv4Address a_record(const std::vector<std::uint8_t>& response) {
  REQUIRE(rcode_of(response) == 0);
  REQUIRE(response[6] == 0);
  REQUIRE(response[7] == 1);
  const std::size_t n = response.size();
  return netstack::ipv4(response[n - 4], response[n - 3], response[n - 2], response[n - 1]);
}

// One guest TCP connection, tracking sequence numbers.
struct GuestTcp {
  GuestTcp(Harness& harness, netstack::Ipv4Address d, std::uint16_t dp, std::uint16_t sp)
      : h(harness), dst(d), dport(dp), sport(sp) {}
  Harness& h;
  netstack::Ipv4Address dst;
  std::uint16_t dport;
  std::uint16_t sport;
  std::uint32_t seq = 5000;
  std::uint32_t ack = 0;
  std::string received;
  bool fin_received = false;

  void segment(std::uint8_t flags, const std::string& payload = {}) {
    netstack::TcpSegment s{sport, dport, seq, ack, flags, 65535, {}, {}};
    if (flags & tcp_flag::syn) {
      s.mss = 1460;
      s.window_scale = 7;
    }
    h.guest->send_tcp(dst, s, payload);
    seq += static_cast<std::uint32_t>(payload.size());
    if (flags & (tcp_flag::syn | tcp_flag::fin)) seq += 1;
  }
  // Segments for this connection that arrived; consumes them.
  std::vector<TcpOut> take() {
    std::vector<TcpOut> mine;
    auto& all = h.guest->tcp;
    for (auto it = all.begin(); it != all.end();) {
      if (it->dst_port == sport && it->src_port == dport) {
        mine.push_back(*it);
        it = all.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& s : mine) {
      if (s.has(tcp_flag::syn)) ack = s.seq + 1;
      if (!s.has(tcp_flag::syn) && s.seq == ack) {
        received += s.payload;
        ack += static_cast<std::uint32_t>(s.payload.size());
        if (s.has(tcp_flag::fin)) {
          ack += 1;
          fin_received = true;
        }
      }
    }
    return mine;
  }
  // Waits for a segment matching pred; collects everything on the way.
  std::optional<TcpOut> wait_for(const std::function<bool(const TcpOut&)>& pred,
                                 std::chrono::milliseconds limit = 3000ms) {
    std::optional<TcpOut> found;
    h.step_until(
        [&] {
          for (const auto& s : take())
            if (!found && pred(s)) found = s;
          return found.has_value();
        },
        limit);
    return found;
  }
};

// The test names, each allowed on exactly the given ports (host:port rules, so opaque
// bytes may pass).
policy::NetworkPolicy echo_policy(const std::vector<std::uint16_t>& ports) {
  policy::NetworkPolicy net;
  std::vector<std::string> rules;
  for (const char* name : {"echo.test", "refused.test", "private.test"})
    for (std::uint16_t port : ports) rules.push_back(std::string(name) + ":" + std::to_string(port));
  net.allowed_hosts = patterns(rules);
  net.allow_private_hosts = patterns({"echo.test", "refused.test"});
  net.resolve = {{"echo.test", {ip("127.0.0.1")}},
                 {"private.test", {ip("127.0.0.1")}},
                 {"refused.test", {ip("127.0.0.1")}}};
  return net;
}

// A refusal dialed nothing. A wrong dial would complete asynchronously (the engine's
// connect handler and the echo server's accept handler both run on this io_context), so
// settle first, then check that neither side saw a connection.
void expect_no_upstream_connect(Harness& h) {
  h.settle(200ms);
  CHECK(h.engine->dialer_counters().connected == 0);
  CHECK(h.engine->dialer_counters().failed == 0);
  CHECK(h.echo.accepted == 0);
}

// The flow record for a host (there is exactly one per connection).
std::optional<AuditEvent> network_event_for(const Harness& h, const std::string& host) {
  std::optional<AuditEvent> found;
  for (const auto& e : h.events_of("network")) {
    if (e.data.value("kind", "") != "flow" || e.data.value("host", "") != host) continue;
    CHECK_MESSAGE(!found, "two flow records for " << host);
    found = e;
  }
  return found;
}

}  // namespace

TEST_CASE("an allowed name: synthetic answer, accept, lazy dial, echo, half-close, one record") {
  Harness h;
  h.start(echo_policy({h.echo.port()}));
  const auto answer = h.ask("echo.test");
  const netstack::Ipv4Address synthetic = a_record(answer);
  CHECK((synthetic & 0xfffe0000u) == netstack::ipv4(198, 18, 0, 0));
  const auto dns_events = h.events_of("dns");
  REQUIRE(dns_events.size() == 1);
  CHECK(dns_events[0].data["name"] == "echo.test");
  CHECK(dns_events[0].data["blocked"] == false);

  GuestTcp conn{h, synthetic, h.echo.port(), 40001};
  conn.segment(tcp_flag::syn);
  auto synack = conn.wait_for([](const TcpOut& s) { return s.has(tcp_flag::syn); });
  REQUIRE(synack);
  CHECK(synack->has(tcp_flag::ack));
  conn.segment(tcp_flag::ack);
  // Accepted at admission. The rule names the port, so opaque bytes may pass and the
  // upstream is dialled at once (a server-first protocol would speak first); one dial.
  REQUIRE(h.step_until([&] { return h.echo.accepted == 1; }));
  CHECK(h.engine->dialer_counters().dials == 1);

  conn.segment(tcp_flag::ack | tcp_flag::psh, "\x01hello relay");
  REQUIRE(h.step_until([&] {
    conn.take();
    return conn.received == "\x01hello relay";
  }));
  CHECK(h.echo.accepted == 1);
  conn.segment(tcp_flag::ack);

  conn.segment(tcp_flag::ack | tcp_flag::fin);  // upstream sees EOF, echoes its FIN back
  REQUIRE(h.step_until([&] {
    conn.take();
    return conn.fin_received;
  }));
  conn.segment(tcp_flag::ack);

  REQUIRE(h.step_until([&] { return network_event_for(h, "echo.test").has_value(); }));
  const auto event = *network_event_for(h, "echo.test");
  CHECK(event.data["protocol"] == "opaque");
  CHECK(event.data["port"] == h.echo.port());
  CHECK(event.data["blocked"] == false);
  CHECK(event.data["request_bytes"] == 12);
  CHECK(event.data["response_bytes"] == 12);
  CHECK(event.data["rule"] == "allowed_hosts: echo.test:" + std::to_string(h.echo.port()));
  CHECK(event.data["address"] == "127.0.0.1");
  CHECK(event.data["close_reason"] == "closed");
  CHECK(event.data["duration_ms"].get<std::int64_t>() >= 0);
  CHECK(h.engine->counters().flows_admitted == 1);
  CHECK(h.engine->dialer_counters().connected == 1);
  CHECK(h.engine->resolver_counters().overrides == 1);
  CHECK(h.engine->live_flows() == 0);
}

TEST_CASE("without a rule naming the port, nothing is dialled before a request is ready") {
  Harness h;
  h.start([&] {
    policy::NetworkPolicy net = echo_policy({h.echo.port()});
    net.allowed_hosts = patterns({"echo.test"});
    return net;
  }());
  const netstack::Ipv4Address synthetic = a_record(h.ask("echo.test"));
  GuestTcp conn{h, synthetic, h.echo.port(), 40009};
  conn.segment(tcp_flag::syn);
  REQUIRE(conn.wait_for([](const TcpOut& s) { return s.has(tcp_flag::syn); }));
  conn.segment(tcp_flag::ack);
  h.settle(200ms);
  CHECK(h.echo.accepted == 0);
  CHECK(h.engine->dialer_counters().dials == 0);
  conn.segment(tcp_flag::ack | tcp_flag::psh, "GET / HTTP/1.1\r\nHost: echo.test:" + std::to_string(h.echo.port()) + "\r\n\r\n");
  REQUIRE(h.step_until([&] { return h.echo.accepted == 1; }));
  CHECK(h.engine->dialer_counters().dials == 1);
}

TEST_CASE("a guest reset closes the upstream socket with RST") {
  Harness h;
  h.start(echo_policy({h.echo.port()}));
  const netstack::Ipv4Address synthetic = a_record(h.ask("echo.test"));
  GuestTcp conn{h, synthetic, h.echo.port(), 40002};
  conn.segment(tcp_flag::syn);
  REQUIRE(conn.wait_for([](const TcpOut& s) { return s.has(tcp_flag::syn); }));
  conn.segment(tcp_flag::ack);
  conn.segment(tcp_flag::ack | tcp_flag::psh, "\x02ping");
  REQUIRE(h.step_until([&] {
    conn.take();
    return conn.received == "\x02ping";
  }));
  conn.segment(tcp_flag::rst);
  REQUIRE(h.step_until([&] { return h.echo.resets_seen == 1; }));
  REQUIRE(h.step_until([&] { return network_event_for(h, "echo.test").has_value(); }));
  CHECK(network_event_for(h, "echo.test")->data["close_reason"] == "reset_by_guest");
}

TEST_CASE("a name the policy does not allow is REFUSED") {
  Harness h(echo_policy({443}));
  const auto response = h.ask("elsewhere.example");
  CHECK(rcode_of(response) == 5);
  const auto dns_events = h.events_of("dns");
  REQUIRE(dns_events.size() == 1);
  CHECK(dns_events[0].data["blocked"] == true);
  CHECK(dns_events[0].data["block_reason"] == "host_not_allowed");
  CHECK(dns_events[0].data["rcode"] == "REFUSED");
}

TEST_CASE("AAAA for an allowed name has no data") {
  Harness h(echo_policy({443}));
  const auto response = h.ask("echo.test", 28);
  CHECK(rcode_of(response) == 0);
  CHECK(response[7] == 0);  // ANCOUNT 0
}

TEST_CASE("a literal private IP is reset at once and never dialled") {
  policy::NetworkPolicy net;
  net.allowed_hosts = patterns({"*"});
  net.block_private_ips = true;
  Harness h(net);

  SUBCASE("10.0.0.1:80") {
    GuestTcp conn{h, netstack::ipv4(10, 0, 0, 1), 80, 40010};
    conn.segment(tcp_flag::syn);
    auto rst = conn.wait_for([](const TcpOut& s) { return s.has(tcp_flag::rst); });
    REQUIRE(rst);
    const auto event = network_event_for(h, "10.0.0.1");
    REQUIRE(event);
    CHECK(event->data["blocked"] == true);
    CHECK(event->data["block_reason"] == "private_address");
    CHECK(event->data["close_reason"] == "refused");
    CHECK(event->data["port"] == 80);
  }
  SUBCASE("127.0.0.1 at the echo server's port") {
    GuestTcp conn{h, netstack::ipv4(127, 0, 0, 1), h.echo.port(), 40011};
    conn.segment(tcp_flag::syn);
    // 127/8 is not even a destination the stack accepts from a guest: dropped, or reset.
    h.settle(100ms);
    conn.take();
  }
  h.settle(100ms);
  CHECK(h.echo.accepted == 0);
  CHECK(h.engine->dialer_counters().dials == 0);
  CHECK(h.engine->resolver_counters().lookups == 0);
}

TEST_CASE("a name that resolves only to private addresses is refused before any connect") {
  Harness h;
  policy::NetworkPolicy net = echo_policy({h.echo.port()});
  // echo_policy lets echo.test and refused.test reach loopback, not private.test.
  h.start(net);
  const netstack::Ipv4Address synthetic = a_record(h.ask("private.test"));
  GuestTcp conn{h, synthetic, h.echo.port(), 40020};
  conn.segment(tcp_flag::syn);
  REQUIRE(conn.wait_for([](const TcpOut& s) { return s.has(tcp_flag::syn); }));
  conn.segment(tcp_flag::ack);
  conn.segment(tcp_flag::ack | tcp_flag::psh, "\x03data");
  REQUIRE(conn.wait_for([](const TcpOut& s) { return s.has(tcp_flag::rst); }));
  REQUIRE(h.step_until([&] { return network_event_for(h, "private.test").has_value(); }));
  const auto event = *network_event_for(h, "private.test");
  CHECK(event.data["blocked"] == true);
  CHECK(event.data["block_reason"] == "private_address");
  expect_no_upstream_connect(h);
}

TEST_CASE("a synthetic address that maps to no name is reset") {
  Harness h(echo_policy({443}));
  GuestTcp conn{h, netstack::ipv4(198, 18, 0, 77), 443, 40030};
  conn.segment(tcp_flag::syn);
  REQUIRE(conn.wait_for([](const TcpOut& s) { return s.has(tcp_flag::rst); }));
  const auto event = network_event_for(h, "198.18.0.77");
  REQUIRE(event);
  CHECK(event->data["block_reason"] == "unknown_synthetic_address");
  expect_no_upstream_connect(h);
}

TEST_CASE("a port the policy does not allow is reset with host_not_allowed") {
  Harness h(echo_policy({1}));
  const netstack::Ipv4Address synthetic = a_record(h.ask("echo.test"));
  GuestTcp conn{h, synthetic, h.echo.port(), 40040};
  conn.segment(tcp_flag::syn);
  REQUIRE(conn.wait_for([](const TcpOut& s) { return s.has(tcp_flag::rst); }));
  const auto event = network_event_for(h, "echo.test");
  REQUIRE(event);
  CHECK(event->data["block_reason"] == "host_not_allowed");
  expect_no_upstream_connect(h);
}

// Opens an admitted flow, sends opaque bytes, and waits for the guest's reset.
void send_and_expect_reset(Harness& h, GuestTcp& conn, std::chrono::milliseconds limit = 4000ms) {
  conn.segment(tcp_flag::syn);
  REQUIRE(conn.wait_for([](const TcpOut& s) { return s.has(tcp_flag::syn); }));
  conn.segment(tcp_flag::ack);
  conn.segment(tcp_flag::ack | tcp_flag::psh, "\x04go");
  REQUIRE(conn.wait_for([](const TcpOut& s) { return s.has(tcp_flag::rst); }, limit));
  (void)h;
}

TEST_CASE("a refused upstream connect resets the guest with connect_failed") {
  // A loopback port with nothing listening.
  std::uint16_t closed_port = 0;
  {
    asio::io_context io;
    asio::ip::tcp::acceptor probe(io, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    closed_port = probe.local_endpoint().port();
  }
  Harness h(echo_policy({closed_port}));
  const netstack::Ipv4Address synthetic = a_record(h.ask("refused.test"));
  GuestTcp conn{h, synthetic, closed_port, 40050};
  send_and_expect_reset(h, conn);
  REQUIRE(h.step_until([&] { return network_event_for(h, "refused.test").has_value(); }));
  const auto event = *network_event_for(h, "refused.test");
  CHECK(event.data["error"] == "connect_failed");
  CHECK(event.data["blocked"] == false);
  CHECK(event.data["close_reason"] == "failed");
  // The early dial failed, then the tunnel's own: both recorded on the one flow record.
  CHECK(h.engine->dialer_counters().failed == 2);
}

TEST_CASE("a name the upstream resolver can't answer is reset with dns_failed") {
  // The only resolver is a loopback UDP port with nothing behind it.
  std::uint16_t dead_port = 0;
  {
    asio::io_context io;
    asio::ip::udp::socket probe(io, asio::ip::udp::endpoint(asio::ip::address_v4::loopback(), 0));
    dead_port = probe.local_endpoint().port();
  }
  policy::NetworkPolicy net;
  net.allowed_hosts = patterns({"unresolvable.test:443"});
  net.dns_servers = {policy::DnsServer{ip("127.0.0.1"), dead_port}};
  Harness h(net);
  const netstack::Ipv4Address synthetic = a_record(h.ask("unresolvable.test"));
  GuestTcp conn{h, synthetic, 443, 40060};
  send_and_expect_reset(h, conn);
  REQUIRE(h.step_until([&] { return network_event_for(h, "unresolvable.test").has_value(); }));
  CHECK(network_event_for(h, "unresolvable.test")->data["error"] == "dns_failed");
  CHECK(h.engine->resolver_counters().lookups == 1);
}

TEST_CASE("TCP to the gateway: port 53 answers DNS, other ports are reset") {
  Harness h(echo_policy({443}));
  const netstack::Ipv4Address gateway = h.config.net.gateway_ip;

  GuestTcp dns{h, gateway, 53, 40070};
  dns.segment(tcp_flag::syn);
  REQUIRE(dns.wait_for([](const TcpOut& s) { return s.has(tcp_flag::syn); }));
  dns.segment(tcp_flag::ack);
  airlock::dns::test::QueryBuilder query;
  query.name = "echo.test";
  const auto bytes = query.build();
  std::string framed;
  framed.push_back(static_cast<char>(bytes.size() >> 8));
  framed.push_back(static_cast<char>(bytes.size() & 0xff));
  framed.append(bytes.begin(), bytes.end());
  dns.segment(tcp_flag::ack | tcp_flag::psh, framed);
  REQUIRE(h.step_until([&] {
    dns.take();
    return dns.received.size() >= 2 &&
           dns.received.size() ==
               2 + ((std::size_t{static_cast<std::uint8_t>(dns.received[0])} << 8) |
                    static_cast<std::uint8_t>(dns.received[1]));
  }));
  std::vector<std::uint8_t> response(dns.received.begin() + 2, dns.received.end());
  const netstack::Ipv4Address synthetic = a_record(response);
  CHECK((synthetic & 0xfffe0000u) == netstack::ipv4(198, 18, 0, 0));
  dns.segment(tcp_flag::ack | tcp_flag::fin);
  REQUIRE(h.step_until([&] {
    dns.take();
    return dns.fin_received;
  }));
  dns.segment(tcp_flag::ack);

  GuestTcp other{h, gateway, 22, 40071};
  other.segment(tcp_flag::syn);
  REQUIRE(other.wait_for([](const TcpOut& s) { return s.has(tcp_flag::rst); }));
  CHECK(h.engine->counters().gateway_refused == 1);
  CHECK(h.engine->counters().dns_tcp_flows == 1);
  // Both connections have their record: DNS-over-TCP and the refused one.
  REQUIRE(h.step_until([&] { return h.events_of("network").size() == 2; }));
  int dns_records = 0;
  for (const auto& e : h.events_of("network")) dns_records += e.data["protocol"] == "dns";
  CHECK(dns_records == 1);
}

TEST_CASE("a framing error drops the link; a new connection takes over") {
  Harness h(echo_policy({443}));
  {
    // A length prefix of 1: below an Ethernet header, so the stream is broken.
    asio::io_context io;
    asio::local::stream_protocol::socket bad(io);
    bad.connect(asio::local::stream_protocol::endpoint(h.config.socket_path.string()));
    const std::array<std::uint8_t, 5> garbage{0, 0, 0, 1, 0};
    asio::write(bad, asio::buffer(garbage));
    REQUIRE(h.step_until([&] { return h.engine->link_counters().framing_errors == 1; }));
    CHECK(h.engine->link_counters().replaced == 1);
  }
  // The first guest connection was replaced; a fresh one works.
  h.guest = std::make_unique<WireGuest>(h.config.socket_path.string(), h.config.net);
  REQUIRE(h.step_until([&] { return h.engine->link_counters().connections == 3; }));
  CHECK(rcode_of(h.ask("echo.test")) == 0);
}

TEST_CASE("a large download arrives intact through the backpressure") {
  Harness h;
  constexpr std::size_t kSize = 3u << 20;  // several times the flow's 1 MiB send buffer
  DownloadServer server(h.io, kSize);
  h.start(echo_policy({server.port()}));
  const netstack::Ipv4Address synthetic = a_record(h.ask("echo.test"));
  GuestTcp conn{h, synthetic, server.port(), 40080};
  conn.segment(tcp_flag::syn);
  REQUIRE(conn.wait_for([](const TcpOut& s) { return s.has(tcp_flag::syn); }));
  conn.segment(tcp_flag::ack);
  conn.segment(tcp_flag::ack | tcp_flag::psh, "\x05go");  // the tunnel dials on the first bytes
  REQUIRE(h.step_until(
      [&] {
        const std::uint32_t before = conn.ack;
        conn.take();
        if (conn.ack != before) conn.segment(tcp_flag::ack);  // the guest's TCP acks
        return conn.fin_received;
      },
      20000ms));
  CHECK(conn.received.size() == kSize);
  CHECK(conn.received == server.data());
  conn.segment(tcp_flag::ack | tcp_flag::fin);
  REQUIRE(h.step_until([&] {
    conn.take();
    return network_event_for(h, "echo.test").has_value();
  }));
  const auto event = *network_event_for(h, "echo.test");
  CHECK(event.data["response_bytes"] == kSize);
  CHECK(event.data["request_bytes"] == 3);
  CHECK(event.data["close_reason"] == "closed");
}

TEST_CASE("an upstream that never answers the SYN ends in connect_timeout") {
  FullListener full;
  Harness h(echo_policy({full.port()}), [](EngineConfig& c) { c.dialer.connect_timeout = 300ms; });
  const netstack::Ipv4Address synthetic = a_record(h.ask("refused.test"));
  GuestTcp conn{h, synthetic, full.port(), 40090};
  send_and_expect_reset(h, conn);
  REQUIRE(h.step_until([&] { return network_event_for(h, "refused.test").has_value(); }));
  CHECK(network_event_for(h, "refused.test")->data["error"] == "connect_timeout");
}

TEST_CASE("dials over the cap wait their turn, and their deadline starts when they start") {
  Harness h;
  h.start(echo_policy({h.echo.port()}), [](EngineConfig& c) {
    c.dialer.max_concurrent = 1;
    c.dialer.connect_timeout = 2000ms;
  });
  const netstack::Ipv4Address synthetic = a_record(h.ask("echo.test"));
  std::vector<std::unique_ptr<GuestTcp>> conns;
  for (std::uint16_t i = 0; i < 4; ++i) {
    conns.push_back(std::make_unique<GuestTcp>(h, synthetic, h.echo.port(), static_cast<std::uint16_t>(40200 + i)));
    conns.back()->segment(tcp_flag::syn);
  }
  for (auto& c : conns) REQUIRE(c->wait_for([](const TcpOut& s) { return s.has(tcp_flag::syn); }));
  // All four ask for their upstream in one batch of frames: one dials, three wait.
  for (auto& c : conns) {
    c->segment(tcp_flag::ack);
    c->segment(tcp_flag::ack | tcp_flag::psh, "\x06x");
  }
  REQUIRE(h.step_until([&] {
    bool all = true;
    for (auto& c : conns) {
      c->take();
      all = all && c->received == "\x06x";
    }
    return all;
  }));
  CHECK(h.engine->dialer_counters().connected == 4);
  CHECK(h.engine->dialer_counters().queued >= 1);
}

TEST_CASE("a guest that gives up while the dial is pending cancels it") {
  FullListener full;
  // The dial must still be pending when the RST arrives, however slow this machine is.
  Harness h(echo_policy({full.port()}), [](EngineConfig& c) { c.dialer.connect_timeout = 60s; });
  const netstack::Ipv4Address synthetic = a_record(h.ask("refused.test"));
  GuestTcp conn{h, synthetic, full.port(), 40091};
  conn.segment(tcp_flag::syn);
  REQUIRE(conn.wait_for([](const TcpOut& s) { return s.has(tcp_flag::syn); }));
  conn.segment(tcp_flag::ack);
  conn.segment(tcp_flag::ack | tcp_flag::psh, "\x07go");
  REQUIRE(h.step_until([&] { return h.engine->dialer_counters().dials == 1; }));
  h.settle(50ms);
  conn.segment(tcp_flag::rst);
  REQUIRE(h.step_until([&] { return h.engine->dialer_counters().cancelled == 1; }));
  REQUIRE(h.step_until([&] { return network_event_for(h, "refused.test").has_value(); }));
  const auto event = *network_event_for(h, "refused.test");
  CHECK(event.data["blocked"] == false);
  CHECK(event.data["close_reason"] == "reset_by_guest");
  CHECK(h.engine->live_flows() == 0);
}

TEST_CASE("an upstream reset resets the guest flow") {
  Harness h;
  // Accepts, waits for the first bytes, then closes with SO_LINGER 0 (RST).
  asio::ip::tcp::acceptor resetter(h.io, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  std::optional<asio::ip::tcp::socket> peer;
  std::array<char, 64> buffer{};
  resetter.async_accept([&](const boost::system::error_code& ec, asio::ip::tcp::socket s) {
    REQUIRE_FALSE(ec);
    peer.emplace(std::move(s));
    peer->async_read_some(asio::buffer(buffer), [&](const boost::system::error_code&, std::size_t) {
      peer->set_option(asio::socket_base::linger(true, 0));
      peer->close();
    });
  });
  h.start(echo_policy({resetter.local_endpoint().port()}));
  const netstack::Ipv4Address synthetic = a_record(h.ask("echo.test"));
  GuestTcp conn{h, synthetic, resetter.local_endpoint().port(), 40100};
  send_and_expect_reset(h, conn);
  REQUIRE(h.step_until([&] { return network_event_for(h, "echo.test").has_value(); }));
  CHECK(network_event_for(h, "echo.test")->data["close_reason"] == "reset_by_upstream");
  CHECK(h.engine->live_flows() == 0);
}

TEST_CASE("a SYN over the flow cap is refused and recorded") {
  Harness h;
  h.start(echo_policy({h.echo.port()}), [](EngineConfig& c) { c.net.max_flows = 1; });
  const netstack::Ipv4Address synthetic = a_record(h.ask("echo.test"));
  GuestTcp first{h, synthetic, h.echo.port(), 40300};
  first.segment(tcp_flag::syn);
  REQUIRE(first.wait_for([](const TcpOut& s) { return s.has(tcp_flag::syn); }));
  GuestTcp second{h, synthetic, h.echo.port(), 40301};
  second.segment(tcp_flag::syn);
  REQUIRE(second.wait_for([](const TcpOut& s) { return s.has(tcp_flag::rst); }));
  REQUIRE(h.step_until([&] { return network_event_for(h, "echo.test").has_value(); }));
  const auto event = *network_event_for(h, "echo.test");
  CHECK(event.data["block_reason"] == "flow_cap");
  CHECK(event.data["close_reason"] == "refused");
  CHECK(h.engine->counters().flows_refused_cap == 1);
}

namespace {

// A loopback HTTP/1.1 server that answers every request head with a small keep-alive 200
// and counts its connections.
class KeepAliveServer {
 public:
  explicit KeepAliveServer(asio::io_context& io)
      : acceptor_(io, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0)) {
    accept();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  int accepted = 0;
  int answered = 0;

 private:
  struct Session : std::enable_shared_from_this<Session> {
    Session(asio::ip::tcp::socket s, KeepAliveServer& o) : socket(std::move(s)), owner(o) {}
    asio::ip::tcp::socket socket;
    KeepAliveServer& owner;
    std::array<char, 4096> buffer{};
    std::string pending;
    std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    void read() {
      socket.async_read_some(asio::buffer(buffer), [self = shared_from_this()](const boost::system::error_code& ec,
                                                                              std::size_t n) {
        if (ec) return;
        self->pending.append(self->buffer.data(), n);
        while (true) {
          auto end = self->pending.find("\r\n\r\n");
          if (end == std::string::npos) break;
          self->pending.erase(0, end + 4);
          ++self->owner.answered;
          asio::write(self->socket, asio::buffer(self->reply));
        }
        self->read();
      });
    }
  };
  void accept() {
    acceptor_.async_accept([this](const boost::system::error_code& ec, asio::ip::tcp::socket s) {
      if (ec) return;
      ++accepted;
      std::make_shared<Session>(std::move(s), *this)->read();
      accept();
    });
  }
  asio::ip::tcp::acceptor acceptor_;
};

}  // namespace

TEST_CASE("guest connections one after another share one pooled upstream connection") {
  Harness h;
  KeepAliveServer server(h.io);
  policy::NetworkPolicy net = echo_policy({server.port()});
  net.allowed_hosts = patterns({"echo.test"});  // no port named: plain HTTP, lazy dials
  h.start(net);
  const netstack::Ipv4Address synthetic = a_record(h.ask("echo.test"));
  for (std::uint16_t i = 0; i < 3; ++i) {
    GuestTcp conn{h, synthetic, server.port(), static_cast<std::uint16_t>(40400 + i)};
    conn.segment(tcp_flag::syn);
    REQUIRE(conn.wait_for([](const TcpOut& s) { return s.has(tcp_flag::syn); }));
    conn.segment(tcp_flag::ack);
    conn.segment(tcp_flag::ack | tcp_flag::psh,
                 "GET /" + std::to_string(i) + " HTTP/1.1\r\nHost: echo.test:" + std::to_string(server.port()) + "\r\n\r\n");
    REQUIRE(h.step_until([&] {
      conn.take();
      return conn.received.ends_with("ok");
    }));
    conn.segment(tcp_flag::ack | tcp_flag::fin);
    REQUIRE(h.step_until([&] {
      conn.take();
      return conn.fin_received;
    }));
    conn.segment(tcp_flag::ack);
  }
  CHECK(server.answered == 3);
  CHECK(server.accepted == 1);
  CHECK(h.engine->dialer_counters().dials == 1);
  const auto counters = h.engine->counters_json();
  CHECK(counters["pool"]["reused"] == 2);
  REQUIRE(h.step_until([&] { return h.events_of("network").size() == 6; }));  // 3 requests, 3 flows
}
