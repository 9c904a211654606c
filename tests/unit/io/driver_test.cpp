// FlowDriver teardown under injected I/O errors: for every step of a request's life on
// both transports, an error there (the guest's connection failing at its k-th operation;
// the origin resetting, closing or stalling at each point) must end the flow cleanly:
// exactly one flow record, exactly one record per request the guest sent, nothing touched
// after on_closed, no socket or timer left behind (ASan's leak check runs this too).
#include <doctest/doctest.h>

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <utility>

#include <boost/asio.hpp>

#include "policy/engine.hpp"
#include "proxy/flow/driver.hpp"
#include "proxy/mitm/context.hpp"

namespace asio = boost::asio;
using namespace std::chrono_literals;
namespace policy = airlock::policy;
namespace flow = airlock::flow;
namespace audit = airlock::audit;
namespace mitm = airlock::mitm;
namespace upstream = airlock::upstream;

namespace {

enum class OriginFault { none, reset_on_accept, reset_after_request, reset_mid_response, close_mid_response };

// An origin on loopback that answers one request, or fails at the chosen point.
class Origin {
 public:
  Origin(asio::io_context& io, OriginFault fault)
      : acceptor_(io, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0)), fault_(fault) {
    acceptor_.async_accept([this](const boost::system::error_code& ec, asio::ip::tcp::socket s) {
      if (ec) return;
      socket_.emplace(std::move(s));
      if (fault_ == OriginFault::reset_on_accept) return reset();
      read();
    });
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  void reset() {
    boost::system::error_code ec;
    socket_->set_option(asio::socket_base::linger(true, 0), ec);
    socket_->close(ec);
  }
  void read() {
    socket_->async_read_some(asio::buffer(buffer_), [this](const boost::system::error_code& ec, std::size_t n) {
      if (ec) return;
      request_.append(buffer_.data(), n);
      if (request_.find("\r\n\r\n") == std::string::npos) return read();
      if (fault_ == OriginFault::reset_after_request) return reset();
      std::string response = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
      response += fault_ == OriginFault::none ? "0123456789" : "01234";
      asio::async_write(*socket_, asio::buffer(response_ = response), [this](const boost::system::error_code& wec, std::size_t) {
        if (wec) return;
        if (fault_ == OriginFault::reset_mid_response) return reset();
        if (fault_ == OriginFault::close_mid_response) {
          boost::system::error_code ignored;
          socket_->shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
        }
      });
    });
  }
  asio::ip::tcp::acceptor acceptor_;
  OriginFault fault_;
  std::optional<asio::ip::tcp::socket> socket_;
  std::array<char, 4096> buffer_{};
  std::string request_;
  std::string response_;
};

// The guest's end, failing at its k-th operation (read, send, shutdown).
struct FakeGuest final : flow::GuestFlow {
  asio::io_context& io;
  std::shared_ptr<flow::FlowDriver> driver;
  std::deque<std::string> to_read;
  bool fin = false;
  std::string received;
  int ops = 0;
  int fail_at = -1;
  bool closed = false;     // failed or finished: calls now do nothing
  bool delivered = false;  // on_closed went to the driver
  bool touched_after_close = false;

  explicit FakeGuest(asio::io_context& i) : io(i) {}

