#include <catch2/catch.hpp>

#include "astro/json.h"
#include "sim/v1_json.h"

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

namespace {
ApiToken dag_token() {
  ApiToken t = sample_token();
  t.type = EntityType::Deployment;
  t.kind = TokenKind::DirectAccess;
  t.last_rotated_at = *parse_rfc3339("2026-01-20T10:00:00Z");
  t.roles =
      normalize_roles({{"DEPLOYMENT_ADMIN", "clyn6kxud003x01mtxmccegnh", EntityType::Deployment},
                       {"DAG_VIEWER", "etl_daily", EntityType::Dag, "clyn6kxud003x01mtxmccegnh"},
                       {"DAG_AUTHOR", "finance", EntityType::DagTag, "clyn6kxud003x01mtxmccegnh"}});
  return t;
}
}  // namespace

TEST_CASE("v1 answers decode with scope - kind - lastRotatedAt and DAG roles", "[astro][json]") {
  // The simulator's own v1 encoder stands for the server side.
  ApiToken t = dag_token();
  t.token = SecretValue("secret-value");
  auto decoded = json::decode_token(sim::v1::encode_token(t, true), ApiVersion::V1);
  REQUIRE(decoded.ok());
  CHECK(same(*decoded, t));
  CHECK(decoded->kind == TokenKind::DirectAccess);
  CHECK(decoded->last_rotated_at == t.last_rotated_at);
  CHECK(decoded->roles == t.roles);

  json::TokenPage page{{dag_token(), sample_token()}, 2, 0, 1000};
  auto decoded_page = json::decode_token_page(sim::v1::encode_token_page(page), ApiVersion::V1);
  REQUIRE(decoded_page.ok());
  REQUIRE(decoded_page->tokens.size() == 2);
  CHECK(same(decoded_page->tokens[0], page.tokens[0]));
  CHECK(decoded_page->tokens[1].kind == TokenKind::Standard);
  CHECK_FALSE(decoded_page->tokens[1].last_rotated_at);

  // v1beta1 says `type`, which a v1 answer lacks, and v1 requires `kind`.
  auto beta = json::decode_token(json::encode_token(sample_token(), false), ApiVersion::V1);
  REQUIRE_FALSE(beta.ok());
  CHECK(beta.error().message == "missing required field scope");
  auto no_kind = json::decode_token(
      R"({"id":"c1","name":"x","description":"","scope":"ORGANIZATION","shortToken":"s",)"
      R"("createdAt":"2026-01-02T03:04:05Z","updatedAt":"2026-01-02T03:04:05Z",)"
      R"("startAt":"2026-01-02T03:04:05Z"})",
      ApiVersion::V1);
  REQUIRE_FALSE(no_kind.ok());
  CHECK(no_kind.error().message == "missing required field kind");
  auto bad_kind = json::decode_token(
      R"({"id":"c1","name":"x","description":"","scope":"ORGANIZATION","kind":"SPECIAL",)"
      R"("shortToken":"s","createdAt":"2026-01-02T03:04:05Z","updatedAt":"2026-01-02T03:04:05Z",)"
      R"("startAt":"2026-01-02T03:04:05Z"})",
      ApiVersion::V1);
  REQUIRE_FALSE(bad_kind.ok());
  CHECK(bad_kind.error().message == "kind must be one of DIRECT_ACCESS, STANDARD");
  auto dag_scope = json::decode_token(
      R"({"id":"c1","name":"x","description":"","scope":"DAG","kind":"STANDARD",)"
      R"("shortToken":"s","createdAt":"2026-01-02T03:04:05Z","updatedAt":"2026-01-02T03:04:05Z",)"
      R"("startAt":"2026-01-02T03:04:05Z"})",
      ApiVersion::V1);
  REQUIRE_FALSE(dag_scope.ok());
  CHECK(dag_scope.error().message == "scope must be one of DEPLOYMENT, WORKSPACE, ORGANIZATION");
}

