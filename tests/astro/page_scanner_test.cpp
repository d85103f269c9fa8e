#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "astro/json.h"
#include "astro/page_scanner.h"
#include "fuzz/targets.h"
#include "sim/v1_json.h"

using namespace tokend;
using namespace tokend::astro;

namespace {

ApiToken fleet_token(int i) {
  ApiToken t;
  t.id = "clm8q7f6q000008lcgyou" + std::to_string(1000 + i);
  t.name = "token " + std::to_string(i);
  t.description = "managed";
  t.type = EntityType::Deployment;
  t.kind = i % 2 ? TokenKind::DirectAccess : TokenKind::Standard;
  t.roles = normalize_roles(
      {{"DEPLOYMENT_ADMIN", "clyn6kxud003x01mtxmccegnh", EntityType::Deployment},
       {"DAG_AUTHOR", "etl_" + std::to_string(i), EntityType::Dag, "clyn6kxud003x01mtxmccegnh"}});
  if (i % 3) t.expiry_period_in_days = 30 + i;
  t.short_token = "abc" + std::to_string(i);
  t.created_at = *parse_rfc3339("2026-01-02T03:04:05Z");
  t.updated_at = *parse_rfc3339("2026-01-02T03:04:06Z");
  t.start_at = t.created_at;
  if (i % 2) t.end_at = *parse_rfc3339("2026-02-01T03:04:05Z");
  if (i % 4 == 1) t.last_rotated_at = *parse_rfc3339("2026-01-15T00:00:00Z");
  return t;
}

// What decode_token_page answers for `body` is what the parse tree alone
// answers: the same page, or the same error.
void expect_same_as_tree(const std::string& body, ApiVersion version) {
  auto decoded = json::decode_token_page(body, version);
  auto tree = json::decode_token_page_via_tree(body, version);
  REQUIRE(decoded.ok() == tree.ok());
  if (decoded.ok())
    CHECK(fuzz::same_token_page(*decoded, *tree));
  else
    CHECK(decoded.error().message == tree.error().message);
}

// A v1 page of two tokens as the v1 API writes them. The first token lacks
// every optional field; `extra` is spliced in right after its opening brace.
std::string v1_page_with(const std::string& extra) {
  json::TokenPage page;
  page.tokens = {fleet_token(6), fleet_token(1)};
  page.total_count = 2;
  page.limit = 1000;
  std::string body = sim::v1::encode_token_page(page);
  body.insert(body.find("[{") + 2, extra);
  return body;
}

// The same page with the first token's `field` set to the JSON text `value`.
std::string v1_page_setting(const std::string& field, const std::string& value) {
  std::string body = v1_page_with("");
  const std::string key = "\"" + field + "\":";
  const std::size_t at = body.find(key);
  REQUIRE(at != std::string::npos);
  const std::size_t start = at + key.size();
  std::size_t end = start;
  if (body[start] == '"') {
    end = body.find('"', start + 1) + 1;
  } else if (body[start] == '[') {
    for (int depth = 0; end == start || depth > 0; ++end)
      depth += body[end] == '[' ? 1 : body[end] == ']' ? -1 : 0;
  } else {
    while (body[end] != ',' && body[end] != '}') ++end;
  }
  return body.replace(start, end - start, value);
}

}  // namespace

TEST_CASE("the page scanner reads a v1 and a v1beta1 page as the parse tree does",
          "[astro][json]") {
  json::TokenPage page;
  for (int i = 0; i < 40; ++i) page.tokens.push_back(fleet_token(i));
  page.total_count = 1234;
  page.offset = 40;
  page.limit = 1000;

  const std::string v1 = sim::v1::encode_token_page(page);
  auto scanned = json::scan_token_page(v1, ApiVersion::V1);
  REQUIRE(scanned);
  auto tree = json::decode_token_page_via_tree(v1, ApiVersion::V1);
  REQUIRE(tree.ok());
  CHECK(fuzz::same_token_page(*scanned, *tree));
  CHECK(scanned->total_count == 1234);
  CHECK(scanned->offset == 40);
  REQUIRE(scanned->tokens.size() == 40);
  CHECK(scanned->tokens[1].kind == TokenKind::DirectAccess);
  CHECK(scanned->tokens[1].last_rotated_at == page.tokens[1].last_rotated_at);
  CHECK(scanned->tokens[3].roles == page.tokens[3].roles);

  // v1beta1: `type` instead of `scope`; no DAG roles in that API.
  for (ApiToken& token : page.tokens) {
    token.roles = normalize_roles(
        {{"DEPLOYMENT_ADMIN", "clyn6kxud003x01mtxmccegnh", EntityType::Deployment}});
    token.kind = TokenKind::Standard;
    token.last_rotated_at.reset();
  }
  const std::string beta = json::encode_token_page(page);
  auto scanned_beta = json::scan_token_page(beta, ApiVersion::V1Beta1);
  REQUIRE(scanned_beta);
  auto tree_beta = json::decode_token_page_via_tree(beta, ApiVersion::V1Beta1);
  REQUIRE(tree_beta.ok());
  CHECK(fuzz::same_token_page(*scanned_beta, *tree_beta));
  // Each version's field names only: a v1beta1 page lacks v1's `scope` and `kind`.
  CHECK_FALSE(json::scan_token_page(beta, ApiVersion::V1));
}

