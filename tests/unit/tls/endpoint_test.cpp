// TlsEndpoint: a server and a client endpoint talking through memory only, with a CA and
// leaves from certs/: handshake, verification, ALPN, data, close and refusal.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "certs/authority.hpp"
#include "certs/leaf_minter.hpp"
#include "hello_source.hpp"
#include "proxy/tls/client_hello.hpp"
#include "proxy/tls/endpoint.hpp"

using namespace airlock;
using namespace airlock::tls;
using State = TlsEndpoint::State;
using Bytes = std::vector<std::uint8_t>;

namespace {

// A PEM file that removes itself.
struct TempPem {
  std::filesystem::path path;
  explicit TempPem(const std::string& pem) {
    std::random_device random;
    path = std::filesystem::temp_directory_path() / ("airlock-tls-test-" + std::to_string(random()) + ".pem");
    std::ofstream(path) << pem;
  }
  ~TempPem() { std::filesystem::remove(path); }
};

// Moves ciphertext both ways and steps both endpoints until nothing moves.
void pump(TlsEndpoint& client, TlsEndpoint& server) {
  for (int round = 0; round < 100; ++round) {
    client.step();
    server.step();
    Bytes to_server = client.take_ciphertext();
    Bytes to_client = server.take_ciphertext();
    if (to_server.empty() && to_client.empty()) return;
    REQUIRE(server.feed_ciphertext(to_server) == to_server.size());
    REQUIRE(client.feed_ciphertext(to_client) == to_client.size());
  }
  FAIL("endpoints never settled");
}

struct Fixture {
  std::chrono::system_clock::time_point now = std::chrono::system_clock::now();
  certs::CertificateAuthority ca = certs::CertificateAuthority::create("test CA", now).value();
  certs::LeafMinter minter{ca};
  TempPem ca_file{ca.certificate_pem()};
  certs::SslCtxPtr server_ctx = make_server_context().value();
  certs::SslCtxPtr client_ctx = make_client_context(ca_file.path).value();

  // The MITM's order: the client's hello is parsed, a leaf minted for its SNI and set on
  // the server endpoint, and only then is the hello fed to it.
  std::unique_ptr<TlsEndpoint> server_for(TlsEndpoint& client, std::string fallback_name = "") {
    auto server = TlsEndpoint::server(server_ctx.get());
    REQUIRE(server.ok());
    client.step();
    Bytes hello_bytes = client.take_ciphertext();
    ClientHello hello;
    REQUIRE(parse_client_hello(hello_bytes, hello) == HelloStatus::complete);
    std::string name = hello.sni_present ? hello.sni : fallback_name;
    auto leaf = minter.leaf_for(name, now);
    REQUIRE(leaf.ok());
    REQUIRE((*server)->set_certificate((*leaf)->certificate.get(), minter.leaf_key()).ok());
    REQUIRE((*server)->feed_ciphertext(hello_bytes) == hello_bytes.size());
    return std::move(*server);
  }

  std::unique_ptr<TlsEndpoint> client_to(SSL_CTX* ctx, const char* sni, const char* host) {
    auto client = TlsEndpoint::client(ctx, sni, host);
    REQUIRE(client.ok());
    return std::move(*client);
  }
};

Bytes bytes_of(const std::string& text) { return Bytes(text.begin(), text.end()); }

// Writes all of `data` into `from`, pumping, and reads it all out of `to`.
Bytes transfer(TlsEndpoint& from, TlsEndpoint& to, TlsEndpoint& client, TlsEndpoint& server, const Bytes& data) {
  Bytes received;
  std::size_t sent = 0;
  for (int round = 0; round < 10000 && received.size() < data.size(); ++round) {
    if (sent < data.size()) sent += from.write_plaintext(std::span(data).subspan(sent));
    pump(client, server);
    to.read_plaintext(received, 1 << 20);
  }
  return received;
}

}  // namespace

TEST_CASE_FIXTURE(Fixture, "a handshake with a leaf minted from the SNI verifies against the CA") {
  auto client = client_to(client_ctx.get(), "api.example.com", "api.example.com");
  auto server = server_for(*client);
  pump(*client, *server);
  CHECK(client->state() == State::established);
  CHECK(server->state() == State::established);
  CHECK(client->error().empty());
  CHECK(client->alpn() == "http/1.1");
  CHECK(server->alpn() == "http/1.1");
  CHECK(server->protocol_version() == "TLSv1.3");
}

