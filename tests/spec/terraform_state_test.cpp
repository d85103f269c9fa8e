// spec/terraform_state.h: addresses and keys of root, count, for_each and
// module instances; what is counted and flagged; bad input.
#include <catch2/catch.hpp>

#include "spec/terraform_state.h"

using namespace tokend;
using namespace tokend::spec;

TEST_CASE("a Terraform state gives its astro_api_token instances with addresses",
          "[spec][terraform]") {
  const std::string text = R"({"version": 4, "terraform_version": "1.9.0", "serial": 3,
    "lineage": "x", "outputs": {}, "resources": [
    {"mode": "managed", "type": "astro_api_token", "name": "ci", "provider": "p",
     "instances": [{"schema_version": 0, "attributes": {"id": "id-ci", "name": "ci",
       "description": "d", "type": "WORKSPACE", "expiry_period_in_days": 30,
       "token": "secret-ci"}}]},
    {"mode": "managed", "type": "astro_api_token", "name": "workers",
     "instances": [{"index_key": 0, "attributes": {"id": "id-w0"}},
                   {"index_key": 1, "status": "tainted", "attributes": {"id": "id-w1"}}]},
    {"module": "module.team_a", "mode": "managed", "type": "astro_api_token",
     "name": "deployer", "instances": [{"index_key": "prod", "attributes": {"id": "id-p"}},
       {"index_key": "prod", "deposed": "00aa", "attributes": {"id": "id-old"}}]},
    {"module": "module.a[\"x\"].module.b", "mode": "managed", "type": "astro_api_token",
     "name": "t", "instances": [{"attributes": {"id": "id-n"}}]},
    {"mode": "data", "type": "astro_organization", "name": "o",
     "instances": [{"attributes": {"id": "org"}}]},
    {"mode": "managed", "type": "astro_workspace", "name": "w",
     "instances": [{"attributes": {"id": "ws"}}, {"attributes": {"id": "ws2"}}]}]})";
  auto parsed = parse_terraform_state(text);
  INFO((parsed.ok() ? "" : parsed.error().message));
  REQUIRE(parsed.ok());
  const auto& tokens = parsed->tokens;
  REQUIRE(tokens.size() == 6);
  CHECK(tokens[0].address == "astro_api_token.ci");
  CHECK(tokens[0].key_source == "ci");
  CHECK(tokens[0].id == "id-ci");
  CHECK(tokens[0].name == std::optional<std::string>("ci"));
  CHECK(tokens[0].type == std::optional<std::string>("WORKSPACE"));
  CHECK(tokens[0].expiry_period_in_days == std::optional<int>(30));
  CHECK(tokens[0].value.reveal() == "secret-ci");
  CHECK(tokens[1].address == "astro_api_token.workers[0]");
  CHECK(tokens[1].key_source == "workers[0]");
  CHECK(tokens[1].value.empty());
  CHECK(tokens[2].tainted);
  CHECK(!tokens[1].tainted);
  CHECK(tokens[3].address == "module.team_a.astro_api_token.deployer[\"prod\"]");
  CHECK(tokens[3].key_source == "team_a.deployer[\"prod\"]");
  CHECK(!tokens[3].deposed);
  CHECK(tokens[4].deposed);
  CHECK(tokens[5].address == "module.a[\"x\"].module.b.astro_api_token.t");
  CHECK(tokens[5].key_source == "a[\"x\"].b.t");
  CHECK(parsed->data_sources == 1);
  CHECK(parsed->other_resources == 2);
}

TEST_CASE("a Terraform state that cannot be adopted says why", "[spec][terraform]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "not JSON"},
      {"[1]", "not a JSON object"},
      {R"({"resources": []})", "no \"version\""},
      {R"({"version": 3, "resources": []})", "format version 3"},
      {R"({"version": 4, "resources": [{"mode": "data", "type": "astro_api_token",
          "name": "x", "instances": [{"attributes": {"id": "a"}}]}]})",
       "no managed astro_api_token"},
      {R"({"version": 4})", "no managed astro_api_token"},
      {R"({"version": 4, "resources": [{"mode": "managed", "type": "astro_api_token",
          "name": "x", "instances": [{"attributes": {"name": "n", "token": "s3cr3t"}}]}]})",
       "astro_api_token.x has no \"id\""},
      {std::string(100, '[') + std::string(100, ']'), "nesting deeper"},
  };
  for (const auto& [text, message] : cases) {
    auto parsed = parse_terraform_state(text);
    INFO(text);
    REQUIRE(!parsed.ok());
    CHECK(parsed.error().kind == ErrorKind::Invalid);
    CHECK(parsed.error().message.find(message) != std::string::npos);
    CHECK(parsed.error().message.find("s3cr3t") == std::string::npos);
  }
}
