// parse_client_hello: real OpenSSL hellos whole, byte by byte and re-framed; hand-built
// hellos for the refusals; truncation, garbage and the size cap.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "hello_source.hpp"
#include "proxy/tls/client_hello.hpp"

using namespace airlock::tls;
using namespace airlock::tls::test;
using Bytes = std::vector<std::uint8_t>;

namespace {

void put16(Bytes& out, std::size_t value) {
  out.push_back(static_cast<std::uint8_t>(value >> 8));
  out.push_back(static_cast<std::uint8_t>(value));
}

Bytes extension(std::uint16_t type, const Bytes& data) {
  Bytes out;
  put16(out, type);
  put16(out, data.size());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

Bytes server_name(const std::string& name) {
  Bytes list;
  list.push_back(0);  // host_name
  put16(list, name.size());
  list.insert(list.end(), name.begin(), name.end());
  Bytes data;
  put16(data, list.size());
  data.insert(data.end(), list.begin(), list.end());
  return extension(0, data);
}

// A minimal ClientHello handshake message carrying `extensions` (a raw block).
Bytes hello_message(const Bytes& extensions, bool with_extensions = true) {
  Bytes body;
  put16(body, 0x0303);
  body.insert(body.end(), 32, 0xAB);  // random
  body.push_back(0);                  // session id
  put16(body, 2);
  put16(body, 0x1301);                // one cipher suite
  body.push_back(1);
  body.push_back(0);                  // null compression
  if (with_extensions) {
    put16(body, extensions.size());
    body.insert(body.end(), extensions.begin(), extensions.end());
  }
  Bytes message = {0x01, static_cast<std::uint8_t>(body.size() >> 16), static_cast<std::uint8_t>(body.size() >> 8),
                   static_cast<std::uint8_t>(body.size())};
  message.insert(message.end(), body.begin(), body.end());
  return message;
}

HelloStatus parse(const Bytes& bytes) {
  ClientHello hello;
  return parse_client_hello(bytes, hello);
}

}  // namespace

TEST_CASE("a real OpenSSL hello yields SNI, ALPN and TLS 1.3 support") {
  Bytes flight = openssl_client_hello({"api.example.com", {"h2", "http/1.1"}});
  ClientHello hello;
  REQUIRE(parse_client_hello(flight, hello) == HelloStatus::complete);
  CHECK(hello.sni_present);
  CHECK(hello.sni == "api.example.com");
  CHECK(hello.alpn == std::vector<std::string>{"h2", "http/1.1"});
  CHECK(hello.record_version == 0x0301);
  CHECK(hello.legacy_version == 0x0303);
  CHECK(hello.supports_tls13);
}

TEST_CASE("a TLS 1.2-only hello without SNI or ALPN") {
  Bytes flight = openssl_client_hello({"", {}, TLS1_2_VERSION});
  ClientHello hello;
  REQUIRE(parse_client_hello(flight, hello) == HelloStatus::complete);
  CHECK_FALSE(hello.sni_present);
  CHECK(hello.sni.empty());
  CHECK(hello.alpn.empty());
  CHECK_FALSE(hello.supports_tls13);
}

TEST_CASE("fed byte by byte, the hello needs more until its last byte") {
  Bytes flight = openssl_client_hello({"example.com", {"http/1.1"}});
  ClientHello hello;
  for (std::size_t length = 0; length < flight.size(); ++length) {
    CAPTURE(length);
    REQUIRE(parse_client_hello(std::span(flight).first(length), hello) == HelloStatus::need_more);
  }
  REQUIRE(parse_client_hello(flight, hello) == HelloStatus::complete);
  CHECK(hello.sni == "example.com");
}

TEST_CASE("a hello split across records is joined") {
  Bytes message = handshake_of(openssl_client_hello({"split.example", {"http/1.1"}}));
  SUBCASE("two records") {
    Bytes flight = frame(message, message.size() / 2 + 1);
    ClientHello hello;
    REQUIRE(parse_client_hello(flight, hello) == HelloStatus::complete);
    CHECK(hello.sni == "split.example");
    CHECK(hello.alpn == std::vector<std::string>{"http/1.1"});
    CHECK(parse(Bytes(flight.begin(), flight.end() - 1)) == HelloStatus::need_more);
  }
  SUBCASE("records of 3 bytes, the header split too") {
    Bytes flight = frame(message, 3);
    ClientHello hello;
    REQUIRE(parse_client_hello(flight, hello) == HelloStatus::complete);
    CHECK(hello.sni == "split.example");
  }
  SUBCASE("bytes after the hello are ignored") {
    Bytes flight = frame(message, 100);
    Bytes extra = {0x14, 0x03, 0x03, 0x00, 0x01, 0x01, 0x17, 0x03};
    flight.insert(flight.end(), extra.begin(), extra.end());
    CHECK(parse(flight) == HelloStatus::complete);
  }
}

TEST_CASE("not TLS") {
  CHECK(parse(Bytes{'G', 'E', 'T', ' '}) == HelloStatus::not_tls);
  CHECK(parse(Bytes{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28}) == HelloStatus::not_tls);  // an alert
  CHECK(parse(Bytes{0x16, 0x02}) == HelloStatus::not_tls);
  CHECK(parse(Bytes{0x16}) == HelloStatus::need_more);
  CHECK(parse(Bytes{}) == HelloStatus::need_more);
}

TEST_CASE("malformed records and messages") {
  Bytes message = hello_message(server_name("example.com"));  // 67 bytes
  SUBCASE("an empty record") {
    Bytes flight = {0x16, 0x03, 0x01, 0x00, 0x00};
    CHECK(parse(flight) == HelloStatus::malformed);
  }
  SUBCASE("a record over 2^14 bytes") {
    CHECK(parse(Bytes{0x16, 0x03, 0x01, 0x40, 0x01, 0x01}) == HelloStatus::malformed);
  }
  SUBCASE("another content type before the hello is complete") {
    Bytes flight = frame(message, 50);
    flight[55] = 0x17;
    CHECK(parse(flight) == HelloStatus::malformed);
    CHECK(parse(Bytes(flight.begin(), flight.begin() + 56)) == HelloStatus::malformed);
  }
  SUBCASE("a handshake message that is not a ClientHello") {
    Bytes other = message;
    other[0] = 0x02;
    CHECK(parse(frame(other, 16384)) == HelloStatus::malformed);
  }
  SUBCASE("a length one byte short or long") {
    Bytes shorter = message;
    shorter[3] = static_cast<std::uint8_t>(shorter[3] - 1);  // body shorter than its fields
    CHECK(parse(frame(shorter, 16384)) == HelloStatus::malformed);
    Bytes longer = message;
    longer.at(3) = static_cast<std::uint8_t>(longer.at(3) + 1);
    longer.push_back(0);
    CHECK(parse(frame(longer, 16384)) == HelloStatus::malformed);  // a trailing byte
  }
  SUBCASE("garbage after a valid header") {
    Bytes garbage = {0x01, 0x00, 0x00, 0x10};
    garbage.insert(garbage.end(), 16, 0xFF);
    CHECK(parse(frame(garbage, 16384)) == HelloStatus::malformed);
  }
  SUBCASE("truncated inside the body with a short declared length") {
    Bytes cut(message.begin(), message.begin() + 40);
    cut[1] = 0;
    cut[2] = 0;
    cut[3] = 36;
    CHECK(parse(frame(cut, 16384)) == HelloStatus::malformed);
  }
}

TEST_CASE("hand-built hellos: extensions") {
  SUBCASE("no extensions at all") {
    ClientHello hello;
    CHECK(parse_client_hello(frame(hello_message({}, false), 16384), hello) == HelloStatus::complete);
    CHECK_FALSE(hello.sni_present);
  }
  SUBCASE("an SNI of 253 bytes is accepted, 254 is not") {
    ClientHello hello;
    std::string name(253, 'a');
    CHECK(parse_client_hello(frame(hello_message(server_name(name)), 16384), hello) == HelloStatus::complete);
    CHECK(hello.sni == name);
    CHECK(parse(frame(hello_message(server_name(std::string(254, 'a'))), 16384)) == HelloStatus::malformed);
  }
  SUBCASE("SNI bytes must be printable ASCII") {
    CHECK(parse(frame(hello_message(server_name(std::string("a\0b.com", 7))), 16384)) == HelloStatus::malformed);
    CHECK(parse(frame(hello_message(server_name("a b.com")), 16384)) == HelloStatus::malformed);
    CHECK(parse(frame(hello_message(server_name("caf\xc3\xa9.com")), 16384)) == HelloStatus::malformed);
    CHECK(parse(frame(hello_message(server_name("")), 16384)) == HelloStatus::malformed);
  }
  SUBCASE("the SNI is kept as sent") {
    ClientHello hello;
    CHECK(parse_client_hello(frame(hello_message(server_name("Example.COM")), 16384), hello) ==
          HelloStatus::complete);
    CHECK(hello.sni == "Example.COM");
  }
  SUBCASE("a repeated extension") {
    Bytes twice = server_name("a.com");
    Bytes second = server_name("b.com");
    twice.insert(twice.end(), second.begin(), second.end());
    CHECK(parse(frame(hello_message(twice), 16384)) == HelloStatus::malformed);
  }
  SUBCASE("unknown extensions are skipped") {
    Bytes extensions = extension(0xFAFA, {});  // GREASE
    Bytes sni = server_name("grease.test");
    extensions.insert(extensions.end(), sni.begin(), sni.end());
    ClientHello hello;
    CHECK(parse_client_hello(frame(hello_message(extensions), 16384), hello) == HelloStatus::complete);
    CHECK(hello.sni == "grease.test");
  }
  SUBCASE("an empty ALPN protocol name") {
    CHECK(parse(frame(hello_message(extension(16, {0x00, 0x01, 0x00})), 16384)) == HelloStatus::malformed);
  }
  SUBCASE("an extension longer than the block") {
    Bytes bad = {0x00, 0x10, 0x00, 0x09, 0x00};
    CHECK(parse(frame(hello_message(bad), 16384)) == HelloStatus::malformed);
  }
}

TEST_CASE("the size cap") {
  SUBCASE("a declared hello larger than the cap is too large at once") {
    Bytes flight = {0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x00, 0x9C, 0x40};  // 40000 bytes
    CHECK(parse(flight) == HelloStatus::too_large);
  }
  SUBCASE("a hello that fits the cap is fine") {
    Bytes padding = extension(21, Bytes(30000, 0));  // padding extension
    Bytes flight = frame(hello_message(padding), 16384);
    REQUIRE(flight.size() <= kMaxClientHelloBytes);
    CHECK(parse(flight) == HelloStatus::complete);
  }
  SUBCASE("record headers count: tiny records that never end within the cap") {
    Bytes message = hello_message(extension(21, Bytes(10000, 0)));
    Bytes flight = frame(message, 1);
    REQUIRE(flight.size() > kMaxClientHelloBytes);
    CHECK(parse(Bytes(flight.begin(), flight.begin() + 1000)) == HelloStatus::need_more);
    CHECK(parse(Bytes(flight.begin(), flight.begin() + kMaxClientHelloBytes)) == HelloStatus::too_large);
    CHECK(parse(flight) == HelloStatus::too_large);
  }
}

TEST_CASE("statuses have stable names") {
  CHECK(std::string(to_string(HelloStatus::too_large)) == "too_large");
  CHECK(std::string(to_string(HelloStatus::not_tls)) == "not_tls");
}