TEST_CASE_FIXTURE(Fixture, "data flows both ways, in large amounts, through the caps") {
  auto client = client_to(client_ctx.get(), "data.example", "data.example");
  auto server = server_for(*client);
  pump(*client, *server);
  REQUIRE(client->state() == State::established);

  Bytes request = bytes_of("GET / HTTP/1.1\r\nHost: data.example\r\n\r\n");
  CHECK(transfer(*client, *server, *client, *server, request) == request);
  Bytes response(300 * 1024);
  for (std::size_t i = 0; i < response.size(); ++i) response[i] = static_cast<std::uint8_t>(i * 7);
  CHECK(transfer(*server, *client, *client, *server, response) == response);

  // The outbound buffer is capped: without take_ciphertext, writes stop being accepted.
  std::size_t accepted = 0;
  for (int i = 0; i < 100; ++i) accepted += server->write_plaintext(response);
  CHECK(accepted < kMaxPendingCiphertext + kMaxPlaintextWrite);
  CHECK(accepted >= kMaxPendingCiphertext - kMaxPlaintextWrite);
}

TEST_CASE_FIXTURE(Fixture, "the client refuses a certificate from another CA") {
  auto other = certs::CertificateAuthority::create("other CA", now);
  REQUIRE(other.ok());
  TempPem other_file(other->certificate_pem());
  auto other_ctx = make_client_context(other_file.path);
  REQUIRE(other_ctx.ok());
  auto client = client_to(other_ctx->get(), "example.com", "example.com");
  auto server = server_for(*client);
  pump(*client, *server);
  CHECK(client->state() == State::failed);
  CHECK(client->error().find("verify") != std::string::npos);
  CHECK(server->state() == State::failed);  // it got the client's alert
  CHECK_FALSE(server->error().empty());
}

TEST_CASE_FIXTURE(Fixture, "the client refuses the CA when only the system store is trusted") {
  auto system_ctx = make_client_context(std::nullopt);
  REQUIRE(system_ctx.ok());
  auto client = client_to(system_ctx->get(), "example.com", "example.com");
  auto server = server_for(*client);
  pump(*client, *server);
  CHECK(client->state() == State::failed);
  CHECK(client->error().find("verify") != std::string::npos);
}

TEST_CASE_FIXTURE(Fixture, "the client refuses a certificate for another name") {
  auto client = client_to(client_ctx.get(), "example.com", "other.example.com");
  auto server = server_for(*client);
  pump(*client, *server);
  CHECK(client->state() == State::failed);
  CHECK(client->error().find("verify") != std::string::npos);
  CHECK(client->error().find("hostname mismatch") != std::string::npos);
}

TEST_CASE_FIXTURE(Fixture, "an IP literal upstream: no SNI, IP SAN verified") {
  auto client = client_to(client_ctx.get(), "192.0.2.10", "192.0.2.10");
  auto server = TlsEndpoint::server(server_ctx.get()).value();
  client->step();
  Bytes hello_bytes = client->take_ciphertext();
  ClientHello hello;
  REQUIRE(parse_client_hello(hello_bytes, hello) == HelloStatus::complete);
  CHECK_FALSE(hello.sni_present);

  SUBCASE("the right address verifies") {
    auto leaf = minter.leaf_for("192.0.2.10", now);
    REQUIRE(server->set_certificate((*leaf)->certificate.get(), minter.leaf_key()).ok());
    server->feed_ciphertext(hello_bytes);
    pump(*client, *server);
    CHECK(client->state() == State::established);
  }
  SUBCASE("another address does not") {
    auto leaf = minter.leaf_for("192.0.2.11", now);
    REQUIRE(server->set_certificate((*leaf)->certificate.get(), minter.leaf_key()).ok());
    server->feed_ciphertext(hello_bytes);
    pump(*client, *server);
    CHECK(client->state() == State::failed);
    CHECK(client->error().find("IP address mismatch") != std::string::npos);
  }
}

TEST_CASE_FIXTURE(Fixture, "a client offering only h2 still completes, with no ALPN") {
  const unsigned char h2_only[] = {2, 'h', '2'};
  REQUIRE(SSL_CTX_set_alpn_protos(client_ctx.get(), h2_only, sizeof h2_only) == 0);
  auto client = client_to(client_ctx.get(), "h2.example", "h2.example");
  auto server = server_for(*client);
  pump(*client, *server);
  CHECK(client->state() == State::established);
  CHECK(server->state() == State::established);
  CHECK(client->alpn().empty());
  CHECK(server->alpn().empty());
}

TEST_CASE_FIXTURE(Fixture, "TLS 1.2 clients are served too") {
  REQUIRE(SSL_CTX_set_max_proto_version(client_ctx.get(), TLS1_2_VERSION) == 1);
  auto client = client_to(client_ctx.get(), "old.example", "old.example");
  auto server = server_for(*client);
  pump(*client, *server);
  CHECK(client->state() == State::established);
  CHECK(client->protocol_version() == "TLSv1.2");
  CHECK(server->protocol_version() == "TLSv1.2");
  Bytes ping = bytes_of("ping");
  CHECK(transfer(*client, *server, *client, *server, ping) == ping);
}

