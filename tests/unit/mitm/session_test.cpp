// Whole MITM sessions against in-memory peers: a guest TLS client that trusts only the
// VM's CA, and an origin TLS server whose CA the policy names in upstream_ca_file.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "tests/unit/mitm/harness.hpp"

namespace airlock::mitm::testing {
namespace {

constexpr std::string_view kReal = "real-secret-value-123";

struct World {
  Origin origin;
  policy::Policy policy;
  std::shared_ptr<MitmContext> context;
  std::unique_ptr<TempFile> vm_ca;
  certs::SslCtxPtr guest_ctx;
  std::unique_ptr<MitmSession> session;
  std::unique_ptr<tls::TlsEndpoint> guest;     // the guest's TLS client
  std::unique_ptr<tls::TlsEndpoint> upstream;  // the origin's TLS server
  std::string origin_in;                       // plaintext the origin received
  std::size_t answered = 0;
  std::string guest_in;                        // plaintext the guest received
  Bytes to_origin, to_guest_tls;               // ciphertext waiting for a TLS peer to take it
  std::string guest_out;                       // plaintext the guest still has to write
  Clock::time_point now = Clock::now();
  bool tls = true;

  explicit World(bool with_upstream_ca = true, std::string extra_rule = "") {
    policy.network.allowed_hosts = {pattern("api.test"), pattern("other.test")};
    if (!extra_rule.empty()) policy.network.allowed_hosts.push_back(pattern(extra_rule));
    if (with_upstream_ca) policy.network.upstream_ca_file = origin.ca_file.path;
    policy::Secret secret;
    secret.name = "API_KEY";
    secret.value = policy::SecretValue(std::string(kReal));
    secret.hosts = {pattern("api.test")};
    policy.network.secrets.push_back(std::move(secret));
    auto created = MitmContext::create(policy.network, {});
    REQUIRE_MESSAGE(created.ok(), (created.ok() ? "" : created.error()));
    context = *created;
    vm_ca = std::make_unique<TempFile>(context->ca().certificate_pem());
    guest_ctx = tls::make_client_context(vm_ca->path).value();
  }

  std::string placeholder() const { return context->guest_env().at("API_KEY"); }

  void open(const std::string& flow_host, std::uint16_t port, const std::string& sni,
            bool opaque_allowed = false) {
    FlowTarget target;
    target.host = host(flow_host);
    target.port = port;
    target.rule = flow_host;
    session = std::make_unique<MitmSession>(context, target, opaque_allowed, now);
    if (tls) {
      guest = tls::TlsEndpoint::client(guest_ctx.get(), sni, sni).value();
    }
  }

  // Origin: answers every complete request head with a small 200.
  void origin_serve() {
    std::size_t heads = 0;
    for (std::size_t at = origin_in.find("\r\n\r\n"); at != std::string::npos;
         at = origin_in.find("\r\n\r\n", at + 4))
      ++heads;
    while (answered < heads) {
      ++answered;
      const std::string response = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n";
      if (tls) {
        upstream->write_plaintext(bytes(response));
      } else {
        session->on_upstream(bytes(response), now);
      }
    }
  }

  void send_plain(const std::string& request) {
    if (tls) {
      guest_out += request;  // written by run() as the TLS client takes it
    } else {
      session->on_guest(bytes(request), now);
    }
  }

