// spec/ helpers: diagnostics formatting, suggestions, UTF-8, lifecycle.
#include <catch2/catch.hpp>

#include "spec/model.h"
#include "spec/text.h"
#include "util/suggest.h"

using namespace tokend;
using namespace tokend::spec;

TEST_CASE("did you mean suggests the closest known word", "[spec]") {
  const std::vector<std::string_view> attributes = {
      "name", "description", "type", "role", "roles", "expiry_period_in_days", "lifecycle"};
  CHECK(closest_match("descripton", attributes) == "description");
  CHECK(closest_match("nmae", attributes) == "name");
  CHECK(closest_match("rols", attributes) == "role");  // ties go to the earlier candidate
  CHECK(closest_match("expiry_period_in_day", attributes) == "expiry_period_in_days");
  CHECK(closest_match("owner", attributes) == std::nullopt);
  CHECK(closest_match("name", attributes) == std::nullopt);
  CHECK(closest_match("workspace", {"ORGANIZATION", "WORKSPACE"}) == "WORKSPACE");
  CHECK(did_you_mean("timout", {"timeout", "token_env"}) == " (did you mean \"timeout\"?)");
  CHECK(did_you_mean("logs", {"astro", "log"}, "[", "]") == " (did you mean [log]?)");
  CHECK(did_you_mean("zzz", {"astro", "log"}).empty());
  CHECK(edit_distance("kitten", "sitting") == 3);
  CHECK(edit_distance("", "abc") == 3);
  CHECK(edit_distance("nmae", "name") == 1);
}

TEST_CASE("UTF-8 checks find the first bad byte", "[spec]") {
  CHECK(first_invalid_utf8("plain ascii") == std::nullopt);
  CHECK(first_invalid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91") == std::nullopt);
  CHECK(first_invalid_utf8("caf\xe9!") == 3u);           // Latin-1
  CHECK(first_invalid_utf8("ab\xc0\x80") == 2u);         // overlong NUL
  CHECK(first_invalid_utf8("\xed\xa0\x80") == 0u);       // surrogate
  CHECK(first_invalid_utf8("x\xf4\x90\x80\x80") == 1u);  // above U+10FFFF
  CHECK(first_invalid_utf8("xy\xe2\x82") == 2u);         // truncated
  CHECK(first_invalid_utf8("\x80") == 0u);               // stray continuation
  CHECK(code_point_count("caf\xc3\xa9") == 4);
  CHECK(code_point_count("") == 0);
  CHECK(printable_line("a\x1b[31m\xff\tb") == "a?[31m?\tb");
  CHECK(in_quotes("say \"hi\"\n") == "\"say \\\"hi\\\"\\n\"");
  CHECK(in_quotes("abcdef", 3) == "\"abc...\"");
}

TEST_CASE("diagnostics format as FILE:LINE:COL with the source line and a caret", "[spec]") {
  Diagnostic full{{"tokens.d/ci.toml", 6, 25},
                  "expiry_period_in_days must be between 1 and 3650, got 0",
                  "expiry_period_in_days = 0"};
  CHECK(full.format() ==
        "tokens.d/ci.toml:6:25: error: expiry_period_in_days must be between 1 and 3650, got 0\n"
        "    expiry_period_in_days = 0\n"
        "                            ^\n");
  // The caret counts characters, not bytes, before the column.
  Diagnostic wide{{"a.toml", 1, 12}, "m", "name = \"\xc3\xa9\xc3\xa9\" x"};
  CHECK(wide.format() ==
        "a.toml:1:12: error: m\n    name = \"\xc3\xa9\xc3\xa9\" x\n              ^\n");
  Diagnostic no_line{{"tokens.d/x.toml", 0, 0}, "cannot read file: Is a directory", ""};
  CHECK(no_line.format() == "tokens.d/x.toml: error: cannot read file: Is a directory\n");
}

TEST_CASE("lifecycle ignores the named attributes - or all of them", "[spec]") {
  Lifecycle none;
  CHECK_FALSE(none.ignores("name"));
  Lifecycle some{false, false, {"description", "roles"}};
  CHECK(some.ignores("description"));
  CHECK(some.ignores("roles"));
  CHECK_FALSE(some.ignores("name"));
  CHECK_FALSE(some.ignores("role"));
  Lifecycle all{false, false, {"all"}};
  for (const char* attribute :
       {"name", "description", "type", "role", "roles", "expiry_period_in_days"})
    CHECK(all.ignores(attribute));
}
