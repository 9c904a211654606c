// HttpPipeline under random chunking: what goes upstream and what the guest gets back
// must not depend on how the bytes were split.
#include <doctest/doctest.h>

#include <random>

#include "proxy/mitm/http_pipeline.hpp"
#include "tests/unit/mitm/harness.hpp"

namespace airlock::mitm::testing {
namespace {

struct Pipe {
  policy::NetworkPolicy network;
  std::unique_ptr<policy::Evaluator> evaluator;
  std::unique_ptr<policy::SecretStore> secrets;
  std::unique_ptr<RequestJudge> judge;
  std::unique_ptr<HttpPipeline> pipeline;

  Pipe() {
    network.allowed_hosts = {pattern("api.test")};
    policy::Secret secret;
    secret.name = "TOKEN";
    secret.value = policy::SecretValue("the-real-token");
    secret.placeholder = "PLACEHOLDER_0123456789abcdef";
    secret.hosts = {pattern("api.test")};
    network.secrets.push_back(secret);
    evaluator = std::make_unique<policy::Evaluator>(network);
    secrets = std::make_unique<policy::SecretStore>(network.secrets);
    judge = std::make_unique<RequestJudge>(*evaluator, *secrets, nullptr);
    FlowTarget flow;
    flow.host = host("api.test");
    flow.port = 443;
    flow.rule = "api.test";
    flow.tls = true;
    flow.sni = host("api.test");
    pipeline = std::make_unique<HttpPipeline>(*judge, *secrets, flow);
  }

