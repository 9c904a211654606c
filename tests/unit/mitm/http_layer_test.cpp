// The HTTP layer over plain HTTP/1.1 (tls = false): lazy dialling, re-dialling, ordering,
// refusals, failures, and one request event per request whatever happens.
#include <doctest/doctest.h>

#include "proxy/http/request_parser.hpp"
#include "tests/unit/mitm/harness.hpp"

namespace airlock::mitm::testing {
namespace {

std::size_t count(const std::string& haystack, std::string_view needle) {
  std::size_t n = 0;
  for (auto at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

struct Plain : World {
  Plain() { tls = false; }
};

TEST_CASE("http: a GET goes through and is recorded once") {
  Plain w;
  w.open("other.test", 80);
  w.guest_send("GET /a?q=1 HTTP/1.1\r\nHost: other.test\r\n\r\n");
  CHECK(w.opens == 1);
  CHECK(w.origin_in == "GET /a?q=1 HTTP/1.1\r\nHost: other.test\r\n\r\n");
  w.origin_send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  CHECK(w.guest_in == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  auto r = w.requests();
  REQUIRE(r.size() == 1);
  CHECK(r[0].method == "GET");
  CHECK(r[0].url == "http://other.test/a?q=[REDACTED]");
  CHECK(r[0].status_code == 200);
  CHECK(r[0].response_bytes == 2);
  CHECK_FALSE(r[0].blocked);
  CHECK(r[0].http_version == "HTTP/1.1");
}

TEST_CASE("http: an origin that closed an idle connection is dialled again for the next request") {
  Plain w;
  w.open("other.test", 80);
  w.guest_send("GET /1 HTTP/1.1\r\nHost: other.test\r\n\r\n");
  w.origin_send("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na");
  w.origin_eof();  // the origin's keep-alive timeout
  CHECK(w.opens == 1);
  CHECK(w.upstream_closed);
  CHECK_FALSE(w.guest_closed);
  w.guest_send("GET /2 HTTP/1.1\r\nHost: other.test\r\n\r\n");
  CHECK(w.opens == 2);
  CHECK(w.origin_in == "GET /2 HTTP/1.1\r\nHost: other.test\r\n\r\n");
  w.origin_send("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb");
  CHECK(w.guest_in.ends_with("b"));
  CHECK(w.requests().size() == 2);
}

TEST_CASE("http: a keep-alive race on an idempotent request is retried once") {
  Plain w;
  w.open("other.test", 80);
  w.guest_send("GET /1 HTTP/1.1\r\nHost: other.test\r\n\r\n");
  w.origin_send("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na");
  w.guest_send("GET /2 HTTP/1.1\r\nHost: other.test\r\n\r\n");
  CHECK(w.origin_in.ends_with("GET /2 HTTP/1.1\r\nHost: other.test\r\n\r\n"));
  w.origin_eof();  // closed as the request went out
  CHECK(w.opens == 2);
  CHECK(w.origin_in == "GET /2 HTTP/1.1\r\nHost: other.test\r\n\r\n");
  w.origin_send("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb");
  auto r = w.requests();
  REQUIRE(r.size() == 2);
  CHECK(r[1].status_code == 200);
  CHECK(r[1].error.empty());
}

TEST_CASE("http: no answer before the origin closes is a 502 with its record") {
  Plain w;
  w.open("other.test", 80);
  w.guest_send("POST /x HTTP/1.1\r\nHost: other.test\r\nContent-Length: 3\r\n\r\nabc");
  w.origin_eof();
  CHECK(w.guest_in.starts_with("HTTP/1.1 502 Bad Gateway\r\n"));
  CHECK(w.guest_in.find("\"reason\":\"upstream_failed\"") != std::string::npos);
  auto r = w.requests();
  REQUIRE(r.size() == 1);
  CHECK(r[0].error == "upstream_failed");
  CHECK(r[0].status_code == 502);
  CHECK_FALSE(r[0].blocked);
}

TEST_CASE("http: the origin closing mid-response resets the guest, never a second status line") {
  Plain w;
  w.open("other.test", 80);
  w.guest_send("GET / HTTP/1.1\r\nHost: other.test\r\n\r\n");
  w.origin_send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf");
  w.origin_eof();
  CHECK(count(w.guest_in, "HTTP/1.1") == 1);
  CHECK(w.guest_reset);
  auto r = w.requests();
  REQUIRE(r.size() == 1);
  CHECK(r[0].error == "upstream_failed");
}

TEST_CASE("http: a failed dial answers every waiting request") {
  Plain w;
  w.connect_failure = ConnectFailed{"connect_failed", "Connection refused", ""};
  w.open("other.test", 80);
  w.guest_send("GET / HTTP/1.1\r\nHost: other.test\r\n\r\n");
  CHECK(w.guest_in.starts_with("HTTP/1.1 502 Bad Gateway\r\n"));
  CHECK(w.guest_in.find("connect_failed") != std::string::npos);
  REQUIRE(w.requests().size() == 1);
  CHECK(w.requests()[0].error == "connect_failed");

  Plain p;
  p.connect_failure = ConnectFailed{"private_address", "", "block_private_ips: loopback"};
  p.open("other.test", 80);
  p.guest_send("GET / HTTP/1.1\r\nHost: other.test\r\n\r\n");
  CHECK(p.guest_in.starts_with("HTTP/1.1 403 Forbidden\r\n"));
  REQUIRE(p.requests().size() == 1);
  CHECK(p.requests()[0].blocked);
  CHECK(p.requests()[0].block_reason == "private_address");
  CHECK(p.requests()[0].rule == "block_private_ips: loopback");
}

TEST_CASE("http: pipelined requests are answered in order") {
  Plain w;
  w.open("other.test", 80);
  w.guest_send("GET /1 HTTP/1.1\r\nHost: other.test\r\n\r\nGET /2 HTTP/1.1\r\nHost: other.test\r\n\r\n");
  CHECK(count(w.origin_in, "GET /") == 2);
  w.origin_send("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2");
  CHECK(w.guest_in.find("\r\n\r\n1") < w.guest_in.find("\r\n\r\n2"));
  CHECK(w.requests().size() == 2);
}

TEST_CASE("http: a refused request after an allowed one waits its turn, then the connection ends") {
  Plain w;
  w.open("other.test", 80);
  w.guest_send("GET /1 HTTP/1.1\r\nHost: other.test\r\n\r\n"
               "GET /2 HTTP/1.1\r\nHost: api.test\r\n\r\n"
               "GET /3 HTTP/1.1\r\nHost: other.test\r\n\r\n");
  CHECK(count(w.origin_in, "GET /") == 1);  // /2 refused, /3 never judged
  CHECK(w.guest_in.empty());                // the 403 waits for /1's answer
  w.origin_send("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1");
  CHECK(w.guest_in.starts_with("HTTP/1.1 200 OK"));
  CHECK(w.guest_in.find("HTTP/1.1 403 Forbidden") != std::string::npos);
  CHECK(w.guest_closed);
  auto r = w.requests();
  REQUIRE(r.size() == 2);
  // Recorded when decided: the refusal first, then /1 when its answer ended.
  CHECK(r[0].block_reason == "host_mismatch");
  CHECK(r[1].url == "http://other.test/1");
  CHECK(r[1].status_code == 200);
}

TEST_CASE("http: Expect 100-continue is answered by the proxy and never forwarded") {
  Plain w;
  w.open("other.test", 80);
  w.guest_send("PUT /f HTTP/1.1\r\nHost: other.test\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  CHECK(w.guest_in == "HTTP/1.1 100 Continue\r\n\r\n");
  CHECK(w.origin_in.find("Expect") == std::string::npos);
  w.guest_send("data");
  CHECK(w.origin_in.ends_with("\r\n\r\ndata"));
}

TEST_CASE("http: a secret placeholder over plain HTTP is a leak even to its host") {
  Plain w;
  w.open("api.test", 80);
  w.guest_send("GET / HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer " + w.placeholder() + "\r\n\r\n");
  CHECK(w.opens == 0);  // nothing dialled for a refused request
  CHECK(w.guest_in.starts_with("HTTP/1.1 403 Forbidden"));
  REQUIRE(w.requests().size() == 1);
  CHECK(w.requests()[0].block_reason == "secret_leak");
}

TEST_CASE("http: a placeholder in a body bound elsewhere stops the request upstream") {
  Plain w;
  w.open("other.test", 80);
  const std::string body = "xx" + w.placeholder() + "yy";
  w.guest_send("POST /u HTTP/1.1\r\nHost: other.test\r\nContent-Length: " + std::to_string(body.size()) +
               "\r\n\r\n" + body.substr(0, 10));
  w.guest_send(body.substr(10));
  CHECK(w.origin_in.find(w.placeholder()) == std::string::npos);
  CHECK(w.guest_in.find("HTTP/1.1 403") != std::string::npos);
  CHECK(w.guest_in.find("secret_leak") != std::string::npos);
  REQUIRE(w.requests().size() == 1);
  CHECK(w.requests()[0].block_reason == "secret_leak");
}

TEST_CASE("http: a malformed request gets a 400 and the flow closes") {
  Plain w;
  w.open("other.test", 80);
  w.guest_send("GET / HTTP/1.1\r\nHost: other.test\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n");
  CHECK(w.guest_in.starts_with("HTTP/1.1 400 Bad Request"));
  CHECK(w.guest_closed);
  REQUIRE(w.requests().size() == 1);
  CHECK(w.requests()[0].block_reason == "bad_request");
}

TEST_CASE("http: requests cut short by the guest's reset are recorded") {
  Plain w;
  w.open("other.test", 80);
  w.guest_send("GET /slow HTTP/1.1\r\nHost: other.test\r\n\r\n");
  w.feed(ClosedIn{Side::guest, true, "reset"});
  REQUIRE(w.requests().size() == 1);
  CHECK(w.requests()[0].error == "guest_closed");
  CHECK(w.upstream_reset);
}

TEST_CASE("http: an upgrade becomes a tunnel after 101, and a 101 nobody asked for never does") {
  Plain w;
  w.open("other.test", 80);
  w.guest_send("GET /ws HTTP/1.1\r\nHost: other.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
  CHECK(w.origin_in.find("Transfer-Encoding") == std::string::npos);
  w.origin_send("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi");
  CHECK(w.guest_in.ends_with("\r\n\r\n\x81\x02hi"));
  w.origin_in.clear();
  w.guest_send("\x81\x82raw");
  CHECK(w.origin_in == "\x81\x82raw");

  Plain u;
  u.open("other.test", 80);
  u.guest_send("GET / HTTP/1.1\r\nHost: other.test\r\n\r\n");
  u.origin_send("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n");
  REQUIRE(u.requests().size() == 1);
  CHECK(u.requests()[0].error == "upstream_failed");
  CHECK(u.upstream_reset);
}

// Requests as parsed back: heads and de-chunked bodies, so framing chosen by arrival
// (chunk sizes) does not count.
std::string canonical(const std::string& wire) {
  http::RequestParser parser;
  std::vector<http::RequestEvent> events;
  std::string out;
  std::size_t at = 0;
  const auto data = bytes(wire);
  while (at < data.size()) {
    events.clear();
    const std::size_t n = parser.feed(std::span(data).subspan(at), events);
    at += n;
    for (auto& e : events) {
      if (auto* h = std::get_if<http::RequestHeadEvent>(&e)) out += "[" + h->head.method + " " + h->head.target + "]";
      if (auto* b = std::get_if<http::BodyEvent>(&e)) out += text(b->data);
    }
    if (n == 0 && events.empty()) break;
  }
  return out;
}

TEST_CASE("http: the same requests reach the origin whatever the chunking") {
  const std::string stream =
      "POST /a HTTP/1.1\r\nHost: other.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
      "GET /b HTTP/1.1\r\nHost: other.test\r\n\r\n";
  std::string reference;
  for (std::size_t piece : {std::size_t{1}, std::size_t{3}, std::size_t{7}, stream.size()}) {
    Plain w;
    w.open("other.test", 80);
    for (std::size_t at = 0; at < stream.size(); at += piece) w.guest_send(stream.substr(at, piece));
    if (reference.empty()) reference = canonical(w.origin_in);
    CHECK(canonical(w.origin_in) == reference);
  }
  CHECK(reference == "[POST /a]hello[GET /b]");
}

TEST_CASE("http: an origin that answers before the body is all sent gets no more of it, and no other request") {
  Plain w;
  w.open("other.test", 80);
  w.guest_send("POST /up HTTP/1.1\r\nHost: other.test\r\nContent-Length: 10\r\n\r\nabc");
  REQUIRE(w.opens == 1);
  w.origin_send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  CHECK(w.guest_in.ends_with("ok"));
  const std::string sent = w.origin_in;
  w.guest_send("defghij");  // the rest of the body: read from the guest, sent nowhere
  CHECK(w.origin_in == sent);
  // The origin still expects 7 bytes: the connection is never pooled or reused.
  if (auto d = w.root->deadline()) {
    w.now = *d;
    w.feed(TimerIn{});
  }
  CHECK_FALSE(w.pooled);
  w.guest_send("GET /next HTTP/1.1\r\nHost: other.test\r\n\r\n");
  CHECK(w.opens == 2);
  CHECK(w.origin_in == "GET /next HTTP/1.1\r\nHost: other.test\r\n\r\n");
  w.origin_send("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nn");
  CHECK(w.guest_in.ends_with("n"));
  REQUIRE(w.requests().size() == 2);
  CHECK(w.requests()[0].detail.find("before the request body was complete") != std::string::npos);
}

}  // namespace
}  // namespace airlock::mitm::testing

namespace airlock::mitm::testing {
namespace {

TEST_CASE("http: an idle upstream connection goes back to the pool between requests") {
  Plain w;
  w.open("other.test", 80);
  w.guest_send("GET /1 HTTP/1.1\r\nHost: other.test\r\n\r\n");
  w.origin_send("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na");
  CHECK_FALSE(w.pooled);  // kept a moment: the guest may go on at once
  REQUIRE(w.root->deadline().has_value());
  w.now = *w.root->deadline();
  w.feed(TimerIn{});
  CHECK(w.pooled);  // idle long enough: back to the pool
  w.guest_send("GET /2 HTTP/1.1\r\nHost: other.test\r\n\r\n");
  CHECK(w.opens == 1);
  CHECK(w.reuses == 1);
  w.origin_send("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb");
  CHECK(w.guest_in.ends_with("b"));
  // A connection that must close is never pooled.
  w.guest_send("GET /3 HTTP/1.1\r\nHost: other.test\r\n\r\n");
  w.origin_send("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nc");
  CHECK_FALSE(w.pooled);
}

TEST_CASE("http: an origin that answers before the body is all sent gets no more of it, and no other request") {
  Plain w;
  w.open("other.test", 80);
  w.guest_send("POST /up HTTP/1.1\r\nHost: other.test\r\nContent-Length: 10\r\n\r\nabc");
  REQUIRE(w.opens == 1);
  w.origin_send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  CHECK(w.guest_in.ends_with("ok"));
  const std::string sent = w.origin_in;
  w.guest_send("defghij");  // the rest of the body: read from the guest, sent nowhere
  CHECK(w.origin_in == sent);
  // The origin still expects 7 bytes: the connection is never pooled or reused.
  if (auto d = w.root->deadline()) {
    w.now = *d;
    w.feed(TimerIn{});
  }
  CHECK_FALSE(w.pooled);
  w.guest_send("GET /next HTTP/1.1\r\nHost: other.test\r\n\r\n");
  CHECK(w.opens == 2);
  CHECK(w.origin_in == "GET /next HTTP/1.1\r\nHost: other.test\r\n\r\n");
  w.origin_send("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nn");
  CHECK(w.guest_in.ends_with("n"));
  REQUIRE(w.requests().size() == 2);
  CHECK(w.requests()[0].detail.find("before the request body was complete") != std::string::npos);
}

}  // namespace
}  // namespace airlock::mitm::testing