  void op() {
    if (delivered) touched_after_close = true;
    if (ops++ == fail_at) fail("reset_by_guest");
  }
  void fail(std::string_view reason) {
    if (closed) return;
    closed = true;
    asio::post(io, [this, r = std::string(reason)] {
      delivered = true;
      driver->on_closed(flow::FlowHandler::Close::abortive, {r, 0, 0});
    });
  }
  std::vector<std::uint8_t> read(std::size_t max) override {
    op();
    if (closed || to_read.empty()) return {};
    std::string chunk = to_read.front().substr(0, max);
    to_read.front().erase(0, chunk.size());
    if (to_read.front().empty()) to_read.pop_front();
    return std::vector<std::uint8_t>(chunk.begin(), chunk.end());
  }
  std::size_t send(std::span<const std::uint8_t> bytes) override {
    op();
    if (closed) return 0;
    received.append(bytes.begin(), bytes.end());
    return bytes.size();
  }
  void shutdown_write() override {
    op();
    if (!closed) {
      closed = true;
      asio::post(io, [this] {
        delivered = true;
        driver->on_closed(flow::FlowHandler::Close::graceful, {"closed", 0, 0});
      });
    }
  }
  void abort() override {
    op();
    fail("aborted");
  }
  bool congested() const override { return false; }
  bool read_closed() const override { return fin && to_read.empty(); }
};

struct Run {
  std::vector<audit::Event> events;
  int flows = 0;
  int requests = 0;
  bool ended = false;
  bool touched_after_close = false;
  int guest_ops = 0;
};

Run run(OriginFault fault, int guest_fail_at) {
  asio::io_context io;
  Origin origin(io, fault);
  policy::NetworkPolicy net;
  net.allowed_hosts = {*policy::HostPattern::parse("origin.test:" + std::to_string(origin.port()))};
  net.allow_private_hosts = {*policy::HostPattern::parse("origin.test")};
  net.resolve = {{"origin.test", {*policy::IpAddress::parse("127.0.0.1")}}};
  auto engine = policy::PolicyEngine::create(net, nullptr);
  auto context = *mitm::MitmContext::create(engine, {});
  upstream::Resolver resolver(io, net, {});
  upstream::Dialer dialer(io, resolver, *engine, upstream::Dialer::Config{2000ms, 8});
  Run result;
  auto guest = std::make_unique<FakeGuest>(io);
  guest->fail_at = guest_fail_at;
  auto admission = engine->admit(*policy::Host::parse("origin.test"), origin.port());
  REQUIRE(admission.admitted());
  guest->driver = std::make_shared<flow::FlowDriver>(io, context, *admission.grant, dialer, nullptr, [&](audit::Event e) {
    if (std::holds_alternative<audit::Flow>(e)) ++result.flows;
    if (std::holds_alternative<audit::HttpRequest>(e)) ++result.requests;
    result.events.push_back(std::move(e));
  });
  guest->to_read.push_back("GET / HTTP/1.1\r\nHost: origin.test:" + std::to_string(origin.port()) + "\r\n\r\n");
  std::weak_ptr<flow::FlowDriver> weak = guest->driver;
  guest->driver->start(*guest);
  guest->driver->on_readable();
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  bool fin_sent = false;
  std::size_t seen = 0;
  auto quiet_since = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() < deadline && result.flows == 0) {
    if (io.stopped()) io.restart();
    io.run_for(5ms);
    if (guest->received.size() != seen) {
      seen = guest->received.size();
      quiet_since = std::chrono::steady_clock::now();
    }
    // Once an answer came and nothing more for a while, the guest hangs up (FIN).
    if (!guest->closed && !fin_sent && seen > 0 && std::chrono::steady_clock::now() - quiet_since > 100ms) {
      fin_sent = true;
      guest->fin = true;
      guest->driver->on_read_closed();
    }
  }
  if (result.flows == 0 && !guest->closed) {
    // The flow is still alive (a stalled origin): the guest gives up.
    guest->fail("reset_by_guest");
    for (int i = 0; i < 50 && result.flows == 0; ++i) {
      if (io.stopped()) io.restart();
      io.run_for(5ms);
    }
  }
  result.touched_after_close = guest->touched_after_close;
  result.guest_ops = guest->ops;
  guest->driver.reset();
  io.restart();
  io.run_for(20ms);
  result.ended = weak.expired();  // nothing keeps the driver alive after its flow ended
  return result;
}

}  // namespace

TEST_CASE("driver: a clean exchange, then an error injected at every step") {
  const Run clean = run(OriginFault::none, -1);
  CHECK(clean.flows == 1);
  CHECK(clean.requests == 1);
  REQUIRE(clean.guest_ops > 2);
  for (OriginFault fault : {OriginFault::none, OriginFault::reset_on_accept, OriginFault::reset_after_request,
                            OriginFault::reset_mid_response, OriginFault::close_mid_response}) {
    for (int at = -1; at < clean.guest_ops + 2; ++at) {
      CAPTURE(static_cast<int>(fault));
      CAPTURE(at);
      const Run r = run(fault, at);
      CHECK(r.flows == 1);
      CHECK(r.requests <= 1);  // one request sent at most: recorded once if it was parsed
      CHECK_FALSE(r.touched_after_close);
      CHECK(r.ended);
      for (const auto& e : r.events)
        if (const auto* f = std::get_if<audit::Flow>(&e)) CHECK_FALSE(f->close_reason.empty());
    }
  }
}

TEST_CASE("driver: a request the guest sent always has its record, whatever the origin does") {
  for (OriginFault fault : {OriginFault::none, OriginFault::reset_on_accept, OriginFault::reset_after_request,
                            OriginFault::reset_mid_response, OriginFault::close_mid_response}) {
    CAPTURE(static_cast<int>(fault));
    const Run r = run(fault, -1);
    CHECK(r.requests == 1);
    CHECK(r.flows == 1);
  }
}