  // Re-points the pipeline at a host no secret belongs to.
  void flow_other() {
    network.allowed_hosts.push_back(pattern("x.test"));
    evaluator = std::make_unique<policy::Evaluator>(network);
    judge = std::make_unique<RequestJudge>(*evaluator, *secrets, nullptr);
    FlowTarget flow;
    flow.host = host("x.test");
    flow.port = 443;
    flow.rule = "x.test";
    flow.tls = true;
    flow.sni = host("x.test");
    pipeline = std::make_unique<HttpPipeline>(*judge, *secrets, flow);
  }
};

std::vector<std::size_t> cuts(std::size_t size, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<std::size_t> out;
  std::size_t at = 0;
  while (at < size) {
    std::size_t n = 1 + rng() % 23;
    out.push_back(std::min(n, size - at));
    at += out.back();
  }
  return out;
}

// Feeds `guest` then `origin` in pieces; returns {upstream bytes, guest bytes, events}.
std::tuple<std::string, std::string, std::size_t> run(const std::string& guest, const std::string& origin,
                                                      unsigned seed) {
  Pipe p;
  auto now = Clock::now();
  Bytes pending;
  std::size_t at = 0;
  for (std::size_t n : cuts(guest.size(), seed)) {
    pending.insert(pending.end(), guest.begin() + static_cast<std::ptrdiff_t>(at),
                   guest.begin() + static_cast<std::ptrdiff_t>(at + n));
    at += n;
    const std::size_t taken = p.pipeline->on_guest(pending, now);
    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(taken));
  }
  at = 0;
  for (std::size_t n : cuts(origin.size(), seed + 1000)) {
    p.pipeline->on_upstream(std::span(reinterpret_cast<const std::uint8_t*>(origin.data()) + at, n), now);
    at += n;
  }
  return {text(p.pipeline->to_upstream()), text(p.pipeline->to_guest()), p.pipeline->events().size()};
}

TEST_CASE("pipeline: the same bytes go out whatever the chunking") {
  const std::string ph = "PLACEHOLDER_0123456789abcdef";
  const std::string guest =
      "GET /a?t=" + ph + " HTTP/1.1\r\nHost: api.test\r\nX-T: " + ph + "\r\n\r\n"
      "POST /b HTTP/1.1\r\nHost: api.test\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n1c\r\n" + ph + "\r\n0\r\n\r\n"
      "PUT /c HTTP/1.1\r\nHost: api.test\r\nContent-Length: 40\r\n\r\n" + ph + "-and-tail-xx";
  const std::string origin =
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
      "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
      "HTTP/1.1 204 No Content\r\n\r\n";
  auto [up0, down0, events0] = run(guest, origin, 0);
  CHECK(up0.find(ph) == std::string::npos);
  CHECK(up0.find("GET /a?t=the-real-token HTTP/1.1") != std::string::npos);
  CHECK(up0.find("the-real-token-and-tail-xx") != std::string::npos);
  CHECK(up0.find("Content-Length: 26") != std::string::npos);  // re-counted after the swap
  CHECK(down0 == origin);
  CHECK(events0 == 3);
  for (unsigned seed = 1; seed < 60; ++seed) {
    auto [up, down, events] = run(guest, origin, seed);
    // Chunk framing of the re-chunked body may differ; the decoded content may not.
    CHECK(up.find(ph) == std::string::npos);
    CHECK(up.find("GET /a?t=the-real-token HTTP/1.1") != std::string::npos);
    CHECK(up.find("the-real-token-and-tail-xx") != std::string::npos);
    CHECK(down == origin);
    CHECK(events == 3);
  }
}

TEST_CASE("pipeline: Expect 100-continue with a body to re-count is answered by the proxy") {
  Pipe p;
  auto now = Clock::now();
  const std::string head =
      "POST /u HTTP/1.1\r\nHost: api.test\r\nContent-Length: 33\r\nExpect: 100-continue\r\n\r\n";
  CHECK(p.pipeline->on_guest(bytes(head), now) == head.size());
  CHECK(text(p.pipeline->to_guest()) == "HTTP/1.1 100 Continue\r\n\r\n");
  CHECK(p.pipeline->to_upstream().empty());  // held until the body is in
  const std::string body = "t=PLACEHOLDER_0123456789abcdef&x";
  CHECK(p.pipeline->on_guest(bytes(body + "y"), now) == 33);
  const std::string up = text(p.pipeline->to_upstream());
  CHECK(up.find("Expect") == std::string::npos);
  CHECK(up.find("Content-Length: 19\r\n") != std::string::npos);
  CHECK(up.substr(up.size() - 19) == "t=the-real-token&xy");
  p.pipeline->on_upstream(bytes("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), now);
  REQUIRE(p.pipeline->events().size() == 1);
  CHECK(p.pipeline->events().front()["status_code"] == 200);
  CHECK(p.pipeline->events().front()["secrets"][0]["location"] == "body");
}

TEST_CASE("pipeline: Expect 100-continue is answered by the proxy, in order, never forwarded") {
  Pipe p;
  auto now = Clock::now();
  p.flow_other();
  p.pipeline->on_guest(bytes("GET /first HTTP/1.1\r\nHost: x.test\r\n\r\n"), now);
  const std::string head =
      "POST /u HTTP/1.1\r\nHost: x.test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
  CHECK(p.pipeline->on_guest(bytes(head), now) == head.size());
  CHECK(text(p.pipeline->to_upstream()).find("Expect") == std::string::npos);
  CHECK(p.pipeline->to_guest().empty());  // the first response comes first
  p.pipeline->on_upstream(bytes("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"), now);
  CHECK(text(p.pipeline->to_guest()) ==
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 100 Continue\r\n\r\n");
  p.pipeline->to_upstream().clear();
  CHECK(p.pipeline->on_guest(bytes("hello"), now) == 5);
  CHECK(text(p.pipeline->to_upstream()) == "hello");
}

TEST_CASE("pipeline: a large body to a secret's host streams with its length, scanned") {
  Pipe p;
  auto now = Clock::now();
  const std::size_t size = HttpPipeline::kMaxBufferedBody + 100;
  const std::string head = "PUT /big HTTP/1.1\r\nHost: api.test\r\nContent-Length: " +
                           std::to_string(size) + "\r\n\r\n";
  CHECK(p.pipeline->on_guest(bytes(head), now) == head.size());
  CHECK(text(p.pipeline->to_upstream()).find("Content-Length: " + std::to_string(size)) != std::string::npos);
  SUBCASE("plain data passes") {
    std::string data(size, 'a');
    CHECK(p.pipeline->on_guest(bytes(data), now) == size);
    CHECK(p.pipeline->to_upstream().size() == head.size() + size);
  }
  SUBCASE("a placeholder stops it") {
    std::string data(size, 'a');
    data.replace(500, 28, "PLACEHOLDER_0123456789abcdef");
    p.pipeline->on_guest(bytes(data), now);
    CHECK(text(p.pipeline->to_upstream()).find("PLACEHOLDER_") == std::string::npos);
    CHECK(p.pipeline->upstream_close() == CloseHow::reset);
    CHECK(text(p.pipeline->to_guest()).find("secret_body_too_large") != std::string::npos);
  }
}

TEST_CASE("pipeline: an upgrade becomes a tunnel after 101") {
  Pipe p;
  auto now = Clock::now();
  const std::string head =
      "GET /ws HTTP/1.1\r\nHost: api.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
  const std::string early = "\x81\x02hi";
  const std::string all = head + early;
  const std::size_t taken = p.pipeline->on_guest(bytes(all), now);
  CHECK(taken == head.size());
  CHECK(text(p.pipeline->to_upstream()).find("Upgrade: websocket") != std::string::npos);
  p.pipeline->to_upstream().clear();
  p.pipeline->on_upstream(bytes("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                "Connection: Upgrade\r\n\r\n\x81\x02yo"),
                          now);
  CHECK(p.pipeline->tunnel());
  CHECK(text(p.pipeline->to_guest()).find("\x81\x02yo") != std::string::npos);
  CHECK(p.pipeline->on_guest(bytes(early), now) == early.size());
  CHECK(text(p.pipeline->to_upstream()) == early);
}

TEST_CASE("pipeline: the upstream closing mid-response resets the guest") {
  Pipe p;
  auto now = Clock::now();
  const std::string req = "GET / HTTP/1.1\r\nHost: api.test\r\n\r\n";
  p.pipeline->on_guest(bytes(req), now);
  p.pipeline->on_upstream(bytes("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"), now);
  p.pipeline->on_upstream_eof(now);
  CHECK(p.pipeline->guest_close() == CloseHow::reset);
  REQUIRE(p.pipeline->events().size() == 1);
  CHECK(p.pipeline->events().front()["block_reason"] == "upstream_failed");
}

TEST_CASE("pipeline: no response before the upstream closes is a 502") {
  Pipe p;
  auto now = Clock::now();
  p.pipeline->on_guest(bytes("GET / HTTP/1.1\r\nHost: api.test\r\n\r\n"), now);
  p.pipeline->on_upstream_eof(now);
  CHECK(text(p.pipeline->to_guest()).rfind("HTTP/1.1 502", 0) == 0);
  CHECK(p.pipeline->guest_close() == CloseHow::graceful);
}

}  // namespace
}  // namespace airlock::mitm::testing

namespace airlock::mitm::testing {
namespace {

TEST_CASE("pipeline: a response before the request body ends is recorded once") {
  Pipe p;
  auto now = Clock::now();
  p.flow_other();
  p.pipeline->on_guest(bytes("POST /u HTTP/1.1\r\nHost: x.test\r\nContent-Length: 10\r\n\r\nabc"), now);
  p.pipeline->on_upstream(bytes("HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n"), now);
  REQUIRE(p.pipeline->events().size() == 1);
  CHECK(p.pipeline->events().front()["status_code"] == 413);
  p.pipeline->on_guest(bytes("defghij"), now);
  CHECK(p.pipeline->events().size() == 1);
  // The connection is not reused: a request after it never goes upstream.
  CHECK(p.pipeline->guest_close() == CloseHow::graceful);
  CHECK(p.pipeline->upstream_close() == CloseHow::graceful);
  p.pipeline->to_upstream().clear();
  p.pipeline->on_guest(bytes("GET /n HTTP/1.1\r\nHost: x.test\r\n\r\n"), now);
  CHECK(p.pipeline->to_upstream().empty());
  p.pipeline->on_upstream_eof(now);
  CHECK(p.pipeline->events().size() == 1);
}

}  // namespace
}  // namespace airlock::mitm::testing

namespace airlock::mitm::testing {
namespace {

TEST_CASE("pipeline: a 101 nobody asked for is never a tunnel") {
  Pipe p;
  auto now = Clock::now();
  p.pipeline->on_guest(bytes("GET / HTTP/1.1\r\nHost: api.test\r\n\r\n"), now);
  p.pipeline->on_upstream(bytes("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\nPRI"), now);
  CHECK_FALSE(p.pipeline->tunnel());
  CHECK(p.pipeline->guest_close() == CloseHow::reset);
  CHECK(p.pipeline->upstream_close() == CloseHow::reset);
}

TEST_CASE("pipeline: Upgrade headers without Connection: upgrade are dropped") {
  Pipe p;
  auto now = Clock::now();
  p.pipeline->on_guest(bytes("GET / HTTP/1.1\r\nHost: api.test\r\nUpgrade: h2c\r\n"
                             "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"),
                       now);
  const std::string up = text(p.pipeline->to_upstream());
  CHECK(up.find("GET / HTTP/1.1") == 0);
  CHECK(up.find("h2c") == std::string::npos);
  CHECK(up.find("HTTP2-Settings") == std::string::npos);
}

TEST_CASE("pipeline: after a refusal the guest's bytes are read and dropped") {
  Pipe p;
  auto now = Clock::now();
  const std::string refused = "GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n";
  CHECK(p.pipeline->on_guest(bytes(refused), now) == refused.size());
  CHECK(text(p.pipeline->to_guest()).find("403") != std::string::npos);
  const std::string more(100000, 'x');
  CHECK(p.pipeline->on_guest(bytes(more), now) == more.size());
  CHECK(p.pipeline->to_upstream().empty());
}

TEST_CASE("pipeline: requests cut short by the flow's end are recorded") {
  Pipe p;
  auto now = Clock::now();
  p.pipeline->on_guest(bytes("GET /a HTTP/1.1\r\nHost: api.test\r\n\r\nGET /b HTTP/1.1\r\nHost: api.test\r\n\r\n"), now);
  CHECK(p.pipeline->events().empty());
  p.pipeline->abort_all("flow_closed", now);
  REQUIRE(p.pipeline->events().size() == 2);
  CHECK(p.pipeline->events()[0]["block_reason"] == "flow_closed");
  CHECK(p.pipeline->events()[1]["url"] == "https://api.test/b");
}

}  // namespace
}  // namespace airlock::mitm::testing