TEST_CASE("a v1 deploymentId is kept on DAG and DAG_TAG roles only", "[astro][json]") {
  auto token = json::decode_token(
      R"({"id":"c1","name":"x","description":"","scope":"DEPLOYMENT","kind":"STANDARD",)"
      R"("shortToken":"s","createdAt":"2026-01-02T03:04:05Z","updatedAt":"2026-01-02T03:04:05Z",)"
      R"("startAt":"2026-01-02T03:04:05Z","roles":[)"
      R"({"role":"DEPLOYMENT_ADMIN","entityId":"cdep","entityType":"DEPLOYMENT","deploymentId":"cdep"},)"
      R"({"role":"DAG_VIEWER","entityId":"etl","entityType":"DAG","deploymentId":"cdep"}]})",
      ApiVersion::V1);
  REQUIRE(token.ok());
  CHECK(token->roles == normalize_roles({{"DEPLOYMENT_ADMIN", "cdep", EntityType::Deployment},
                                         {"DAG_VIEWER", "etl", EntityType::Dag, "cdep"}}));
  auto bad_entity = json::decode_token(
      R"({"id":"c1","name":"x","description":"","scope":"DEPLOYMENT","kind":"STANDARD",)"
      R"("shortToken":"s","createdAt":"2026-01-02T03:04:05Z","updatedAt":"2026-01-02T03:04:05Z",)"
      R"("startAt":"2026-01-02T03:04:05Z","roles":[{"role":"r","entityId":"e","entityType":"TAG"}]})",
      ApiVersion::V1);
  REQUIRE_FALSE(bad_entity.ok());
  CHECK(bad_entity.error().message ==
        "roles[0].entityType must be one of DAG, DAG_TAG, DEPLOYMENT, ORGANIZATION, WORKSPACE");
}

TEST_CASE("v1 requests carry scope - kind and deploymentId as the simulator reads them",
          "[astro][json]") {
  CreateTokenRequest create{"n",    "d", EntityType::Deployment, "DEPLOYMENT_ADMIN",
                            "cdep", 7,   TokenKind::DirectAccess};
  const std::string v1_create = json::encode_create_request(create, ApiVersion::V1);
  CHECK(v1_create.find(R"("scope":"DEPLOYMENT")") != std::string::npos);
  CHECK(v1_create.find(R"("kind":"DIRECT_ACCESS")") != std::string::npos);
  CHECK(v1_create.find(R"("type")") == std::string::npos);
  auto c = sim::v1::decode_create_request(v1_create);
  REQUIRE(c.ok());
  CHECK(c->type == EntityType::Deployment);
  CHECK(c->kind == TokenKind::DirectAccess);
  CHECK(c->expiry_period_in_days == 7);
  create.kind = TokenKind::Standard;
  CHECK(json::encode_create_request(create, ApiVersion::V1).find(R"("kind":"STANDARD")") !=
        std::string::npos);
  const std::string beta_create = json::encode_create_request(create);
  CHECK(beta_create.find(R"("type":"DEPLOYMENT")") != std::string::npos);
  CHECK(beta_create.find("scope") == std::string::npos);
  CHECK(beta_create.find("kind") == std::string::npos);

  const RoleSet roles = dag_token().roles;
  const std::string v1_roles = json::encode_roles_request(roles, ApiVersion::V1);
  auto r = sim::v1::decode_roles_request(v1_roles);
  REQUIRE(r.ok());
  CHECK(normalize_roles(*r) == roles);
  // deploymentId only where it names the DAG's deployment.
  CHECK(v1_roles.find(R"({"entityId":"clyn6kxud003x01mtxmccegnh","entityType":"DEPLOYMENT")") !=
        std::string::npos);
  CHECK(json::encode_roles_request(sample_token().roles).find("deploymentId") == std::string::npos);
}

TEST_CASE("v1 error bodies show their fieldErrors in the message", "[astro][json]") {
  sim::v1::ErrorBody sent{
      "invalid request",
      "req-1",
      400,
      {{"required", "roles[1].deploymentId", "deploymentId is required for DAG"},
       {"invalid", "name", "invalid request"}}};
  auto e = json::decode_error(sim::v1::encode_error(sent));
  REQUIRE(e);
  CHECK(e->message == "invalid request");
  CHECK(e->request_id == "req-1");
  REQUIRE(e->field_errors.size() == 2);
  CHECK(e->field_errors[0].field == "roles[1].deploymentId");
  CHECK(json::describe(*e) ==
        "invalid request (roles[1].deploymentId: deploymentId is required for DAG; name: invalid)");
  CHECK(json::describe({"plain", "req-2", 404, {}}) == "plain");
  // A fieldErrors list that cannot be read leaves the rest of the error intact.
  auto broken = json::decode_error(R"({"message":"m","fieldErrors":[{"code":1}]})");
  REQUIRE(broken);
  CHECK(broken->message == "m");
  CHECK(broken->field_errors.empty());
}