TEST_CASE_FIXTURE(Fixture, "close_notify is seen as peer_closed") {
  auto client = client_to(client_ctx.get(), "close.example", "close.example");
  auto server = server_for(*client);
  pump(*client, *server);
  REQUIRE(server->state() == State::established);
  CHECK_FALSE(server->peer_closed());

  client->close_notify();
  CHECK(client->state() == State::closed);
  pump(*client, *server);
  Bytes out;
  CHECK(server->read_plaintext(out, 1024) == 0);
  CHECK(server->peer_closed());
  CHECK(out.empty());
  CHECK(client->write_plaintext(bytes_of("late")) == 0);
}

TEST_CASE_FIXTURE(Fixture, "a refused flow before the handshake gets the alert instead of a ServerHello") {
  auto client = client_to(client_ctx.get(), "blocked.example", "blocked.example");
  auto server = TlsEndpoint::server(server_ctx.get()).value();
  client->step();
  Bytes hello_bytes = client->take_ciphertext();
  server->feed_ciphertext(hello_bytes);
  server->send_alert_and_close(SSL_AD_UNRECOGNIZED_NAME);
  CHECK(server->state() == State::closed);
  Bytes alert = server->take_ciphertext();
  REQUIRE(alert.size() == 7);  // one plaintext alert record
  CHECK(alert[0] == 0x15);
  CHECK(alert[5] == 2);   // fatal
  CHECK(alert[6] == SSL_AD_UNRECOGNIZED_NAME);
  client->feed_ciphertext(alert);
  CHECK(client->step() == State::failed);
  CHECK(client->error().find("unrecognized name") != std::string::npos);
}

TEST_CASE_FIXTURE(Fixture, "a refused flow after the handshake is closed with close_notify") {
  auto client = client_to(client_ctx.get(), "late.example", "late.example");
  auto server = server_for(*client);
  pump(*client, *server);
  REQUIRE(server->state() == State::established);
  server->send_alert_and_close(SSL_AD_ACCESS_DENIED);
  CHECK(server->state() == State::closed);
  pump(*client, *server);
  Bytes out;
  client->read_plaintext(out, 1024);
  CHECK(client->peer_closed());
}

TEST_CASE_FIXTURE(Fixture, "inbound ciphertext is capped") {
  auto server = TlsEndpoint::server(server_ctx.get()).value();
  Bytes lots(kMaxPendingCiphertext + 1000, 0x16);
  CHECK(server->feed_ciphertext(lots) == kMaxPendingCiphertext);
  CHECK(server->feed_ciphertext(lots) == 0);
  CHECK(server->step() == State::failed);  // garbage, not a hello
  CHECK_FALSE(server->error().empty());
  CHECK(server->feed_ciphertext(lots) == 0);
}

TEST_CASE_FIXTURE(Fixture, "setup errors are reported, not thrown") {
  CHECK_FALSE(make_client_context(std::filesystem::path("/nonexistent/ca.pem")).ok());
  CHECK_FALSE(TlsEndpoint::client(client_ctx.get(), "example.com", "").ok());
  CHECK_FALSE(TlsEndpoint::server(nullptr).ok());
  auto server = TlsEndpoint::server(server_ctx.get()).value();
  auto leaf = minter.leaf_for("example.com", now);
  REQUIRE(leaf.ok());
  CHECK_FALSE(server->set_certificate((*leaf)->certificate.get(), ca.key()).ok());  // wrong key
  CHECK(server->set_certificate((*leaf)->certificate.get(), minter.leaf_key()).ok());
}

TEST_CASE("client sessions are resumed per key, and only for that key") {
  Fixture f;
  // An origin that issues session tickets (ours never does toward the guest).
  certs::SslCtxPtr ticketing(SSL_CTX_new(TLS_server_method()));
  REQUIRE(ticketing);
  auto connect = [&](const char* key) {
    auto client = TlsEndpoint::client(f.client_ctx.get(), "api.test", "api.test", {}, key);
    REQUIRE(client.ok());
    auto server = TlsEndpoint::server(ticketing.get());
    REQUIRE(server.ok());
    auto leaf = f.minter.leaf_for("api.test", f.now);
    REQUIRE(leaf.ok());
    REQUIRE((*server)->set_certificate((*leaf)->certificate.get(), f.minter.leaf_key()).ok());
    pump(**client, **server);
    REQUIRE((*client)->state() == State::established);
    // TLS 1.3 tickets come after the handshake: a read makes the client take them.
    Bytes plain;
    (*client)->read_plaintext(plain, 16);
    pump(**client, **server);
    (*client)->read_plaintext(plain, 16);
    return (*client)->resumed();
  };
  CHECK_FALSE(connect("api.test:443"));
  CHECK(connect("api.test:443"));        // the stored session
  CHECK_FALSE(connect("api.test:8443")); // another key never borrows it
  CHECK_FALSE(connect(""));              // no key: nothing stored, nothing resumed
}