  void run() {
    for (int round = 0; round < 2000; ++round) {
      bool moved = false;
      if (tls && guest) {
        guest->step();
        while (!guest_out.empty()) {
          const std::size_t n = guest->write_plaintext(bytes(guest_out));
          if (auto c = guest->take_ciphertext(); !c.empty()) {
            session->on_guest(c, now);
            moved = true;
          }
          if (n == 0) break;
          guest_out.erase(0, n);
          moved = true;
        }
        if (auto c = guest->take_ciphertext(); !c.empty()) {
          session->on_guest(c, now);
          moved = true;
        }
      }
      if (auto up = session->take_to_upstream(); !up.empty()) {
        moved = true;
        if (tls) {
          if (!upstream) {
            upstream = tls::TlsEndpoint::server(origin.server_ctx.get()).value();
            auto leaf = origin.minter->leaf_for("api.test", std::chrono::system_clock::now());
            REQUIRE(leaf.ok());
            REQUIRE(upstream->set_certificate((*leaf)->certificate.get(), origin.minter->leaf_key()).ok());
          }
          to_origin.insert(to_origin.end(), up.begin(), up.end());
        } else {
          origin_in += text(up);
        }
      }
      if (tls && upstream) {
        if (!to_origin.empty()) {
          const std::size_t n = upstream->feed_ciphertext(to_origin);
          to_origin.erase(to_origin.begin(), to_origin.begin() + static_cast<std::ptrdiff_t>(n));
          if (n > 0) moved = true;
        }
        upstream->step();
        Bytes plain;
        while (upstream->read_plaintext(plain, 1 << 16) > 0) {
        }
        origin_in += text(plain);
        origin_serve();
        if (auto c = upstream->take_ciphertext(); !c.empty()) {
          session->on_upstream(c, now);
          moved = true;
        }
      } else if (!tls) {
        origin_serve();
      }
      if (auto down = session->take_to_guest(); !down.empty()) {
        moved = true;
        if (tls) {
          to_guest_tls.insert(to_guest_tls.end(), down.begin(), down.end());
        } else {
          guest_in += text(down);
        }
      }
      if (tls && guest && !to_guest_tls.empty()) {
        const std::size_t n = guest->feed_ciphertext(to_guest_tls);
        to_guest_tls.erase(to_guest_tls.begin(), to_guest_tls.begin() + static_cast<std::ptrdiff_t>(n));
        if (n > 0) moved = true;
        {
          guest->step();
          Bytes plain;
          while (guest->read_plaintext(plain, 1 << 16) > 0) {
          }
          guest_in += text(plain);
        }
      }
      if (!moved) break;
    }
  }

