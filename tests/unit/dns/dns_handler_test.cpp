// DnsHandler: what each kind of query gets, checked on the response bytes and events.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "policy/evaluator.hpp"
#include "proxy/dns/dns_handler.hpp"
#include "tests/unit/dns/query_builder.hpp"

using namespace airlock::dns;
using namespace airlock::dns::test;
using namespace std::chrono_literals;
namespace policy = airlock::policy;

namespace {

const Clock::time_point t0{};

std::vector<policy::HostPattern> patterns(const std::vector<std::string>& texts) {
  std::vector<policy::HostPattern> out;
  for (const auto& text : texts) {
    auto parsed = policy::HostPattern::parse(text);
    REQUIRE_MESSAGE(parsed.ok(), text);
    out.push_back(*parsed);
  }
  return out;
}

policy::NetworkPolicy network(const std::vector<std::string>& allowed,
                              const std::vector<std::string>& blocked) {
  policy::NetworkPolicy net;
  net.allowed_hosts = patterns(allowed);
  net.blocked_hosts = patterns(blocked);
  return net;
}

struct Gateway {
  policy::NetworkPolicy net;
  policy::Evaluator evaluator;
  SyntheticPool pool;
  DnsHandler handler;

  explicit Gateway(const std::vector<std::string>& allowed,
                   const std::vector<std::string>& blocked = {}, DnsHandler::Config config = {},
                   SyntheticPool::Config pool_config = {})
      : net(network(allowed, blocked)),
        evaluator(net),
        pool(pool_config),
        handler(config, evaluator, net, pool) {}

  // The response bytes; fails the test when the query is dropped.
  Bytes ask(const QueryBuilder& query, Clock::time_point now = t0) {
    auto response = handler.answer(query.build(), now);
    REQUIRE(response);
    return *response;
  }
  Bytes ask(const std::string& name, std::uint16_t type = rrtype::a) {
    QueryBuilder b;
    b.name = name;
    b.type = type;
    return ask(b);
  }
  DnsEvent last_event() {
    REQUIRE_FALSE(handler.events().empty());
    return handler.events().back();
  }
};

Message parsed(const Bytes& response) {
  auto message = Message::parse(response);
  REQUIRE(message);
  REQUIRE(message->header.qr());
  return *message;
}

int rcode_of(const Bytes& response) { return parsed(response).header.rcode(); }

std::string a_answer(const Bytes& response) {
  Message m = parsed(response);
  REQUIRE(m.answers.size() == 1);
  REQUIRE(m.answers[0].rdata.size() == 4);
  const auto& r = m.answers[0].rdata;
  return std::to_string(r[0]) + "." + std::to_string(r[1]) + "." + std::to_string(r[2]) + "." +
         std::to_string(r[3]);
}

}  // namespace

TEST_CASE("an allowed name gets one A record from the synthetic pool") {
  Gateway gw({"example.com"});
  Bytes out = gw.ask("example.com");
  REQUIRE(out.size() == 12 + 17 + 16);
  CHECK(out[0] == 0xBE);
  CHECK(out[1] == 0xEF);
  CHECK(out[2] == 0x85);  // QR, QUERY, AA, RD echoed
  CHECK(out[3] == 0x80);  // RA, NOERROR
  Message m = parsed(out);
  CHECK(m.header.qdcount == 1);
  REQUIRE(m.answers.size() == 1);
  CHECK(m.answers[0].type == rrtype::a);
  CHECK(m.answers[0].klass == kClassIn);
  CHECK(m.answers[0].ttl == 30);
  CHECK(m.answers[0].name.text() == "example.com");
  std::string address = a_answer(out);
  CHECK(policy::Cidr::parse("198.18.0.0/15")->contains(*policy::IpAddress::parse(address)));
  CHECK(gw.pool.name_for(*policy::IpAddress::parse(address)) == "example.com");

  DnsEvent event = gw.last_event();
  CHECK(event.name == "example.com");
  CHECK(event.qtype == "A");
  CHECK(event.answer == address);
  CHECK_FALSE(event.blocked);
  CHECK(event.reason == "allowed");
  CHECK(event.rcode == "NOERROR");
  CHECK(event.rule == "allowed_hosts: example.com");
  CHECK(gw.handler.counters().answered_a == 1);
}

TEST_CASE("RD clear is echoed clear, and the TTL follows the config") {
  DnsHandler::Config config;
  config.answer_ttl = 5s;
  Gateway gw({"example.com"}, {}, config);
  QueryBuilder b;
  b.flags = 0;
  Bytes out = gw.ask(b);
  CHECK(out[2] == 0x84);
  CHECK(parsed(out).answers[0].ttl == 5);
}

