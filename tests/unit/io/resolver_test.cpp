// Resolver: c-ares on Asio against a fake DNS server on a loopback UDP port.
#include <doctest/doctest.h>

#include <array>
#include <chrono>
#include <optional>
#include <utility>
#include <vector>

#include <boost/asio.hpp>

#include "policy/policy.hpp"
#include "proxy/upstream/resolver.hpp"

namespace asio = boost::asio;
namespace policy = airlock::policy;
using airlock::upstream::ResolveResult;
using airlock::upstream::Resolver;
using namespace std::chrono_literals;

namespace {

// Answers A queries with the given IPv4 addresses and everything else with no data;
// or, when silent, never answers.
class FakeDns {
 public:
  FakeDns(asio::io_context& io, std::vector<std::array<std::uint8_t, 4>> answers, bool silent = false)
      : socket_(io, asio::ip::udp::endpoint(asio::ip::address_v4::loopback(), 0)),
        answers_(std::move(answers)),
        silent_(silent) {
    receive();
  }
  std::uint16_t port() const { return socket_.local_endpoint().port(); }
  int queries = 0;

 private:
  void receive() {
    socket_.async_receive_from(asio::buffer(buffer_), peer_,
                               [this](const boost::system::error_code& ec, std::size_t n) {
                                 if (ec) return;
                                 ++queries;
                                 if (!silent_ && n >= 17) reply(n);
                                 receive();
                               });
  }
  void reply(std::size_t n) {
    std::vector<std::uint8_t> out(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(n));
    const std::uint16_t qtype = static_cast<std::uint16_t>((out[n - 4] << 8) | out[n - 3]);
    const std::size_t count = qtype == 1 ? answers_.size() : 0;
    out[2] = 0x81;  // QR, RD
    out[3] = 0x80;  // RA, NOERROR
    out[6] = 0;
    out[7] = static_cast<std::uint8_t>(count);
    for (std::size_t i = 0; i < count; ++i) {
      const std::array<std::uint8_t, 12> rr{0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4};
      out.insert(out.end(), rr.begin(), rr.end());
      out.insert(out.end(), answers_[i].begin(), answers_[i].end());
    }
    socket_.send_to(asio::buffer(out), peer_);
  }

  asio::ip::udp::socket socket_;
  asio::ip::udp::endpoint peer_;
  std::array<std::uint8_t, 2048> buffer_{};
  std::vector<std::array<std::uint8_t, 4>> answers_;
  bool silent_;
};

policy::NetworkPolicy using_server(std::uint16_t port) {
  policy::NetworkPolicy net;
  net.dns_servers = {policy::DnsServer{*policy::IpAddress::parse("127.0.0.1"), port}};
  return net;
}

std::optional<ResolveResult> run(asio::io_context& io, Resolver& resolver, const std::string& name) {
  std::optional<ResolveResult> result;
  resolver.resolve(name, [&](ResolveResult r) { result = std::move(r); });
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!result && std::chrono::steady_clock::now() < deadline) io.run_for(5ms);
  return result;
}

}  // namespace

TEST_CASE("every address the server gives comes back, in order") {
  asio::io_context io;
  FakeDns server(io, {{203, 0, 113, 9}, {198, 51, 100, 7}});
  Resolver resolver(io, using_server(server.port()));
  auto result = run(io, resolver, "fake.test");
  REQUIRE(result);
  CHECK(result->error == "");
  REQUIRE(result->addresses.size() == 2);
  CHECK(result->addresses[0].to_string() == "203.0.113.9");
  CHECK(result->addresses[1].to_string() == "198.51.100.7");
  CHECK_FALSE(result->from_override);
  CHECK(server.queries >= 2);  // A and AAAA
  CHECK(resolver.counters().answered == 1);
}

TEST_CASE("a resolve override is answered without any query") {
  asio::io_context io;
  FakeDns server(io, {{203, 0, 113, 9}});
  policy::NetworkPolicy net = using_server(server.port());
  net.resolve = {{"local.test", {*policy::IpAddress::parse("127.0.0.1")}}};
  Resolver resolver(io, net);
  auto result = run(io, resolver, "local.test");
  REQUIRE(result);
  REQUIRE(result->ok());
  CHECK(result->from_override);
  CHECK(result->addresses[0].to_string() == "127.0.0.1");
  CHECK(server.queries == 0);
}

TEST_CASE("a silent server ends in a bounded timeout") {
  asio::io_context io;
  FakeDns server(io, {}, /*silent=*/true);
  Resolver::Config config;
  config.timeout = 400ms;
  config.try_timeout = 100ms;
  Resolver resolver(io, using_server(server.port()), config);
  const auto started = std::chrono::steady_clock::now();
  auto result = run(io, resolver, "slow.test");
  REQUIRE(result);
  CHECK_FALSE(result->ok());
  CHECK(std::chrono::steady_clock::now() - started < 10s);  // the 400 ms deadline, not c-ares' own retries
  CHECK(server.queries >= 1);
}

TEST_CASE("a name with no address fails") {
  asio::io_context io;
  FakeDns server(io, {});
  Resolver resolver(io, using_server(server.port()));
  auto result = run(io, resolver, "empty.test");
  REQUIRE(result);
  CHECK_FALSE(result->ok());
  CHECK(result->addresses.empty());
}

TEST_CASE("destroying the resolver with a lookup in flight calls nothing") {
  asio::io_context io;
  FakeDns server(io, {}, /*silent=*/true);
  bool called = false;
  {
    Resolver resolver(io, using_server(server.port()));
    resolver.resolve("gone.test", [&](ResolveResult) { called = true; });
    io.run_for(20ms);
  }
  io.run_for(50ms);
  CHECK_FALSE(called);
}
