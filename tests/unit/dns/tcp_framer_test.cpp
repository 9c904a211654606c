// TcpDnsFramer: length-prefixed messages under any chunking, caps, encoding.
#include <doctest/doctest.h>

#include <random>

#include "proxy/dns/dns_handler.hpp"
#include "proxy/dns/tcp_framer.hpp"
#include "tests/unit/dns/query_builder.hpp"

using namespace airlock::dns;
using namespace airlock::dns::test;

namespace {

Bytes framed(const Bytes& message) {
  auto out = TcpDnsFramer::encode(message);
  REQUIRE(out);
  return *out;
}

}  // namespace

TEST_CASE("encode prefixes the length in network order") {
  Bytes message(300, 0xAB);
  Bytes out = framed(message);
  REQUIRE(out.size() == 302);
  CHECK(out[0] == 0x01);
  CHECK(out[1] == 0x2C);
  CHECK(TcpDnsFramer::encode(Bytes(65535, 0)).has_value());
  CHECK_FALSE(TcpDnsFramer::encode(Bytes(65536, 0)).has_value());
}

TEST_CASE("messages come out whole under random chunking") {
  std::vector<Bytes> messages;
  Bytes stream;
  for (int i = 0; i < 50; ++i) {
    QueryBuilder b;
    b.id = static_cast<std::uint16_t>(i);
    b.name = "host" + std::to_string(i) + ".example.com";
    if (i % 3 == 0) b.edns_size = 1232;
    messages.push_back(b.build());
    Bytes f = framed(messages.back());
    stream.insert(stream.end(), f.begin(), f.end());
  }
  stream.insert(stream.end(), {0, 0});  // an empty message: skipped
  Bytes big(3000, 0x5A);
  messages.push_back(big);
  Bytes f = framed(big);
  stream.insert(stream.end(), f.begin(), f.end());

  std::mt19937 rng(1234);
  for (int round = 0; round < 200; ++round) {
    TcpDnsFramer framer;
    std::vector<Bytes> out;
    std::size_t pos = 0;
    std::uniform_int_distribution<std::size_t> chunk(1, round % 2 == 0 ? 3 : 200);
    while (pos < stream.size()) {
      std::size_t n = std::min(chunk(rng), stream.size() - pos);
      REQUIRE(framer.feed(std::span(stream).subspan(pos, n)));
      pos += n;
      while (auto message = framer.next()) out.push_back(*message);
    }
    REQUIRE(out == messages);
    CHECK(framer.pending_bytes() == 0);
    CHECK(framer.counters().empty_messages == 1);
    CHECK(framer.counters().messages == messages.size());
  }
}

TEST_CASE("a partial message waits for the rest") {
  TcpDnsFramer framer;
  Bytes f = framed(QueryBuilder{}.build());
  REQUIRE(framer.feed(std::span(f).first(1)));
  CHECK_FALSE(framer.next());
  REQUIRE(framer.feed(std::span(f).subspan(1, f.size() - 2)));
  CHECK_FALSE(framer.next());
  REQUIRE(framer.feed(std::span(f).last(1)));
  CHECK(framer.next());
  CHECK_FALSE(framer.next());
}

TEST_CASE("too many pending bytes fail the framer for good") {
  TcpDnsFramer framer;
  Bytes chunk(65537, 0xFF);  // a 65535-byte message, never taken out
  REQUIRE(framer.feed(chunk));
  REQUIRE(framer.feed(chunk));
  CHECK_FALSE(framer.feed(Bytes{1}));
  CHECK(framer.failed());
  CHECK(framer.counters().overflows == 1);
  CHECK_FALSE(framer.next());
  CHECK_FALSE(framer.feed(Bytes{0, 0}));
}

TEST_CASE("taking messages out frees room") {
  TcpDnsFramer framer;
  Bytes f = framed(Bytes(65535, 0x11));
  for (int i = 0; i < 10; ++i) {
    REQUIRE(framer.feed(f));
    REQUIRE(framer.next());
  }
  CHECK_FALSE(framer.failed());
}

TEST_CASE("framer and handler together answer a pipelined TCP stream") {
  airlock::policy::NetworkPolicy net;
  net.allowed_hosts.push_back(*airlock::policy::HostPattern::parse("*.example.com"));
  airlock::policy::Evaluator evaluator(net);
  SyntheticPool pool(SyntheticPool::Config{});
  DnsHandler handler({}, evaluator, net, pool);

  Bytes stream;
  for (const char* name : {"a.example.com", "b.example.com", "evil.test"}) {
    QueryBuilder b;
    b.name = name;
    Bytes f = framed(b.build());
    stream.insert(stream.end(), f.begin(), f.end());
  }
  TcpDnsFramer in;
  REQUIRE(in.feed(stream));
  TcpDnsFramer out;
  int responses = 0;
  while (auto query = in.next()) {
    auto response = handler.answer(*query, Clock::time_point{}, Transport::tcp);
    REQUIRE(response);
    REQUIRE(out.feed(framed(*response)));
    ++responses;
  }
  CHECK(responses == 3);
  std::vector<int> rcodes;
  while (auto response = out.next()) rcodes.push_back(Message::parse(*response)->header.rcode());
  CHECK(rcodes == std::vector<int>{0, 0, 5});
}
