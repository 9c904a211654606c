// QMP stream splitting (sans-IO).
#include <doctest/doctest.h>

#include "runtime/vm/qmp.hpp"

using namespace airlock::runtime;

TEST_CASE("qmp parser: CRLF-separated objects, split anywhere") {
  QmpParser p;
  p.feed(R"({"QMP": {"version": {}}})");
  CHECK_FALSE(p.next().has_value());
  p.feed("\r\n{\"return\": {}}\r\n{\"event\":\"STOP\"");
  auto greeting = p.next();
  REQUIRE(greeting.has_value());
  REQUIRE(greeting->ok());
  CHECK((*greeting)->contains("QMP"));
  auto ret = p.next();
  REQUIRE(ret.has_value());
  CHECK((*ret)->contains("return"));
  CHECK_FALSE(p.next().has_value());
  p.feed("}\r\n");
  CHECK((*p.next())->value("event", "") == "STOP");
}

TEST_CASE("qmp parser: garbage is an error, blank lines are skipped") {
  QmpParser p;
  p.feed("\r\n\r\nnot json\r\n");
  auto r = p.next();
  REQUIRE(r.has_value());
  CHECK_FALSE(r->ok());
  QmpParser big;
  big.feed(std::string(QmpParser::kMaxLine + 1, 'x'));
  auto over = big.next();
  REQUIRE(over.has_value());
  CHECK_FALSE(over->ok());
}
