// util/json_parse.h: the limits every reader of outside JSON applies before
// Poco's parser sees the text.
#include <catch2/catch.hpp>

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <string>

#include "util/json_parse.h"

using tokend::json_limit_problem;
using tokend::parse_json;

namespace {

std::string nested_arrays(int depth) {
  return std::string(static_cast<size_t>(depth), '[') +
         std::string(static_cast<size_t>(depth), ']');
}

std::string nested_objects(int depth) {
  std::string text;
  for (int i = 0; i < depth; ++i) text += "{\"a\":";
  text += "1";
  text += std::string(static_cast<size_t>(depth), '}');
  return text;
}

}  // namespace

TEST_CASE("json limits: nesting up to the limit passes, one level more is refused at its place",
          "[util][json]") {
  CHECK_FALSE(json_limit_problem(nested_arrays(64)));
  CHECK_FALSE(json_limit_problem(nested_objects(64)));
  CHECK(json_limit_problem(nested_arrays(65)) ==
        "nesting deeper than 64 levels at line 1, column 65");
  CHECK(json_limit_problem(nested_objects(65)) ==
        "nesting deeper than 64 levels at line 1, column 321");
  CHECK(json_limit_problem("{\n  \"a\": [\n    [[1]]]}", 3) ==
        "nesting deeper than 3 levels at line 3, column 6");
  // Depth is what is open at once, not how many brackets there are.
  std::string wide = "[";
  for (int i = 0; i < 10000; ++i) wide += "[1],";
  wide += "[]]";
  CHECK_FALSE(json_limit_problem(wide));
}

TEST_CASE("json limits: brackets and quotes inside strings do not count", "[util][json]") {
  CHECK_FALSE(json_limit_problem("{\"a\": \"" + std::string(1000, '[') + "\"}"));
  CHECK_FALSE(json_limit_problem("[\"\\\"[[[[\", \"\\\\\"]", 2));
  CHECK(json_limit_problem("[\"\\\\\", [[1]]]", 2) ==
        "nesting deeper than 2 levels at line 1, column 9");
  // An unterminated string hides the rest; the parser reports it.
  CHECK_FALSE(json_limit_problem("[\"" + nested_arrays(100)));
}

TEST_CASE("json limits: integers beyond 64 bits are refused, others pass", "[util][json]") {
  CHECK_FALSE(json_limit_problem("[18446744073709551615, -9223372036854775808, 0, -0]"));
  CHECK_FALSE(json_limit_problem("[000000000000000000000000000001]"));
  CHECK_FALSE(
      json_limit_problem("[123456789012345678901234567890.5, 1e999, 99999999999999999999e1]"));
  CHECK(json_limit_problem("{\"totalCount\": 18446744073709551616}") ==
        "integer 18446744073709551616 out of range at line 1, column 16");
  CHECK(json_limit_problem("[\n -9223372036854775809]") ==
        "integer -9223372036854775809 out of range at line 2, column 2");
  CHECK(json_limit_problem("[" + std::string(5000, '9') + "]") ==
        "integer 999999999999999999999999... out of range at line 1, column 2");
  // Digits inside strings are text.
  CHECK_FALSE(json_limit_problem("[\"" + std::string(5000, '9') + "\"]"));
}

TEST_CASE("parse_json: parses what keeps the limits, refuses the rest without throwing",
          "[util][json]") {
  auto object = parse_json("{\"a\": [1, 2, {\"b\": 18446744073709551615}]}");
  REQUIRE(object.ok());
  REQUIRE(object->type() == typeid(Poco::JSON::Object::Ptr));
  auto a = object->extract<Poco::JSON::Object::Ptr>()->getArray("a");
  REQUIRE(a);
  CHECK(a->size() == 3);

  for (const std::string& text : {nested_arrays(100000), nested_objects(100000)}) {
    auto deep = parse_json(text);
    REQUIRE_FALSE(deep.ok());
    CHECK(deep.error().kind == tokend::ErrorKind::Invalid);
    CHECK(deep.error().message.rfind("nesting deeper than 64 levels at line 1, column ", 0) == 0);
  }
  auto wrapped = parse_json("{\"n\": 18446744073709551616}");
  REQUIRE_FALSE(wrapped.ok());
  CHECK(wrapped.error().message == "integer 18446744073709551616 out of range at line 1, column 7");

  auto broken = parse_json("{\"a\": ");
  REQUIRE_FALSE(broken.ok());
  CHECK_FALSE(broken.error().message.empty());
  auto trailing = parse_json("{} x");
  CHECK_FALSE(trailing.ok());
  auto control = parse_json(std::string("[\"a\0b\"]", 7));
  CHECK_FALSE(control.ok());
  auto empty = parse_json("");
  CHECK_FALSE(empty.ok());
}
