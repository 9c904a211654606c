// Secrets in responses: a host that receives a secret's real value may echo it; the guest
// must get the placeholder instead, however the response is framed or encoded, and a
// response that can't be made safe ends with a 502 or a reset - never a second status line.
#include <doctest/doctest.h>

#include <brotli/encode.h>
#include <zlib.h>
#include <zstd.h>

#include "tests/unit/mitm/harness.hpp"

namespace airlock::mitm::testing {
namespace {

std::string gzip(const std::string& in, int window_bits = 15 + 16) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, in.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}
std::string zlib(const std::string& in) { return gzip(in, 15); }
std::string raw_deflate(const std::string& in) { return gzip(in, -15); }

std::string brotli(const std::string& in) {
  std::size_t size = BrotliEncoderMaxCompressedSize(in.size()) + 64;
  std::string out(size, '\0');
  BrotliEncoderCompress(5, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_GENERIC, in.size(),
                        reinterpret_cast<const std::uint8_t*>(in.data()), &size,
                        reinterpret_cast<std::uint8_t*>(out.data()));
  out.resize(size);
  return out;
}

std::string zstd(const std::string& in) {
  std::string out(ZSTD_compressBound(in.size()), '\0');
  out.resize(ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3));
  return out;
}

std::string chunked(const std::vector<std::string>& pieces) {
  std::string out;
  for (const auto& p : pieces) {
    char size[16];
    std::snprintf(size, sizeof size, "%zx", p.size());
    out += std::string(size) + "\r\n" + p + "\r\n";
  }
  return out + "0\r\n\r\n";
}

