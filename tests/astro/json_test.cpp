#include <catch2/catch.hpp>

#include "astro/json.h"

using namespace tokend;
using namespace tokend::astro;

namespace {
ApiToken sample_token() {
  ApiToken t;
  t.id = "clm8q7f6q000008lcgyougpsk";
  t.name = "ci \"deployer\"\n";
  t.description = "used by CI";
  t.type = EntityType::Workspace;
  t.roles =
      normalize_roles({{"WORKSPACE_OWNER", "clx42sxw501gl01o0gjenthnh", EntityType::Workspace},
                       {"DEPLOYMENT_ADMIN", "clyn6kxud003x01mtxmccegnh", EntityType::Deployment}});
  t.expiry_period_in_days = 30;
  t.short_token = "abc123";
  t.created_at = *parse_rfc3339("2026-01-02T03:04:05Z");
  t.updated_at = *parse_rfc3339("2026-01-02T03:04:06Z");
  t.start_at = t.created_at;
  t.end_at = *parse_rfc3339("2026-02-01T03:04:05Z");
  return t;
}

bool same(const ApiToken& a, const ApiToken& b) {
  return a.id == b.id && a.attrs() == b.attrs() && a.short_token == b.short_token &&
         a.created_at == b.created_at && a.updated_at == b.updated_at && a.start_at == b.start_at &&
         a.end_at == b.end_at && a.last_used_at == b.last_used_at &&
         a.token.reveal() == b.token.reveal();
}
}  // namespace

TEST_CASE("ApiToken round-trips - and the secret only when asked", "[astro][json]") {
  ApiToken t = sample_token();
  t.token = SecretValue("secret-value");
  auto without = json::decode_token(json::encode_token(t, false));
  REQUIRE(without.ok());
  CHECK(without->token.empty());
  CHECK(json::encode_token(t, false).find("secret-value") == std::string::npos);
  auto with = json::decode_token(json::encode_token(t, true));
  REQUIRE(with.ok());
  CHECK(same(*with, t));
}

TEST_CASE("token pages round-trip", "[astro][json]") {
  json::TokenPage page;
  page.tokens = {sample_token(), sample_token()};
  page.tokens[1].id = "cother0000000000000000000";
  page.tokens[1].end_at.reset();
  page.tokens[1].expiry_period_in_days.reset();
  page.total_count = 42;
  page.offset = 40;
  page.limit = 1000;
  auto decoded = json::decode_token_page(json::encode_token_page(page));
  REQUIRE(decoded.ok());
  CHECK(decoded->total_count == 42);
  CHECK(decoded->offset == 40);
  CHECK(decoded->limit == 1000);
  REQUIRE(decoded->tokens.size() == 2);
  CHECK(same(decoded->tokens[0], page.tokens[0]));
  CHECK(same(decoded->tokens[1], page.tokens[1]));
}

TEST_CASE("request bodies round-trip", "[astro][json]") {
  CreateTokenRequest create{"n", "d", EntityType::Deployment, "DEPLOYMENT_ADMIN", "cdep", 7};
  auto c = json::decode_create_request(json::encode_create_request(create));
  REQUIRE(c.ok());
  CHECK(c->name == "n");
  CHECK(c->description == "d");
  CHECK(c->type == EntityType::Deployment);
  CHECK(c->role == "DEPLOYMENT_ADMIN");
  CHECK(c->entity_id == "cdep");
  CHECK(c->expiry_period_in_days == 7);

  auto u = json::decode_update_request(json::encode_update_request({"new", "desc"}));
  REQUIRE(u.ok());
  CHECK(u->name == "new");
  CHECK(u->description == "desc");

  RoleSet roles = sample_token().roles;
  auto r = json::decode_roles_request(json::encode_roles_request(roles));
  REQUIRE(r.ok());
  CHECK(normalize_roles(*r) == roles);

  json::ErrorBody e{"token not found", "req-9", 404};
  auto d = json::decode_error(json::encode_error(e));
  REQUIRE(d);
  CHECK(d->message == e.message);
  CHECK(d->request_id == e.request_id);
  CHECK(d->status_code == 404);
}

TEST_CASE("decoders tolerate unknown fields and name what is wrong", "[astro][json]") {
  auto ok = json::decode_update_request(R"({"name":"x","extra":{"nested":[1,2]}})");
  CHECK(ok.ok());
  auto missing = json::decode_create_request(R"({"type":"WORKSPACE","role":"WORKSPACE_OWNER"})");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message == "missing required field name");
  auto bad_enum = json::decode_create_request(R"({"name":"x","type":"TEAM","role":"r"})");
  REQUIRE_FALSE(bad_enum.ok());
  CHECK(bad_enum.error().message == "type must be one of DEPLOYMENT, WORKSPACE, ORGANIZATION");
  auto dag_type = json::decode_create_request(R"({"name":"x","type":"DAG","role":"r"})");
  REQUIRE_FALSE(dag_type.ok());
  CHECK(dag_type.error().message == "type must be one of DEPLOYMENT, WORKSPACE, ORGANIZATION");
  auto dag_tag_token = json::decode_token(
      R"({"id":"c1","name":"x","description":"","type":"DAG_TAG","shortToken":"s",)"
      R"("createdAt":"2026-01-02T03:04:05Z","updatedAt":"2026-01-02T03:04:05Z",)"
      R"("startAt":"2026-01-02T03:04:05Z"})");
  REQUIRE_FALSE(dag_tag_token.ok());
  CHECK(dag_tag_token.error().message == "type must be one of DEPLOYMENT, WORKSPACE, ORGANIZATION");
  auto dag_role = json::decode_roles_request(
      R"({"roles":[{"role":"DAG_VIEWER","entityId":"etl","entityType":"DAG"}]})");
  REQUIRE_FALSE(dag_role.ok());
  CHECK(dag_role.error().message ==
        "roles[0].entityType must be one of DEPLOYMENT, WORKSPACE, ORGANIZATION");
  auto bad_type = json::decode_create_request(R"({"name":5,"type":"WORKSPACE","role":"r"})");
  REQUIRE_FALSE(bad_type.ok());
  CHECK(bad_type.error().message == "name must be a string");
  auto bad_expiry = json::decode_create_request(
      R"({"name":"x","type":"WORKSPACE","role":"r","tokenExpiryPeriodInDays":3651})");
  REQUIRE_FALSE(bad_expiry.ok());
  CHECK_FALSE(json::decode_token("not json").ok());
  CHECK_FALSE(json::decode_error("[]"));
  auto ids = json::decode_id_page(
      R"({"totalCount":1,"limit":1000,"offset":0,"workspaces":[{"id":"w1","name":"x"}]})",
      "workspaces");
  REQUIRE(ids.ok());
  CHECK(ids->ids == std::vector<std::string>{"w1"});
}