TEST_CASE("names are matched case-insensitively and keep their address: the question's case is echoed") {
  Gateway gw({"example.com"});
  std::string first = a_answer(gw.ask("example.com"));
  Bytes upper = gw.ask("EXAMPLE.Com");
  CHECK(a_answer(upper) == first);
  CHECK(parsed(upper).questions[0].name.text() == "EXAMPLE.Com");
  CHECK(gw.last_event().name == "example.com");
  CHECK(a_answer(gw.ask("example.com.")) == first);  // wire names are absolute anyway
  CHECK(gw.pool.size() == 1);
}

TEST_CASE("AAAA and other types for an allowed name get NOERROR with no data") {
  Gateway gw({"example.com"});
  for (std::uint16_t type : {rrtype::aaaa, rrtype::mx, rrtype::txt, rrtype::https, rrtype::svcb,
                             rrtype::ns, rrtype::cname, rrtype::soa, rrtype::any, std::uint16_t{999}}) {
    CAPTURE(type);
    Bytes out = gw.ask("example.com", type);
    Message m = parsed(out);
    CHECK(m.header.rcode() == rcode::noerror);
    CHECK(m.answers.empty());
    CHECK(m.questions[0].type == type);
    DnsEvent event = gw.last_event();
    CHECK_FALSE(event.blocked);
    CHECK(event.answer.empty());
    CHECK(event.reason == "allowed");
    CHECK(event.qtype == rrtype_name(type));
  }
  CHECK(gw.last_event().qtype == "TYPE999");
  CHECK(gw.pool.size() == 0);  // no address handed out for no-data answers
  CHECK(gw.handler.counters().nodata == 10);
}

TEST_CASE("a name the policy does not allow is REFUSED and never gets an address") {
  Gateway gw({"example.com"});
  Bytes out = gw.ask("other.com");
  CHECK(out[0] == 0xBE);
  CHECK(out[1] == 0xEF);
  Message m = parsed(out);
  CHECK(m.header.rcode() == rcode::refused);
  CHECK(m.answers.empty());
  CHECK(m.questions.size() == 1);
  DnsEvent event = gw.last_event();
  CHECK(event.blocked);
  CHECK(event.reason == "host_not_allowed");
  CHECK(event.rcode == "REFUSED");
  CHECK(event.name == "other.com");
  CHECK(gw.pool.size() == 0);
  CHECK(rcode_of(gw.ask("other.com", rrtype::aaaa)) == rcode::refused);
  CHECK(gw.handler.counters().refused_policy == 2);
}

TEST_CASE("refusals can be NXDOMAIN instead") {
  DnsHandler::Config config;
  config.refuse_with = DnsHandler::RefuseWith::nxdomain;
  Gateway gw({"example.com"}, {}, config);
  CHECK(rcode_of(gw.ask("other.com")) == rcode::nxdomain);
  CHECK(gw.last_event().rcode == "NXDOMAIN");
  // Structural refusals stay REFUSED.
  CHECK(rcode_of(gw.ask("1.2.3.4")) == rcode::refused);
}

TEST_CASE("wildcard patterns cover names strictly below the suffix") {
  Gateway gw({"*.example.org"});
  CHECK(rcode_of(gw.ask("a.example.org")) == rcode::noerror);
  CHECK(rcode_of(gw.ask("deep.a.example.org")) == rcode::noerror);
  CHECK(rcode_of(gw.ask("example.org")) == rcode::refused);
  CHECK(rcode_of(gw.ask("badexample.org")) == rcode::refused);
}

TEST_CASE("a port-specific pattern allows the name") {
  Gateway gw({"pypi.org:443", "files.example.net:8443"});
  CHECK(rcode_of(gw.ask("pypi.org")) == rcode::noerror);
  CHECK(gw.last_event().rule == "allowed_hosts: pypi.org:443");
  CHECK(rcode_of(gw.ask("files.example.net")) == rcode::noerror);
  CHECK(rcode_of(gw.ask("example.net")) == rcode::refused);
}

TEST_CASE("blocked_hosts win over allowed_hosts") {
  Gateway gw({"*.example.com", "example.net:443", "example.org"},
             {"bad.example.com", "example.net", "example.org:22"});
  CHECK(rcode_of(gw.ask("good.example.com")) == rcode::noerror);
  CHECK(rcode_of(gw.ask("bad.example.com")) == rcode::refused);
  CHECK(gw.last_event().reason == "blocked_host");
  CHECK(gw.last_event().rule == "blocked_hosts: bad.example.com");
  CHECK(rcode_of(gw.ask("example.net")) == rcode::refused);
  CHECK(gw.last_event().reason == "blocked_host");
  // Blocked on port 22 only: still reachable on other ports, so it resolves.
  CHECK(rcode_of(gw.ask("example.org")) == rcode::noerror);
}