  std::vector<nlohmann::json> events() {
    std::vector<nlohmann::json> out(session->events().begin(), session->events().end());
    session->events().clear();
    return out;
  }
};

std::string status_line(const std::string& response) { return response.substr(0, response.find("\r\n")); }

nlohmann::json body_json(const std::string& response) {
  auto at = response.find("\r\n\r\n");
  REQUIRE(at != std::string::npos);
  return nlohmann::json::parse(response.substr(at + 4));
}

TEST_CASE("session: an allowed HTTPS GET goes through and is recorded") {
  World w;
  w.open("api.test", 443, "api.test");
  w.run();  // handshakes
  w.send_plain("GET /v1/x?token=abc HTTP/1.1\r\nHost: api.test\r\n\r\n");
  w.run();
  CHECK(status_line(w.guest_in) == "HTTP/1.1 200 OK");
  CHECK(w.origin_in.rfind("GET /v1/x?token=abc HTTP/1.1\r\n", 0) == 0);
  auto events = w.events();
  REQUIRE(events.size() == 1);
  CHECK(events[0]["kind"] == "request");
  CHECK(events[0]["url"] == "https://api.test/v1/x?token=[REDACTED]");
  CHECK(events[0]["status_code"] == 200);
  CHECK(events[0]["blocked"] == false);
  CHECK(events[0]["response_bytes"] == 3);
  CHECK(w.session->protocol() == "tls");
}

TEST_CASE("session: the secret is swapped for its host and blocked elsewhere") {
  World w;
  const std::string ph = w.placeholder();
  CHECK(ph.find(kReal) == std::string::npos);

  SUBCASE("header to the secret's host carries the real value") {
    w.open("api.test", 443, "api.test");
    w.run();
    w.send_plain("GET / HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer " + ph + "\r\n\r\n");
    w.run();
    CHECK(status_line(w.guest_in) == "HTTP/1.1 200 OK");
    CHECK(w.origin_in.find("Authorization: Bearer " + std::string(kReal)) != std::string::npos);
    CHECK(w.origin_in.find(ph) == std::string::npos);
    auto events = w.events();
    REQUIRE(events.size() == 1);
    CHECK(events[0]["secrets"][0]["name"] == "API_KEY");
    CHECK(events[0]["secrets"][0]["location"] == "header:authorization");
    CHECK(events[0].dump().find(kReal) == std::string::npos);
  }
  SUBCASE("a chunked body to the secret's host is substituted") {
    w.open("api.test", 443, "api.test");
    w.run();
    const std::string body = "key=" + ph;
    char size[16];
    std::snprintf(size, sizeof size, "%zx", body.size());
    w.send_plain("POST /p HTTP/1.1\r\nHost: api.test\r\nTransfer-Encoding: chunked\r\n\r\n" +
                 std::string(size) + "\r\n" + body + "\r\n0\r\n\r\n");
    w.run();
    CHECK(w.origin_in.find("key=" + std::string(kReal)) != std::string::npos);
    CHECK(w.origin_in.find(ph) == std::string::npos);
  }
  SUBCASE("a Content-Length body to the secret's host is re-counted") {
    w.open("api.test", 443, "api.test");
    w.run();
    const std::string body = "{\"k\":\"" + ph + "\"}";
    w.send_plain("POST /p HTTP/1.1\r\nHost: api.test\r\nContent-Length: " + std::to_string(body.size()) +
                 "\r\n\r\n" + body);
    w.run();
    const std::string real_body = "{\"k\":\"" + std::string(kReal) + "\"}";
    CHECK(w.origin_in.find("Content-Length: " + std::to_string(real_body.size())) != std::string::npos);
    CHECK(w.origin_in.find(real_body) != std::string::npos);
  }
  SUBCASE("the placeholder to another host is a secret_leak") {
    w.open("other.test", 443, "other.test");
    w.run();
    w.send_plain("GET /?k=" + ph + " HTTP/1.1\r\nHost: other.test\r\n\r\n");
    w.run();
    CHECK(status_line(w.guest_in) == "HTTP/1.1 403 Forbidden");
    CHECK(body_json(w.guest_in)["reason"] == "secret_leak");
    CHECK(w.origin_in.empty());
  }
  SUBCASE("the placeholder in a body to another host never leaves") {
    w.open("other.test", 443, "other.test");
    w.run();
    const std::string body = "x=" + ph;
    w.send_plain("POST / HTTP/1.1\r\nHost: other.test\r\nContent-Length: " + std::to_string(body.size()) +
                 "\r\n\r\n" + body);
    w.run();
    CHECK(w.origin_in.find(ph) == std::string::npos);
    CHECK(body_json(w.guest_in)["reason"] == "secret_leak");
    CHECK(w.session->upstream_close() == CloseHow::reset);
  }
}

TEST_CASE("session: a large TLS upload with a secret arrives whole") {
  World w;
  w.open("api.test", 443, "api.test");
  w.run();
  std::string body(600000, 'b');
  const std::string ph = w.placeholder();
  body.replace(1000, ph.size(), ph);
  w.send_plain("POST /up HTTP/1.1\r\nHost: api.test\r\nContent-Length: " + std::to_string(body.size()) +
               "\r\n\r\n");
  // The client writes in records, as a TLS stack does.
  for (std::size_t at = 0; at < body.size(); at += 16384) {
    w.send_plain(body.substr(at, 16384));
    w.run();
  }
  w.run();
  const std::size_t expected = body.size() - ph.size() + kReal.size();
  CHECK(w.origin_in.find("Content-Length: " + std::to_string(expected)) != std::string::npos);
  const auto head_end = w.origin_in.find("\r\n\r\n");
  CHECK(w.origin_in.size() - head_end - 4 == expected);
  CHECK(w.origin_in.find(std::string(kReal)) != std::string::npos);
}

TEST_CASE("session: a refused TLS flow keeps reading and dropping guest bytes") {
  World w;
  w.open("api.test", 443, "other.test");
  w.run();
  CHECK(w.session->guest_close() == CloseHow::graceful);
  CHECK(w.session->wants_guest_data());
  w.session->on_guest(bytes(std::string(50000, 'z')), w.now);
  CHECK(w.session->take_to_upstream().empty());
}

TEST_CASE("session: Host and SNI must agree with the flow") {
  World w;
  SUBCASE("Host header differs from SNI") {
    w.open("api.test", 443, "api.test");
    w.run();
    w.send_plain("GET / HTTP/1.1\r\nHost: other.test\r\n\r\n");
    w.run();
    CHECK(status_line(w.guest_in) == "HTTP/1.1 403 Forbidden");
    auto body = body_json(w.guest_in);
    CHECK(body["reason"] == "sni_host_mismatch");
    CHECK(body["error"].is_string());
    CHECK(body["host"] == "other.test");
  }
  SUBCASE("SNI differs from the flow's name: handshake, then nothing") {
    w.open("api.test", 443, "other.test");
    w.run();
    w.send_plain("GET / HTTP/1.1\r\nHost: other.test\r\n\r\n");
    w.run();
    CHECK(w.guest_in.empty());
    CHECK(w.origin_in.empty());
    auto events = w.events();
    REQUIRE(!events.empty());
    CHECK(events[0]["kind"] == "flow");
    CHECK(events[0]["block_reason"] == "sni_host_mismatch");
    CHECK(events[0]["sni"] == "other.test");
    CHECK(w.session->guest_close() == CloseHow::graceful);
  }
}

TEST_CASE("session: upstream TLS is verified") {
  World w(/*with_upstream_ca=*/false);
  w.open("api.test", 443, "api.test");
  w.run();
  w.send_plain("GET / HTTP/1.1\r\nHost: api.test\r\n\r\n");
  w.run();
  CHECK(status_line(w.guest_in) == "HTTP/1.1 502 Bad Gateway");
  CHECK(body_json(w.guest_in)["reason"] == "upstream_tls_failed");
  auto events = w.events();
  REQUIRE(events.size() == 1);
  CHECK(events[0]["block_reason"] == "upstream_tls_failed");
}

TEST_CASE("session: plain HTTP, pipelined, in order") {
  World w;
  w.tls = false;
  w.open("api.test", 80, "");
  w.send_plain("GET /a HTTP/1.1\r\nHost: api.test\r\n\r\nGET /b HTTP/1.1\r\nHost: api.test\r\n\r\n");
  w.run();
  CHECK(w.session->protocol() == "http");
  CHECK(w.origin_in.find("GET /a") < w.origin_in.find("GET /b"));
  auto events = w.events();
  REQUIRE(events.size() == 2);
  CHECK(events[0]["url"] == "http://api.test/a");
  CHECK(events[1]["url"] == "http://api.test/b");
  CHECK(w.guest_in == "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n");
}

TEST_CASE("session: a refused request after an allowed one waits for its response") {
  World w;
  w.tls = false;
  w.open("api.test", 80, "");
  w.send_plain("GET /a HTTP/1.1\r\nHost: api.test\r\n\r\nGET /b HTTP/1.1\r\nHost: evil.test\r\n\r\n");
  w.run();
  CHECK(w.origin_in.find("/b") == std::string::npos);
  const auto second = w.guest_in.find("HTTP/1.1 403");
  CHECK(w.guest_in.rfind("HTTP/1.1 200 OK", 0) == 0);
  CHECK(second != std::string::npos);
  CHECK(w.guest_in.find("host_mismatch") != std::string::npos);
}

TEST_CASE("session: the placeholder over plain HTTP is a leak even to its host") {
  World w;
  w.tls = false;
  w.open("api.test", 80, "");
  w.send_plain("GET / HTTP/1.1\r\nHost: api.test\r\nX-Key: " + w.placeholder() + "\r\n\r\n");
  w.run();
  CHECK(w.guest_in.find("secret_leak") != std::string::npos);
  CHECK(w.origin_in.empty());
}

TEST_CASE("session: opaque bytes pass only with a host:port rule") {
  SUBCASE("refused") {
    World w;
    w.tls = false;
    w.open("api.test", 5432, "");
    w.session->on_guest(bytes(std::string_view("\x00\x01binary", 8)), w.now);
    CHECK(w.session->guest_close() == CloseHow::reset);
    auto events = w.events();
    REQUIRE(events.size() == 1);
    CHECK(events[0]["block_reason"] == "opaque_not_allowed");
    CHECK(w.session->take_to_upstream().empty());
  }
  SUBCASE("allowed") {
    World w(true, "db.test:5432");
    w.tls = false;
    FlowTarget target;
    target.host = host("db.test");
    target.port = 5432;
    target.rule = "db.test:5432";
    MitmSession session(w.context, target, true, w.now);
    session.on_guest(bytes(std::string_view("\x00\x01binary", 8)), w.now);
    CHECK(text(session.take_to_upstream()) == std::string("\x00\x01binary", 8));
    session.on_upstream(bytes("reply"), w.now);
    CHECK(text(session.take_to_guest()) == "reply");
    CHECK(session.protocol() == "opaque");
  }
  SUBCASE("a silent client becomes opaque after the classification timeout") {
    World w(true, "db.test:5432");
    FlowTarget target;
    target.host = host("db.test");
    target.port = 5432;
    target.rule = "db.test:5432";
    MitmSession session(w.context, target, true, w.now);
    REQUIRE(session.next_deadline().has_value());
    session.on_timer(*session.next_deadline());
    session.on_upstream(bytes("220 banner\r\n"), w.now);
    CHECK(text(session.take_to_guest()) == "220 banner\r\n");
  }
}

TEST_CASE("session: a malformed request gets a 400 and the flow closes") {
  World w;
  w.tls = false;
  w.open("api.test", 80, "");
  w.send_plain("GET / HTTP/1.1\r\nHost: api.test\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx");
  w.run();
  CHECK(status_line(w.guest_in) == "HTTP/1.1 400 Bad Request");
  CHECK(w.origin_in.empty());
  CHECK(w.session->guest_close() == CloseHow::graceful);
}

}  // namespace
}  // namespace airlock::mitm::testing
