#include <catch2/catch.hpp>

#include "util/duration.h"
#include "util/hash.h"
#include "util/result.h"

using namespace tokend;
using std::chrono::milliseconds;

TEST_CASE("durations parse and format", "[util]") {
  CHECK(parse_duration("90s") == milliseconds(90000));
  CHECK(parse_duration("5m") == milliseconds(300000));
  CHECK(parse_duration("1h30m") == milliseconds(5400000));
  CHECK(parse_duration("250ms") == milliseconds(250));
  CHECK(parse_duration("0") == milliseconds(0));
  CHECK_FALSE(parse_duration("5"));
  CHECK_FALSE(parse_duration("-5s"));
  CHECK_FALSE(parse_duration("5 minutes"));
  CHECK_FALSE(parse_duration(""));
  CHECK(format_duration(milliseconds(90000)) == "1m30s");
  CHECK(format_duration(milliseconds(1500)) == "1.5s");
  CHECK(format_duration(milliseconds(400)) == "400ms");
  for (const char* text : {"90s", "5m", "1h30m", "250ms", "2h"})
    CHECK(parse_duration(format_duration(*parse_duration(text))) == parse_duration(text));
}

TEST_CASE("sha256 matches a known vector", "[util]") {
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 pieces;
  pieces.update("a");
  pieces.update("");
  pieces.update("bc");
  CHECK(pieces.hex_digest() == sha256_hex("abc"));
}

TEST_CASE("errors describe status and request id", "[util]") {
  Error e{ErrorKind::NotFound, "token not found", "req-1", 404};
  CHECK(e.describe() == "token not found (HTTP 404, requestId req-1)");
  Result<int> r = e;
  CHECK_FALSE(r.ok());
  CHECK(r.error().kind == ErrorKind::NotFound);
}
