// Control message helpers: parsing never throws and typed getters reject wrong types.
#include <doctest/doctest.h>

#include "protocol/messages.hpp"

using namespace airlock::protocol;

TEST_CASE("parse_control accepts only objects with a string op") {
  CHECK(parse_control(R"({"op":"exec","argv":["ls"]})").has_value());
  CHECK_FALSE(parse_control("").has_value());
  CHECK_FALSE(parse_control("{").has_value());
  CHECK_FALSE(parse_control("[1,2]").has_value());
  CHECK_FALSE(parse_control(R"({"op":1})").has_value());
  CHECK_FALSE(parse_control(R"({"nop":"x"})").has_value());
  CHECK_FALSE(parse_control("\xff\xfe").has_value());
}

TEST_CASE("typed getters return nothing on the wrong type") {
  const auto m = *parse_control(
      R"({"op":"x","s":"str","i":42,"neg":-3,"f":24.0,"frac":1.5,"b":true,"arr":["a","b"],"mixed":["a",1],"obj":{"k":"v"},"big":18446744073709551615,"n":null})");
  CHECK(op_of(m) == "x");
  CHECK(get_string(m, "s") == "str");
  CHECK_FALSE(get_string(m, "i").has_value());
  CHECK_FALSE(get_string(m, "missing").has_value());
  CHECK(get_int(m, "i") == 42);
  CHECK(get_int(m, "neg") == -3);
  CHECK(get_int(m, "f") == 24);
  CHECK_FALSE(get_int(m, "frac").has_value());
  CHECK_FALSE(get_int(m, "s").has_value());
  CHECK_FALSE(get_int(m, "big").has_value());
  CHECK_FALSE(get_int(m, "n").has_value());
  CHECK(get_bool(m, "b") == true);
  CHECK_FALSE(get_bool(m, "i").has_value());
  CHECK(get_string_array(m, "arr") == std::vector<std::string>{"a", "b"});
  CHECK_FALSE(get_string_array(m, "mixed").has_value());
  CHECK_FALSE(get_string_array(m, "s").has_value());
  REQUIRE(get_object(m, "obj") != nullptr);
  CHECK(get_object(m, "arr") == nullptr);
  // Getters on a non-object never throw.
  CHECK_FALSE(get_string(Json::array(), "s").has_value());
}

TEST_CASE("dump replaces invalid UTF-8 instead of throwing") {
  Json j{{"op", "event"}, {"path", std::string("/w/\xff\xfe")}};
  std::string text;
  CHECK_NOTHROW(text = dump(j));
  CHECK(parse_control(text).has_value());
}

TEST_CASE("make_error builds the error reply") {
  const auto m = *parse_control(make_error(error_code::not_found, "no such file"));
  CHECK(op_of(m) == "error");
  CHECK(get_string(m, "code") == "not_found");
  CHECK(get_string(m, "message") == "no such file");
  CHECK(op_of(*parse_control(make_ok())) == "ok");
}
