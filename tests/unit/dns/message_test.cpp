// DNS message reader (queries, names, compression, EDNS) and response writer.
#include <doctest/doctest.h>

#include "proxy/dns/message.hpp"
#include "tests/unit/dns/query_builder.hpp"

using namespace airlock::dns;
using namespace airlock::dns::test;

namespace {

std::optional<std::string> question_text(const Bytes& bytes) {
  auto query = Query::parse(bytes);
  if (!query) return std::nullopt;
  return query->question.name.text();
}

// Header, then `body` bytes as the question section (qdcount 1) and nothing else.
Bytes with_question_bytes(const Bytes& body) {
  Bytes out{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
  for (std::uint8_t byte : body) out.push_back(byte);  // (insert trips a GCC 12 false warning)
  return out;
}

}  // namespace

TEST_CASE("a plain A query reads back") {
  QueryBuilder b;
  b.name = "www.Example.com";
  auto query = Query::parse(b.build());
  REQUIRE(query);
  CHECK(query->header.id == 0xBEEF);
  CHECK(query->header.rd());
  CHECK_FALSE(query->header.qr());
  CHECK(query->question.type == rrtype::a);
  CHECK(query->question.klass == kClassIn);
  CHECK(query->question.name.text() == "www.Example.com");
  CHECK_FALSE(query->edns);
  CHECK(query->udp_limit() == 512);
}

TEST_CASE("EDNS OPT is read and its UDP size bounds the response") {
  QueryBuilder b;
  b.edns_size = 4096;
  auto query = Query::parse(b.build());
  REQUIRE(query);
  REQUIRE(query->edns);
  CHECK(query->edns->udp_size == 4096);
  CHECK(query->udp_limit() == 1232);
  b.edns_size = 100;  // below 512 means 512
  CHECK(Query::parse(b.build())->udp_limit() == 512);
  b.edns_size = 900;
  CHECK(Query::parse(b.build())->udp_limit() == 900);
}

TEST_CASE("queries that are not one plain question are malformed") {
  QueryBuilder b;
  SUBCASE("no question") { b.qdcount = 0; }
  SUBCASE("two questions claimed") { b.qdcount = 2; }
  SUBCASE("an answer count") { b.ancount = 1; }
  SUBCASE("an authority count") { b.nscount = 1; }
  SUBCASE("QR set") { b.flags = 0x8100; }
  SUBCASE("opcode STATUS") { b.flags = 0x1100; }
  SUBCASE("QTYPE OPT") { b.type = 41; }
  CHECK_FALSE(Query::parse(b.build()));
}

TEST_CASE("trailing bytes and non-OPT additional records are malformed") {
  Bytes bytes = QueryBuilder{}.build();
  bytes.push_back(0);
  CHECK_FALSE(Query::parse(bytes));

  // An additional A record instead of OPT.
  Bytes extra = QueryBuilder{}.build();
  extra[11] = 1;
  Bytes record{0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4};
  extra.insert(extra.end(), record.begin(), record.end());
  CHECK(Message::parse(extra));
  CHECK_FALSE(Query::parse(extra));

  // OPT with a non-root owner name.
  QueryBuilder b;
  b.edns_size = 1232;
  Bytes opt = b.build();
  std::size_t opt_at = opt.size() - 11;
  opt[opt_at] = 1;
  opt.insert(opt.begin() + static_cast<std::ptrdiff_t>(opt_at) + 1, {'a', 0});
  CHECK(Message::parse(opt));
  CHECK_FALSE(Query::parse(opt));
}

TEST_CASE("label and name length limits") {
  QueryBuilder b;
  b.name = std::string(63, 'a') + ".com";
  CHECK(Query::parse(b.build()));
  b.name = std::string(64, 'a') + ".com";  // 64 encodes as 0x40: a reserved label type
  CHECK_FALSE(Query::parse(b.build()));

  // 4 labels of 63 = 4 * 64 + root = 257 bytes > 255.
  std::string label(63, 'b');
  b.name = label + "." + label + "." + label + "." + label;
  CHECK_FALSE(Query::parse(b.build()));
  // 3 labels of 63 + one of 61 = 3*64 + 62 + 1 = 255 bytes: the maximum.
  b.name = label + "." + label + "." + label + "." + std::string(61, 'c');
  CHECK(Query::parse(b.build()));
  b.name = label + "." + label + "." + label + "." + std::string(62, 'c');
  CHECK_FALSE(Query::parse(b.build()));
}

TEST_CASE("a compression pointer backwards is followed") {
  // A question's own name can only point into the header, so use a response whose
  // answer's owner is "www" + a pointer to the question's name.
  Bytes m{0x00, 0x01, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0};
  Bytes q = encode_name("example.com");
  m.insert(m.end(), q.begin(), q.end());
  put16(m, 1);
  put16(m, 1);
  // Answer owner: "www" + pointer to offset 12.
  m.insert(m.end(), {3, 'w', 'w', 'w', 0xC0, 12});
  put16(m, 1);
  put16(m, 1);
  m.insert(m.end(), {0, 0, 0, 30, 0, 4, 198, 18, 0, 1});
  auto message = Message::parse(m);
  REQUIRE(message);
  REQUIRE(message->answers.size() == 1);
  CHECK(message->answers[0].name.text() == "www.example.com");
  CHECK(message->answers[0].ttl == 30);
  CHECK(message->answers[0].rdata.size() == 4);
}

TEST_CASE("a question name compressed into the header decodes") {
  // Offset 8 of the header (nscount = 0) reads as the root label.
  Bytes m = with_question_bytes({0xC0, 8, 0, 1, 0, 1});
  auto query = Query::parse(m);
  REQUIRE(query);
  CHECK(query->question.name.text() == "");
  CHECK(query->question.name.size == 1);
}

TEST_CASE("compression loops and forward pointers are refused") {
  SUBCASE("pointer to itself") { CHECK_FALSE(question_text(with_question_bytes({0xC0, 12, 0, 1, 0, 1}))); }
  SUBCASE("pointer forward") {
    CHECK_FALSE(question_text(with_question_bytes({0xC0, 14, 0, 0, 1, 0, 1})));
  }
  SUBCASE("label then pointer back to the label's start") {
    CHECK_FALSE(question_text(with_question_bytes({1, 'a', 0xC0, 12, 0, 1, 0, 1})));
  }
  SUBCASE("loop between two records") {
    // Answer record owner points at the second pointer, which points back.
    Bytes m{0, 1, 0x81, 0x80, 0, 0, 0, 2, 0, 0, 0, 0};
    m.insert(m.end(), {0xC0, 20, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0});  // record 1 at 12, owner -> 20
    m.insert(m.end(), {0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0});  // record 2 at 24
    CHECK_FALSE(Message::parse(m));
  }
  SUBCASE("truncated pointer") { CHECK_FALSE(question_text(with_question_bytes({0xC0}))); }
  SUBCASE("label type 0x80") { CHECK_FALSE(question_text(with_question_bytes({0x80, 0, 0, 1, 0, 1}))); }
}

// A response whose first answer's rdata holds a root label and a chain of `chain`
// pointers, each to the one before; the second answer's owner points at the last.
static Bytes pointer_chain_message(int chain) {
  Bytes r{0, 1, 0x81, 0x80, 0, 0, 0, 2, 0, 0, 0, 0};
  r.insert(r.end(), {0, 0, 1, 0, 1, 0, 0, 0, 0});  // owner root, A, IN, TTL 0
  std::size_t rdlen_at = r.size();
  r.insert(r.end(), {0, 0});
  std::size_t chain_start = r.size();
  r.push_back(0);
  for (int i = 0; i < chain; ++i) {
    std::size_t target = i == 0 ? chain_start : r.size() - 2;
    r.push_back(static_cast<std::uint8_t>(0xC0 | (target >> 8)));
    r.push_back(static_cast<std::uint8_t>(target & 0xFF));
  }
  std::size_t rdlen = r.size() - chain_start;
  r[rdlen_at] = static_cast<std::uint8_t>(rdlen >> 8);
  r[rdlen_at + 1] = static_cast<std::uint8_t>(rdlen & 0xFF);
  std::size_t last = r.size() - 2;
  r.push_back(static_cast<std::uint8_t>(0xC0 | (last >> 8)));
  r.push_back(static_cast<std::uint8_t>(last & 0xFF));
  r.insert(r.end(), {0, 1, 0, 1, 0, 0, 0, 0, 0, 0});
  return r;
}

TEST_CASE("pointer chains are capped at kMaxPointerHops") {
  auto ok = Message::parse(pointer_chain_message(kMaxPointerHops - 1));
  REQUIRE(ok);
  CHECK(ok->answers[1].name.size == 1);
  CHECK_FALSE(Message::parse(pointer_chain_message(kMaxPointerHops)));
  CHECK_FALSE(Message::parse(pointer_chain_message(40)));
}

TEST_CASE("every truncation of a valid query is refused without reading past the end") {
  QueryBuilder b;
  b.name = "a.long-ish.name.example.org";
  b.edns_size = 1232;
  Bytes full = b.build();
  REQUIRE(Query::parse(full));
  for (std::size_t n = 0; n < full.size(); ++n) {
    Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    CHECK_FALSE(Query::parse(cut));
    CHECK(Header::parse(cut).has_value() == (n >= 12));
  }
}

TEST_CASE("a label holding a dot has no dotted text") {
  QueryBuilder b;
  b.raw_name = Bytes{3, 'a', '.', 'b', 3, 'c', 'o', 'm', 0};
  auto query = Query::parse(b.build());
  REQUIRE(query);
  CHECK_FALSE(query->question.name.text());
}

TEST_CASE("the writer echoes the header bits and the question and points the answer at it") {
  QueryBuilder b;
  b.name = "ExAmple.COM";
  Bytes in = b.build();
  auto query = Query::parse(in);
  REQUIRE(query);
  ResponseSpec spec;
  spec.id = 0xBEEF;
  spec.opcode = 0;
  spec.rd = true;
  spec.question = &query->question;
  spec.a_record = std::array<std::uint8_t, 4>{198, 18, 0, 7};
  spec.ttl = 30;
  Bytes out = write_response(spec);
  // Header.
  CHECK(out[0] == 0xBE);
  CHECK(out[1] == 0xEF);
  CHECK(out[2] == 0x85);  // QR, opcode 0, AA, RD
  CHECK(out[3] == 0x80);  // RA, NOERROR
  CHECK(out[5] == 1);
  CHECK(out[7] == 1);
  CHECK(out[9] == 0);
  CHECK(out[11] == 0);
  // Question echoed byte for byte, case preserved.
  CHECK(Bytes(out.begin() + 12, out.begin() + 12 + 17) == Bytes(in.begin() + 12, in.begin() + 12 + 17));
  // Answer: pointer to 12, A, IN, TTL 30, rdlength 4, address.
  Bytes answer(out.begin() + 29, out.end());
  CHECK(answer == Bytes{0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 198, 18, 0, 7});

  auto back = Message::parse(out);
  REQUIRE(back);
  CHECK(back->header.qr());
  CHECK(back->header.aa());
  CHECK(back->header.ra());
  CHECK(back->answers[0].name.text() == "ExAmple.COM");
}

TEST_CASE("the writer adds OPT with the extended rcode and sets TC when over the limit") {
  QueryBuilder b;
  b.edns_size = 1232;
  auto query = Query::parse(b.build());
  REQUIRE(query);
  ResponseSpec spec;
  spec.id = 7;
  spec.question = &query->question;
  spec.edns = true;
  spec.rcode = rcode::badvers;
  Bytes out = write_response(spec);
  auto back = Message::parse(out);
  REQUIRE(back);
  CHECK(back->header.rcode() == 0);
  REQUIRE(back->additional.size() == 1);
  CHECK(back->additional[0].type == rrtype::opt);
  CHECK(back->additional[0].klass == 1232);
  CHECK((back->additional[0].ttl >> 24) == 1);  // 16 >> 4

  spec.rcode = rcode::noerror;
  spec.a_record = std::array<std::uint8_t, 4>{198, 18, 0, 1};
  spec.limit = 40;  // artificially small
  out = write_response(spec);
  back = Message::parse(out);
  REQUIRE(back);
  CHECK(back->header.tc());
  CHECK(back->answers.empty());
}

TEST_CASE("rrtype names") {
  CHECK(rrtype_name(1) == "A");
  CHECK(rrtype_name(28) == "AAAA");
  CHECK(rrtype_name(65) == "HTTPS");
  CHECK(rrtype_name(999) == "TYPE999");
}
