// Playbooks for the root layer and the tunnel: classification, refusals, lazy dialling.
#include <doctest/doctest.h>

#include "proxy/mitm/tunnel_layer.hpp"
#include "tests/unit/mitm/harness.hpp"

namespace airlock::mitm::testing {
namespace {

struct Roots {
  World world;
  std::unique_ptr<FlowLayer> make(const std::string& h, std::uint16_t port) {
    auto admission = world.engine->admit(host(h), port);
    REQUIRE(admission.admitted());
    return std::make_unique<FlowLayer>(world.context, *admission.grant);
  }
};

TEST_CASE("flow layer: nothing is dialled until a request is ready") {
  Roots r;
  Playbook p(r.make("api.test", 80));
  p >> Start{};
  CHECK(p.took() == "");
  p >> DataIn{Side::guest, bytes("GET / HTTP/1.1\r\n")};
  CHECK(p.took() == "note http");  // classified, but the head is not complete: no dial
  p >> DataIn{Side::guest, bytes("Host: api.test\r\n\r\n")};
  CHECK(p.took() == "open");
  p >> Connected{};
  CHECK(p.took() == "send upstream 34");
  CHECK(p.sent(Side::upstream) == "GET / HTTP/1.1\r\nHost: api.test\r\n\r\n");
}

TEST_CASE("flow layer: opaque bytes without a host:port rule are refused, nothing dialled") {
  Roots r;
  Playbook p(r.make("api.test", 443));
  p >> Start{};
  p >> DataIn{Side::guest, bytes("\x01\x02 binary")};
  CHECK(p.took() == "note opaque refused opaque_not_allowed, close guest reset");
  p >> DataIn{Side::guest, bytes("more")};
  CHECK(p.took() == "");
}

TEST_CASE("flow layer: a host:port rule tunnels opaque bytes, held until connected") {
  Roots r;
  Playbook p(r.make("opaque.test", 5432));
  p >> Start{};
  CHECK(p.took() == "open");  // dialled at once: the server might speak first
  p >> DataIn{Side::guest, bytes("\x05\x03startup")};
  CHECK(p.took() == "note opaque");
  p >> DataIn{Side::guest, bytes("more")};
  CHECK(p.took() == "");
  p >> Connected{};
  CHECK(p.took() == "send upstream 13");
  p >> DataIn{Side::upstream, bytes("R")};
  CHECK(p.took() == "send guest 1");
  p >> ClosedIn{Side::guest, false, ""};
  CHECK(p.took() == "close upstream");
  p >> ClosedIn{Side::upstream, true, "reset"};
  CHECK(p.took() == "close guest reset");
}

TEST_CASE("flow layer: on a host:port rule the origin speaking first makes a tunnel, no clock involved") {
  Roots r;
  Playbook p(r.make("opaque.test", 5432));
  p >> Start{};
  CHECK(p.took() == "open");
  CHECK_FALSE(p.layer().deadline().has_value());
  p.advance(std::chrono::hours(1));  // a slow client is not a silent one: nothing happens
  p >> TimerIn{};
  CHECK(p.took() == "");
  p >> Connected{};
  p >> DataIn{Side::upstream, bytes("SSH-2.0-test\r\n")};
  CHECK(p.took() == "note opaque, send guest 14");
  p >> DataIn{Side::guest, bytes("SSH-2.0-client\r\n")};
  CHECK(p.took() == "send upstream 16");
}

TEST_CASE("flow layer: a TLS client on a host:port rule gets the early connection, no second dial") {
  World w([](policy::Policy& p) { p.network.allowed_hosts = {pattern("api.test:443"), pattern("other.test")}; });
  w.open("api.test", 443);  // admitted by api.test:443 (port named): dialled at once
  CHECK(w.opens == 1);
  w.guest_send("GET / HTTP/1.1\r\nHost: api.test\r\n\r\n");
  CHECK(w.opens == 1);
  CHECK(w.origin_in == "GET / HTTP/1.1\r\nHost: api.test\r\n\r\n");
  w.origin_send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  CHECK(w.guest_in.ends_with("ok"));
}

TEST_CASE("flow layer: an early connection the origin closed unused is dialled again") {
  World w([](policy::Policy& p) { p.network.allowed_hosts = {pattern("api.test:443"), pattern("other.test")}; });
  w.auto_connect = false;
  w.open("api.test", 443);
  REQUIRE(w.open_pending);
  w.open_pending = false;
  w.feed(ConnectFailed{"connect_failed", "refused", ""});
  w.auto_connect = true;
  w.guest_send("GET / HTTP/1.1\r\nHost: api.test\r\n\r\n");
  CHECK(w.opens == 2);
  CHECK(w.origin_in == "GET / HTTP/1.1\r\nHost: api.test\r\n\r\n");
}

TEST_CASE("flow layer: without a host:port rule nothing is dialled early") {
  Roots r;
  Playbook p(r.make("api.test", 443));
  p >> Start{};
  CHECK(p.took() == "");
  CHECK_FALSE(p.layer().deadline().has_value());
}

TEST_CASE("flow layer: the HTTP/2 preface in cleartext is refused") {
  Roots r;
  Playbook p(r.make("api.test", 80));
  p >> Start{};
  p >> DataIn{Side::guest, bytes("PRI * HTTP/2.0\r\n")};
  CHECK(p.took() == "");  // could still be the preface: wait
  p >> DataIn{Side::guest, bytes("\r\nSM\r\n\r\n")};
  CHECK(p.took() == "note http refused h2c_refused, close guest reset");
}

TEST_CASE("flow layer: a malformed ClientHello is refused") {
  Roots r;
  Playbook p(r.make("api.test", 443));
  p >> Start{};
  // A handshake record whose message is not a ClientHello.
  const std::string record("\x16\x03\x01\x00\x04\x02\x00\x00\x00", 9);
  p >> DataIn{Side::guest, bytes(record)};
  CHECK(p.took() == "note tls refused bad_client_hello, close guest reset");
}

TEST_CASE("flow layer: the guest leaving before a byte is a plain close") {
  Roots r;
  Playbook p(r.make("api.test", 443));
  p >> Start{};
  p >> ClosedIn{Side::guest, false, ""};
  CHECK(p.took() == "note tcp, close guest");
}

TEST_CASE("tunnel: a failed dial resets the guest with the reason") {
  Playbook p(std::make_unique<TunnelLayer>(bytes("held"), false));
  p >> Start{};
  CHECK(p.took() == "open");
  p >> ConnectFailed{"connect_failed", "refused", ""};
  CHECK(p.took() == "note error connect_failed, close guest reset");
  Playbook q(std::make_unique<TunnelLayer>(Bytes{}, false));
  q >> Start{};
  q >> ConnectFailed{"private_address", "", "block_private_ips: loopback"};
  CHECK(q.took() == "open, note refused private_address, close guest reset");
}

TEST_CASE("tunnel: the guest's EOF before the connection is up is kept for after") {
  Playbook p(std::make_unique<TunnelLayer>(bytes("abc"), false));
  p >> Start{};
  p >> ClosedIn{Side::guest, false, ""};
  CHECK(p.took() == "open");
  p >> Connected{};
  CHECK(p.took() == "send upstream 3, close upstream");
}

}  // namespace
}  // namespace airlock::mitm::testing