TEST_CASE("the name policy picks a port no blocked pattern names") {
  policy::NetworkPolicy net = network({"example.org"}, {"example.org:443", "example.org:444"});
  policy::Evaluator evaluator(net);
  NamePolicy names(evaluator, net);
  CHECK(names.judge("example.org").allowed);
  CHECK_FALSE(names.judge("example.com").allowed);
}

TEST_CASE("the allow-everything pattern still refuses IP literals in any spelling") {
  Gateway gw({"*"});
  for (const char* literal : {"1.2.3.4", "127.1", "0x7f.1", "2130706433", "0177.0.0.1", "198.18.0.1"}) {
    CAPTURE(literal);
    CHECK(rcode_of(gw.ask(literal)) == rcode::refused);
    CHECK(gw.last_event().reason == "ip_literal");
  }
  QueryBuilder b;
  b.raw_name = Bytes{5, '[', ':', ':', '1', ']', 0};
  CHECK(rcode_of(gw.ask(b)) == rcode::refused);
  CHECK(gw.last_event().reason == "ip_literal");
  CHECK(gw.handler.counters().refused_ip_literal == 7);
  CHECK(rcode_of(gw.ask("anything.example")) == rcode::noerror);
}

TEST_CASE("PTR queries are refused, even for synthetic addresses") {
  Gateway gw({"*"});
  std::string address = a_answer(gw.ask("example.com"));
  CHECK(rcode_of(gw.ask("1.0.18.198.in-addr.arpa", rrtype::ptr)) == rcode::refused);
  CHECK(gw.last_event().reason == "ptr_query");
  CHECK(gw.handler.counters().refused_ptr == 1);
}

TEST_CASE("names that are not host names are refused") {
  Gateway gw({"*"});
  auto refused_invalid = [&](Bytes raw) {
    QueryBuilder b;
    b.raw_name = std::move(raw);
    CHECK(rcode_of(gw.ask(b)) == rcode::refused);
    CHECK(gw.last_event().reason == "invalid_name");
  };
  refused_invalid(Bytes{0});                                   // the root
  refused_invalid(Bytes{3, 'a', '.', 'b', 3, 'c', 'o', 'm', 0});  // dot inside a label
  refused_invalid(Bytes{3, 'a', ' ', 'b', 3, 'c', 'o', 'm', 0});
  refused_invalid(Bytes{3, 'a', 0xC3, 0xA9, 3, 'c', 'o', 'm', 0});
  refused_invalid(Bytes{3, 'a', '@', 'b', 3, 'c', 'o', 'm', 0});
  CHECK(gw.last_event().name == "a@b.com");
  CHECK(gw.pool.size() == 0);
}

TEST_CASE("class other than IN and zone transfers are refused") {
  Gateway gw({"*"});
  QueryBuilder chaos;
  chaos.name = "version.bind";
  chaos.type = rrtype::txt;
  chaos.klass = 3;
  CHECK(rcode_of(gw.ask(chaos)) == rcode::refused);
  CHECK(gw.last_event().reason == "unsupported_class");
  CHECK(rcode_of(gw.ask("example.com", rrtype::axfr)) == rcode::refused);
  CHECK(gw.last_event().reason == "unsupported_type");
}

TEST_CASE("opcodes other than QUERY get NOTIMP with the id echoed") {
  Gateway gw({"*"});
  QueryBuilder b;
  b.flags = 0x2900;  // opcode 5 (UPDATE), RD
  Bytes out = gw.ask(b);
  Message m = parsed(out);
  CHECK(m.header.id == 0xBEEF);
  CHECK(m.header.opcode() == 5);
  CHECK(m.header.rcode() == rcode::notimp);
  CHECK(m.header.qdcount == 0);
  CHECK(gw.last_event().reason == "unsupported_opcode");
}

TEST_CASE("malformed queries get FORMERR with the id echoed") {
  Gateway gw({"*"});
  QueryBuilder b;
  b.id = 0x0102;
  SUBCASE("no question") { b.qdcount = 0; }
  SUBCASE("two questions") { b.qdcount = 2; }
  SUBCASE("answer records in a query") { b.ancount = 1; }
  SUBCASE("compression pointer loop") { b.raw_name = Bytes{1, 'a', 0xC0, 12}; }
  SUBCASE("pointer to itself") { b.raw_name = Bytes{0xC0, 12}; }
  Bytes out = gw.ask(b);
  Message m = parsed(out);
  CHECK(m.header.id == 0x0102);
  CHECK(m.header.rcode() == rcode::formerr);
  CHECK(m.header.qdcount == 0);
  CHECK(gw.last_event().reason == "malformed");
  CHECK(gw.handler.counters().formerr == 1);
}