std::size_t count(const std::string& haystack, std::string_view needle) {
  std::size_t n = 0;
  for (auto at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

// A GET to api.test over TLS whose origin answers with `response`.
struct Echo : World {
  explicit Echo(const std::string& response, const std::string& request_extra = "") {
    open("api.test", 443);
    guest_send("GET /echo HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer " + placeholder() + "\r\n" +
               request_extra + "\r\n");
    REQUIRE(connected);
    CHECK(origin_in.find(std::string(kReal)) != std::string::npos);  // swapped on the way out
    origin_send(response);
  }
};

TEST_CASE("scrub: an echoed value in headers and an identity body comes back as the placeholder") {
  const std::string body = "{\"key\":\"" + std::string(kReal) + "\",\"small\":\"" + std::string(kShortReal) + "\"}";
  Echo w("HTTP/1.1 200 OK\r\nX-Echo: " + std::string(kReal) + "\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body);
  CHECK_FALSE(w.guest_saw_value());
  CHECK(w.guest_in.find("X-Echo: " + w.placeholder()) != std::string::npos);
  CHECK(w.guest_in.find(w.placeholder("SMALL")) != std::string::npos);
  // Held whole, so its new length is exact.
  const std::string expected_body = "{\"key\":\"" + w.placeholder() + "\",\"small\":\"" + w.placeholder("SMALL") + "\"}";
  CHECK(w.guest_in.find("Content-Length: " + std::to_string(expected_body.size())) != std::string::npos);
  CHECK(w.guest_in.ends_with(expected_body));
  auto r = w.requests();
  REQUIRE(r.size() == 1);
  CHECK(r[0].status_code == 200);
  bool scrubbed = false;
  for (const auto& s : r[0].secrets) scrubbed = scrubbed || s.location == "response";
  CHECK(scrubbed);
}

TEST_CASE("scrub: a value split across chunks is found after de-chunking") {
  const std::string v(kReal);
  for (std::size_t cut = 1; cut < v.size(); cut += 7) {
    Echo w("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
           chunked({"a" + v.substr(0, cut), v.substr(cut) + "z"}));
    CHECK_FALSE(w.guest_saw_value());
    CHECK(response_bodies(w.guest_in) == "a" + w.placeholder() + "z");
    CHECK(count(w.guest_in, "HTTP/1.1 ") == 1);
  }
}

TEST_CASE("scrub: content-encoded bodies are decoded, scrubbed and delivered decoded") {
  const std::string plain = "before " + std::string(kReal) + " after " + std::string(kShortReal) + " end";
  struct Case {
    const char* coding;
    std::string body;
  };
  const std::vector<Case> cases = {
      {"gzip", gzip(plain)},      {"x-gzip", gzip(plain)},  {"deflate", zlib(plain)},
      {"deflate", raw_deflate(plain)}, {"br", brotli(plain)}, {"zstd", zstd(plain)},
      {"gzip, br", brotli(gzip(plain))}, {"identity", plain}};
  for (const auto& c : cases) {
    const std::string coding_name = c.coding;
    CAPTURE(coding_name);
    for (bool as_chunks : {false, true}) {
      const std::string framing = as_chunks ? "Transfer-Encoding: chunked\r\n\r\n" + chunked({c.body.substr(0, 5), c.body.substr(5)})
                                            : "Content-Length: " + std::to_string(c.body.size()) + "\r\n\r\n" + c.body;
      Echo w("HTTP/1.1 200 OK\r\nContent-Encoding: " + std::string(c.coding) + "\r\n" + framing);
      CHECK_FALSE(w.guest_saw_value());
      CHECK(response_bodies(w.guest_in) == "before " + w.placeholder() + " after " + w.placeholder("SMALL") + " end");
      CHECK(w.guest_in.find("Content-Encoding") == std::string::npos);
      REQUIRE(w.requests().size() == 1);
      CHECK(w.requests()[0].status_code == 200);
    }
  }
}

TEST_CASE("scrub: a value in the reason phrase or a header name is replaced") {
  Echo w("HTTP/1.1 200 " + std::string(kReal) + "\r\nX-" + std::string(kShortReal) + ": 1\r\nContent-Length: 0\r\n\r\n");
  CHECK_FALSE(w.guest_saw_value());
  CHECK(w.guest_in.starts_with("HTTP/1.1 200 " + w.placeholder() + "\r\n"));
}

TEST_CASE("scrub: an encoded form that can't be replaced cuts the response, once") {
  // base64 of the value: no placeholder can stand in for it.
  const std::string b64 = "c2stbGl2ZS0wMTIzNDU2Nzg5YWJjZGVmZ2hpamtsbW5vcHFyc3R1dg==";
  SUBCASE("before the head went out: 502") {
    Echo w("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(b64.size()) + "\r\n\r\n" + b64);
    CHECK(w.guest_in.find("c2stbGl2ZS0w") == std::string::npos);
    CHECK(w.guest_in.starts_with("HTTP/1.1 502 Bad Gateway\r\n"));
    CHECK(count(w.guest_in, "HTTP/1.1 ") == 1);
    REQUIRE(w.requests().size() == 1);
    CHECK(w.requests()[0].block_reason == "secret_echo");
  }
  SUBCASE("after the head went out: the connection is reset") {
    Echo w("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked({"hello ", b64}));
    CHECK(w.guest_in.find("c2stbGl2ZS0w") == std::string::npos);
    CHECK(count(w.guest_in, "HTTP/1.1 ") == 1);
    CHECK(w.guest_reset);
    REQUIRE(w.requests().size() == 1);
    CHECK(w.requests()[0].block_reason == "secret_echo");
  }
}

TEST_CASE("scrub: a coding the proxy can't decode, or a corrupt one, is never passed on") {
  SUBCASE("unknown coding") {
    Echo w("HTTP/1.1 200 OK\r\nContent-Encoding: compress\r\nContent-Length: 3\r\n\r\nabc");
    CHECK(w.guest_in.starts_with("HTTP/1.1 502 Bad Gateway\r\n"));
    REQUIRE(w.requests().size() == 1);
    CHECK(w.requests()[0].block_reason == "unscannable_response");
  }
  SUBCASE("corrupt gzip after the head") {
    Echo w("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n" +
           chunked({gzip("fine").substr(0, 10), "\xff\xff\xff\xff garbage"}));
    CHECK(count(w.guest_in, "HTTP/1.1 ") == 1);
    CHECK(w.guest_reset);
    CHECK(w.requests()[0].block_reason == "unscannable_response");
  }
  SUBCASE("truncated gzip") {
    const std::string z = gzip(std::string(kReal) + " and more text here");
    Echo w("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: " + std::to_string(z.size() - 6) +
           "\r\n\r\n" + z.substr(0, z.size() - 6));
    CHECK_FALSE(w.guest_saw_value());
    CHECK(w.requests()[0].block_reason == "unscannable_response");
  }
}

TEST_CASE("scrub: a body that expands hugely is streamed, not held") {
  const std::string big(8u << 20, 'A');
  const std::string z = gzip(big + std::string(kReal));
  Echo w("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: " + std::to_string(z.size()) + "\r\n\r\n" + z);
  CHECK_FALSE(w.guest_saw_value());
  CHECK(w.guest_in.find("Transfer-Encoding: chunked") != std::string::npos);
  REQUIRE(w.requests().size() == 1);
  CHECK(w.requests()[0].response_bytes == big.size() + w.placeholder().size());
}

TEST_CASE("scrub: hosts no secret may reach pass responses through untouched") {
  World w;
  w.open("other.test", 443);
  w.guest_send("GET / HTTP/1.1\r\nHost: other.test\r\n\r\n");
  const std::string z = gzip("hello");
  w.origin_send("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: " + std::to_string(z.size()) + "\r\n\r\n" + z);
  CHECK(w.guest_in.ends_with(z));
  CHECK(w.guest_in.find("Content-Encoding: gzip") != std::string::npos);
}

TEST_CASE("scrub: a real value in a request to another host is a leak") {
  World w;
  w.open("other.test", 443);
  w.guest_send("GET / HTTP/1.1\r\nHost: other.test\r\nX-Stolen: " + std::string(kReal) + "\r\n\r\n");
  CHECK(w.opens == 0);
  CHECK(w.guest_in.starts_with("HTTP/1.1 403 Forbidden"));
  REQUIRE(w.requests().size() == 1);
  CHECK(w.requests()[0].block_reason == "secret_leak");
  CHECK(w.requests()[0].detail.find(std::string(kReal)) == std::string::npos);

  World b;
  b.open("other.test", 443);
  const std::string body = "data=" + std::string(kShortReal);
  b.guest_send("POST / HTTP/1.1\r\nHost: other.test\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  CHECK(b.origin_in.find(std::string(kShortReal)) == std::string::npos);
  REQUIRE(b.requests().size() == 1);
  CHECK(b.requests()[0].block_reason == "secret_leak");
}

TEST_CASE("tls: an SNI other than the flow's name gets the handshake, then nothing") {
  World w;
  w.open("api.test", 443, "other.test");
  CHECK(w.opens == 0);
  REQUIRE_FALSE(w.notes.empty());
  bool refused = false;
  for (const auto& n : w.notes) refused = refused || n.block_reason == "sni_host_mismatch";
  CHECK(refused);
  CHECK(w.guest_closed);
}

TEST_CASE("tls: an upstream certificate that doesn't verify is a 502") {
  World w([](policy::Policy& p) { p.network.upstream_ca_file.reset(); });
  w.open("api.test", 443);
  w.guest_send("GET / HTTP/1.1\r\nHost: api.test\r\n\r\n");
  CHECK(w.guest_in.starts_with("HTTP/1.1 502 Bad Gateway"));
  REQUIRE(w.requests().size() == 1);
  CHECK(w.requests()[0].error == "upstream_tls_failed");
  CHECK(w.requests()[0].detail.find("certificate verify failed") != std::string::npos);
}

TEST_CASE("tls: a large upload with a secret to its host arrives whole and swapped") {
  World w;
  w.open("api.test", 443);
  std::string body(300 * 1024, 'x');
  body += w.placeholder();
  w.guest_send("POST /up HTTP/1.1\r\nHost: api.test\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n");
  for (std::size_t at = 0; at < body.size(); at += 65536) w.guest_send(body.substr(at, 65536));
  const std::string expected = std::string(300 * 1024, 'x') + std::string(kReal);
  CHECK(w.origin_in.find("Content-Length: " + std::to_string(expected.size())) != std::string::npos);
  CHECK(w.origin_in.ends_with(expected));
}

}  // namespace
}  // namespace airlock::mitm::testing

namespace airlock::mitm::testing {
namespace {

std::string frame(std::uint8_t first, const std::string& payload) {
  std::string out(1, static_cast<char>(first));
  if (payload.size() < 126) {
    out.push_back(static_cast<char>(payload.size()));
  } else {
    out.push_back(126);
    out.push_back(static_cast<char>(payload.size() >> 8));
    out.push_back(static_cast<char>(payload.size() & 0xff));
  }
  return out + payload;
}

// The payloads of the text/binary messages in a server-to-client frame stream, joined.
std::string messages(const std::string& wire) {
  std::string out;
  std::size_t at = 0;
  while (at + 2 <= wire.size()) {
    const auto b0 = static_cast<std::uint8_t>(wire[at]);
    std::size_t len = static_cast<std::uint8_t>(wire[at + 1]) & 0x7f;
    std::size_t head = 2;
    if (len == 126) {
      len = (static_cast<std::size_t>(static_cast<std::uint8_t>(wire[at + 2])) << 8) | static_cast<std::uint8_t>(wire[at + 3]);
      head = 4;
    }
    if ((b0 & 0x8) == 0) out += wire.substr(at + head, len);
    if ((b0 & 0x8) == 0 && (b0 & 0x80)) out += "|";
    at += head + len;
  }
  return out;
}

TEST_CASE("scrub: WebSocket frames from a secret's host are scrubbed across fragments") {
  World w;
  w.open("api.test", 443);
  w.guest_send("GET /ws HTTP/1.1\r\nHost: api.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
               "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n");
  CHECK(w.origin_in.find("permessage-deflate") == std::string::npos);
  w.origin_send("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
  const std::string v(kReal);
  const std::size_t before = w.guest_in.size();
  // A message in two fragments with the value cut between them, then a ping echoing it.
  w.origin_send(frame(0x01, "key=" + v.substr(0, 9)) + frame(0x80, v.substr(9) + ";") + frame(0x89, v));
  const std::string got = w.guest_in.substr(before);
  CHECK(got.find(v) == std::string::npos);
  CHECK(messages(got) == "key=" + w.placeholder() + ";|");
  CHECK(got.find(w.placeholder()) != std::string::npos);

  const std::string b64 = "c2stbGl2ZS0wMTIzNDU2Nzg5YWJjZGVmZ2hpamtsbW5vcHFyc3R1dg==";
  w.origin_send(frame(0x81, b64));
  CHECK(w.guest_in.find("c2stbGl2ZS0w") == std::string::npos);
  CHECK(w.guest_reset);
  bool noted = false;
  for (const auto& n : w.notes) noted = noted || n.block_reason == "secret_echo";
  CHECK(noted);
}

}  // namespace
}  // namespace airlock::mitm::testing
