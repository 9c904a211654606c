// HTTP/2 through the layers: a guest speaking h2 (our client codec, over real TLS with
// ALPN) to an origin speaking HTTP/1.1 or h2; per-stream judgement, scrubbing and records;
// trailers (gRPC); bad frames end the connection with GOAWAY.
#include <doctest/doctest.h>

#include "proxy/http2/h2_codec.hpp"
#include "tests/unit/mitm/harness.hpp"

namespace airlock::mitm::testing {
namespace {

// The guest's HTTP/2 client over the world's TLS.
struct H2Guest {
  World& w;
  http2::H2UpstreamCodec codec;
  std::size_t read = 0;
  std::vector<http::UpstreamEvent> events;

  explicit H2Guest(World& world) : w(world) {}

  http::StreamId send(const std::string& method, const std::string& path, std::vector<http::Header> headers,
                      const std::string& body = "", bool end = true) {
    http::RequestHead head;
    head.method = method;
    head.target = path;
    head.headers = std::move(headers);
    const bool has_body = !body.empty() || !end;
    const auto id = codec.request(head, {has_body, body.empty() ? std::nullopt : std::optional<std::uint64_t>(body.size())},
                                  !has_body);
    if (!body.empty()) codec.request_data(id, bytes(body));
    if (has_body && end) codec.request_end(id);
    pump();
    return id;
  }
  void pump() {
    for (int i = 0; i < 50; ++i) {
      bool progress = false;
      if (auto out = codec.take_output(); !out.empty()) {
        w.guest_send(text(out));
        progress = true;
      }
      if (read < w.guest_in.size()) {
        codec.feed(bytes(std::string_view(w.guest_in).substr(read)), events);
        read = w.guest_in.size();
        progress = true;
      }
      for (auto& e : events)
        if (auto* b = std::get_if<http::ResponseBody>(&e)) codec.consumed(b->stream, b->data.size());
      if (!progress) break;
    }
  }
  int status(http::StreamId id) const {
    for (const auto& e : events)
      if (auto* s = std::get_if<http::ResponseStart>(&e); s && s->stream == id && !s->informational) return s->head.status;
    return 0;
  }
  std::string body(http::StreamId id) const {
    std::string out;
    for (const auto& e : events)
      if (auto* b = std::get_if<http::ResponseBody>(&e); b && b->stream == id) out += text(b->data);
    return out;
  }
  const http::ResponseEnd* end(http::StreamId id) const {
    for (const auto& e : events)
      if (auto* x = std::get_if<http::ResponseEnd>(&e); x && x->stream == id) return x;
    return nullptr;
  }
};

// The origin's HTTP/2 server over the world's TLS.
struct H2Origin {
  World& w;
  http2::H2GuestCodec codec;
  std::size_t read = 0;
  std::vector<http::GuestEvent> events;
  explicit H2Origin(World& world) : w(world) {}
  void pump() {
    for (int i = 0; i < 50; ++i) {
      bool progress = false;
      if (read < w.origin_in.size()) {
        codec.feed(bytes(std::string_view(w.origin_in).substr(read)), events);
        read = w.origin_in.size();
        progress = true;
      }
      for (auto& e : events)
        if (auto* b = std::get_if<http::RequestBody>(&e)) codec.consumed(b->stream, b->data.size());
      if (auto out = codec.take_output(); !out.empty()) {
        w.origin_send(text(out));
        progress = true;
      }
      if (!progress) break;
    }
  }
  const http::RequestStart* request(std::size_t n = 0) const {
    for (const auto& e : events)
      if (auto* r = std::get_if<http::RequestStart>(&e); r && n-- == 0) return r;
    return nullptr;
  }
  std::string body(http::StreamId id) const {
    std::string out;
    for (const auto& e : events)
      if (auto* b = std::get_if<http::RequestBody>(&e); b && b->stream == id) out += text(b->data);
    return out;
  }
  void respond(http::StreamId id, int status, std::vector<http::Header> headers, const std::string& body,
               http::Trailers trailers = {}) {
    http::ResponseHead head;
    head.status = status;
    head.headers = std::move(headers);
    codec.respond(id, head, {true, std::nullopt}, false);
    codec.respond_data(id, bytes(body));
    codec.respond_end(id, trailers);
    pump();
  }
};

struct H2World : World {
  H2World() { guest_alpn = {"h2", "http/1.1"}; }
};

TEST_CASE("h2: an HTTP/2 guest reaches an HTTP/1.1 origin") {
  H2World w;
  w.open("api.test", 443);
  H2Guest g(w);
  g.pump();
  const auto id = g.send("GET", "/x?k=1", {{"host", "api.test"}, {"authorization", "Bearer " + w.placeholder()}});
  REQUIRE(w.connected);
  CAPTURE(w.origin_in);
  CHECK(w.origin_in.starts_with("GET /x?k=1 HTTP/1.1\r\n"));
  CHECK(w.origin_in.find("host: api.test") != std::string::npos);
  CHECK(w.origin_in.find(std::string(kReal)) != std::string::npos);
  w.origin_send("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello");
  g.pump();
  CHECK(g.status(id) == 200);
  CHECK(g.body(id) == "hello");
  CHECK(g.end(id) != nullptr);
  auto r = w.requests();
  REQUIRE(r.size() == 1);
  CHECK(r[0].http_version == "HTTP/2");
  CHECK(r[0].status_code == 200);
  CHECK(r[0].url == "https://api.test/x?k=[REDACTED]");
}

TEST_CASE("h2: end to end HTTP/2 with trailers, as gRPC uses them") {
  H2World w;
  w.origin_h2 = true;
  w.open("api.test", 443);
  H2Guest g(w);
  g.pump();
  const std::string message("\0\0\0\0\x05hello", 10);
  const auto id = g.send("POST", "/pkg.Echo/Say",
                         {{"host", "api.test"}, {"content-type", "application/grpc"}, {"te", "trailers"}}, message);
  H2Origin o(w);
  o.pump();
  const auto* req = o.request();
  REQUIRE(req != nullptr);
  CHECK(req->head.method == "POST");
  CHECK(req->head.target == "/pkg.Echo/Say");
  CHECK(http::find_header(req->head.headers, "te") != nullptr);
  CHECK(o.body(req->stream) == message);
  o.respond(req->stream, 200, {{"content-type", "application/grpc"}}, message,
            {{"grpc-status", "0"}, {"grpc-message", "fine " + std::string(kReal)}});
  g.pump();
  CHECK(g.status(id) == 200);
  CHECK(g.body(id) == message);
  const auto* end = g.end(id);
  REQUIRE(end != nullptr);
  const auto* grpc_status = http::find_header(end->trailers, "grpc-status");
  REQUIRE(grpc_status != nullptr);
  CHECK(grpc_status->value == "0");
  // Trailers are scrubbed like headers.
  const auto* message_trailer = http::find_header(end->trailers, "grpc-message");
  REQUIRE(message_trailer != nullptr);
  CHECK(message_trailer->value == "fine " + w.placeholder());
  REQUIRE(w.requests().size() == 1);
  CHECK(w.requests()[0].status_code == 200);
}

TEST_CASE("h2: each stream is judged on its own; a refused one doesn't end the others") {
  H2World w;
  w.open("api.test", 443);
  H2Guest g(w);
  g.pump();
  const auto bad = g.send("GET", "/", {{"host", "other.test"}});
  const auto good = g.send("GET", "/ok", {{"host", "api.test"}});
  CHECK(g.status(bad) == 403);
  CHECK(g.body(bad).find("sni_host_mismatch") != std::string::npos);
  w.origin_send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  g.pump();
  CHECK(g.status(good) == 200);
  CHECK(g.body(good) == "ok");
  CHECK_FALSE(w.guest_closed);
  CHECK(w.requests().size() == 2);
}

TEST_CASE("h2: a value the origin echoes across DATA frames is scrubbed") {
  H2World w;
  w.origin_h2 = true;
  w.open("api.test", 443);
  H2Guest g(w);
  g.pump();
  const auto id = g.send("GET", "/echo", {{"host", "api.test"}});
  H2Origin o(w);
  o.pump();
  const auto* req = o.request();
  REQUIRE(req != nullptr);
  http::ResponseHead head;
  head.status = 200;
  o.codec.respond(req->stream, head, {true, std::nullopt}, false);
  const std::string v(kReal);
  o.codec.respond_data(req->stream, bytes("<" + v.substr(0, 11)));
  o.pump();
  o.codec.respond_data(req->stream, bytes(v.substr(11) + ">"));
  o.codec.respond_end(req->stream, {});
  o.pump();
  g.pump();
  CHECK(g.body(id) == "<" + w.placeholder() + ">");
  CHECK_FALSE(w.guest_saw_value());
}

TEST_CASE("h2: bad frames end the connection with GOAWAY and a record") {
  H2World w;
  w.open("api.test", 443);
  H2Guest g(w);
  g.pump();
  const auto id = g.send("GET", "/slow", {{"host", "api.test"}});
  (void)id;
  // A DATA frame on stream 0 is a connection error.
  const std::string frame("\x00\x00\x01\x00\x00\x00\x00\x00\x00x", 10);
  w.guest_send(frame);
  g.pump();
  bool goaway = false;
  for (const auto& e : g.events)
    if (auto* f = std::get_if<http::ConnectionFailed>(&e)) goaway = goaway || !f->reason.empty();
  CHECK((goaway || g.codec.exhausted()));
  CAPTURE(w.notes.size());
  CAPTURE(w.events.size());
  CAPTURE(w.connected);
  CAPTURE(w.guest_closed);
  REQUIRE(w.requests().size() == 1);
  CHECK(w.requests()[0].error == "guest_closed");
  bool noted = false;
  for (const auto& n : w.notes) noted = noted || n.detail.find("h2_protocol_error") != std::string::npos;
  CHECK(noted);
}

TEST_CASE("h2: an HTTP/1.1 guest never gets h2 from the origin") {
  World w;
  w.origin_h2 = true;
  w.open("api.test", 443);
  w.guest_send("GET / HTTP/1.1\r\nHost: api.test\r\n\r\n");
  CHECK(w.origin_in.starts_with("GET / HTTP/1.1"));  // the MITM offered only http/1.1
}

}  // namespace
}  // namespace airlock::mitm::testing