TEST_CASE("every truncation of a query is dropped (no header) or FORMERR") {
  Gateway gw({"*"});
  QueryBuilder b;
  b.name = "www.example.com";
  b.edns_size = 1232;
  Bytes full = b.build();
  for (std::size_t n = 0; n < full.size(); ++n) {
    CAPTURE(n);
    Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    auto out = gw.handler.answer(cut, t0);
    if (n < 12) {
      CHECK_FALSE(out);
    } else {
      REQUIRE(out);
      CHECK(rcode_of(*out) == rcode::formerr);
    }
  }
  CHECK(gw.handler.counters().dropped_short == 12);
  CHECK(rcode_of(*gw.handler.answer(full, t0)) == rcode::noerror);
}

TEST_CASE("responses sent to the gateway are dropped, not answered") {
  Gateway gw({"*"});
  QueryBuilder b;
  b.flags = 0x8180;
  CHECK_FALSE(gw.handler.answer(b.build(), t0));
  CHECK(gw.handler.counters().dropped_response == 1);
  CHECK(gw.handler.events().empty());
}

TEST_CASE("EDNS queries get an OPT record back: unknown EDNS versions get BADVERS") {
  Gateway gw({"example.com"});
  QueryBuilder b;
  b.edns_size = 4096;
  Message m = parsed(gw.ask(b));
  CHECK(m.header.rcode() == rcode::noerror);
  CHECK(m.answers.size() == 1);
  REQUIRE(m.additional.size() == 1);
  CHECK(m.additional[0].type == rrtype::opt);
  CHECK(m.additional[0].klass == kEdnsUdpSize);
  CHECK(m.additional[0].ttl == 0);

  b.edns_version = 1;
  m = parsed(gw.ask(b));
  CHECK(m.header.rcode() == 0);
  REQUIRE(m.additional.size() == 1);
  CHECK((m.additional[0].ttl >> 24) == 1);  // BADVERS = 16: upper bits in the OPT
  CHECK(m.answers.empty());
  CHECK(gw.last_event().rcode == "BADVERS");
}

TEST_CASE("responses stay within 512 bytes for the longest name") {
  Gateway gw({"*"});
  std::string label(63, 'x');
  QueryBuilder b;
  b.name = label + "." + label + "." + label + "." + std::string(61, 'y');
  auto out = gw.handler.answer(b.build(), t0);
  REQUIRE(out);
  CHECK(out->size() <= 512);
  CHECK(parsed(*out).answers.size() == 1);
}

TEST_CASE("an exhausted pool answers SERVFAIL and counts it") {
  SyntheticPool::Config pool_config;
  pool_config.network = *policy::Cidr::parse("10.1.2.0/30");
  Gateway gw({"*"}, {}, {}, pool_config);
  CHECK(rcode_of(gw.ask("a.example")) == rcode::noerror);
  CHECK(rcode_of(gw.ask("b.example")) == rcode::noerror);
  Message m = parsed(gw.ask("c.example"));
  CHECK(m.header.rcode() == rcode::servfail);
  CHECK(m.answers.empty());
  DnsEvent event = gw.last_event();
  CHECK(event.reason == "pool_exhausted");
  CHECK(event.blocked);
  CHECK(gw.handler.counters().servfail_exhausted == 1);
  CHECK(gw.pool.counters().exhausted == 1);
  // Known names still resolve.
  CHECK(rcode_of(gw.ask("a.example")) == rcode::noerror);
  // Once the entries idle past min_idle, a new name takes the oldest.
  QueryBuilder later;
  later.name = "c.example";
  CHECK(rcode_of(gw.ask(later, t0 + 301s)) == rcode::noerror);
  CHECK_FALSE(gw.pool.address_for("b.example"));
}

TEST_CASE("the event queue is bounded: the oldest events go first") {
  DnsHandler::Config config;
  config.max_events = 2;
  Gateway gw({"*"}, {}, config);
  gw.ask("a.example");
  gw.ask("b.example");
  gw.ask("c.example");
  CHECK(gw.handler.events().size() == 2);
  CHECK(gw.handler.events().front().name == "b.example");
  CHECK(gw.handler.counters().events_dropped == 1);
}

TEST_CASE("TCP responses are not held to the UDP limit") {
  Gateway gw({"*"});
  auto out = gw.handler.answer(QueryBuilder{}.build(), t0, Transport::tcp);
  REQUIRE(out);
  CHECK(parsed(*out).answers.size() == 1);
}