TEST_CASE("the page scanner decodes escapes and UTF-8 and skips unknown fields as the tree does",
          "[astro][json]") {
  const std::vector<std::string> extras = {
      R"("unknown":{"a":[1,-2.5e+3,true,false,null,{"b":"c"}],"d":{}},"more":[],)",
      R"("endAt":null,"lastUsedAt":null,"expiryPeriodInDays":null,"token":null,)",
      R"("lastRotatedAt":null,"lastUsedAt":null,)",
      R"("token":"secret-é",)",
      " \n\t\r",
  };
  for (const std::string& extra : extras) {
    INFO(extra);
    const std::string body = v1_page_with(extra);
    CHECK(json::scan_token_page(body, ApiVersion::V1));
    expect_same_as_tree(body, ApiVersion::V1);
  }
  const std::vector<std::string> names = {
      R"("caf\u00e9 \ud83d\ude80 \"q\" \\ \/ \b\f\n\r\t <img src=x onerror=alert(1)>")",
      "\"caf\xc3\xa9 \xf0\x9f\x9a\x80 \xe2\x82\xac\"",
  };
  for (const std::string& name : names) {
    INFO(name);
    const std::string body = v1_page_setting("name", name);
    auto scanned = json::scan_token_page(body, ApiVersion::V1);
    REQUIRE(scanned);
    CHECK(scanned->tokens[0].name.rfind("caf\xc3\xa9 \xf0\x9f\x9a\x80 ", 0) == 0);
    expect_same_as_tree(body, ApiVersion::V1);
  }
}

TEST_CASE("what the page scanner is not sure of goes to the parse tree - and its error stays",
          "[astro][json]") {
  const std::vector<std::string> left_to_tree = {
      v1_page_with(R"("id":"twice",)"),                      // a field given twice
      v1_page_setting("name", "null"),                       // null for a required field
      v1_page_setting("description", "7"),                   // a number for a string
      v1_page_with(R"("expiryPeriodInDays":30.0,)"),         // a number that is no integer
      v1_page_with(R"("expiryPeriodInDays":-1,)"),           // out of range
      v1_page_with(R"("expiryPeriodInDays":99999999999,)"),  // beyond an int
      v1_page_with(R"("expiryPeriodInDays":007,)"),          // not JSON
      v1_page_setting("scope", R"("DAG")"),                  // no token type
      v1_page_setting("kind", R"("SOMETHING")"),             // no kind
      v1_page_setting("createdAt", R"("yesterday")"),        // no date-time
      v1_page_setting("name", R"("\ud83d")"),                // a lone surrogate
      v1_page_setting("name", R"("\u0000")"),                // NUL
      v1_page_setting("name", "\"\xc3\x28\""),               // broken UTF-8
      v1_page_setting("name", "\"\xe0\x80\xaf\""),           // an overlong form
      v1_page_setting("name", "\"tab\there\""),              // a raw control character
      v1_page_with(
          R"("x":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],)"),
      v1_page_with(R"("x":123456789012345678901234567890,)"),        // an integer beyond 64 bits
      v1_page_setting("roles", "{}"),                                // not an array
      v1_page_setting("roles", R"([{"role":"R","entityId":"e"}])"),  // a role without entityType
  };
  for (const std::string& body : left_to_tree) {
    INFO(body.substr(0, 200));
    CHECK_FALSE(json::scan_token_page(body, ApiVersion::V1));
    expect_same_as_tree(body, ApiVersion::V1);
  }
  for (const std::string& body :
       {std::string("{\"tokens\":[],\"totalCount\":0,\"offset\":0}"),  // no limit
        std::string("{\"tokens\":[],\"totalCount\":0,\"offset\":0,\"limit\":1} x"),
        std::string("[]"), std::string(""), std::string("{\"tokens\":[],")}) {
    INFO(body);
    CHECK_FALSE(json::scan_token_page(body, ApiVersion::V1));
    expect_same_as_tree(body, ApiVersion::V1);
  }
}

TEST_CASE("a scanned page reports its counts once for the next page's request", "[astro][json]") {
  const std::string body = v1_page_with("");
  int calls = 0;
  int total = -1;
  std::size_t count = 0;
  auto page = json::decode_token_page(body, ApiVersion::V1, [&](int t, std::size_t c) {
    ++calls;
    total = t;
    count = c;
  });
  REQUIRE(page.ok());
  CHECK(calls == 1);
  CHECK(total == 2);
  CHECK(count == 2);
}
