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
  p >> DataIn{Side::guest, bytes("\x05\x03startup")};
  CHECK(p.took() == "note opaque, open");
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

TEST_CASE("flow layer: a silent client on a host:port rule is a server-first protocol") {
  Roots r;
  Playbook p(r.make("opaque.test", 5432));
  p >> Start{};
  REQUIRE(p.layer().deadline().has_value());
  p.advance(std::chrono::milliseconds(999));
  p >> TimerIn{};
  CHECK(p.took() == "");
  p.advance(std::chrono::milliseconds(2));
  p >> TimerIn{};
  CHECK(p.took() == "note opaque, open");
  p >> Connected{};
  p >> DataIn{Side::upstream, bytes("SSH-2.0-test\r\n")};
  CHECK(p.took() == "send guest 14");
}

TEST_CASE("flow layer: a silent client without such a rule has no deadline") {
  Roots r;
  Playbook p(r.make("api.test", 443));
  p >> Start{};
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
  Playbook p(std::make_unique<TunnelLayer>(bytes("held")));
  p >> Start{};
  CHECK(p.took() == "open");
  p >> ConnectFailed{"connect_failed", "refused", ""};
  CHECK(p.took() == "note error connect_failed, close guest reset");
  Playbook q(std::make_unique<TunnelLayer>(Bytes{}));
  q >> Start{};
  q >> ConnectFailed{"private_address", "", "block_private_ips: loopback"};
  CHECK(q.took() == "open, note refused private_address, close guest reset");
}

TEST_CASE("tunnel: the guest's EOF before the connection is up is kept for after") {
  Playbook p(std::make_unique<TunnelLayer>(bytes("abc")));
  p >> Start{};
  p >> ClosedIn{Side::guest, false, ""};
  CHECK(p.took() == "open");
  p >> Connected{};
  CHECK(p.took() == "send upstream 3, close upstream");
}

}  // namespace
}  // namespace airlock::mitm::testing
