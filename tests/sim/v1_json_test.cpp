// The simulator's v1 bodies: round trips, the exact wire form of what v1 adds,
// the legacy spellings its data file and controls still accept, and errors.
#include <catch2/catch.hpp>

#include "sim/v1_json.h"

using namespace tokend;
using namespace tokend::sim;

namespace {

constexpr const char* kOrg = "clx42kkcm01fo01o06agtmshg";
constexpr const char* kWs = "clx42sxw501gl01o0gjenthnh";
constexpr const char* kDep = "clyn6kxud003x01mtxmccegnh";

Timestamp at(const char* text) { return *parse_rfc3339(text); }

astro::ApiToken dag_token() {
  astro::ApiToken t;
  t.id = "cdag00000000000000000000a";
  t.name = "dags \"quoted\"";
  t.description = "holds DAG roles";
  t.type = EntityType::Deployment;
  t.kind = TokenKind::DirectAccess;
  t.roles = normalize_roles({{"DEPLOYMENT_ADMIN", kDep, EntityType::Deployment},
                             {"DAG_VIEWER", "etl_daily", EntityType::Dag, kDep},
                             {"DAG_AUTHOR", "finance", EntityType::DagTag, kDep}});
  t.expiry_period_in_days = 30;
  t.short_token = "abc123def0";
  t.created_at = at("2025-01-01T00:00:00Z");
  t.updated_at = at("2025-01-02T00:00:00Z");
  t.start_at = at("2025-01-03T00:00:00Z");
  t.end_at = at("2025-02-02T00:00:00Z");
  t.last_used_at = at("2025-01-04T00:00:00Z");
  t.last_rotated_at = at("2025-01-03T00:00:00Z");
  t.token = SecretValue("secret.value.here");
  return t;
}

void check_same(const astro::ApiToken& a, const astro::ApiToken& b) {
  CHECK(a.id == b.id);
  CHECK(a.attrs() == b.attrs());
  CHECK(a.short_token == b.short_token);
  CHECK(a.created_at == b.created_at);
  CHECK(a.updated_at == b.updated_at);
  CHECK(a.start_at == b.start_at);
  CHECK(a.end_at == b.end_at);
  CHECK(a.last_used_at == b.last_used_at);
  CHECK(a.last_rotated_at == b.last_rotated_at);
}

}  // namespace

TEST_CASE("v1 ApiToken bodies round-trip with kind - lastRotatedAt and DAG roles", "[sim]") {
  astro::ApiToken token = dag_token();
  auto without_value = v1::decode_token(v1::encode_token(token, false));
  REQUIRE(without_value.ok());
  check_same(*without_value, token);
  CHECK(without_value->token.empty());
  auto with_value = v1::decode_token(v1::encode_token(token, true));
  REQUIRE(with_value.ok());
  CHECK(with_value->token.reveal() == "secret.value.here");

  std::string body = v1::encode_token(token, false);
  CHECK(body.find(R"("scope":"DEPLOYMENT")") != std::string::npos);
  CHECK(body.find(R"("type")") == std::string::npos);
  CHECK(body.find(R"("kind":"DIRECT_ACCESS")") != std::string::npos);
  CHECK(body.find(R"("lastRotatedAt":"2025-01-03T00:00:00Z")") != std::string::npos);
  CHECK(body.find(R"({"deploymentId":")" + std::string(kDep) +
                  R"(","entityId":"etl_daily","entityType":"DAG","role":"DAG_VIEWER"})") !=
        std::string::npos);
  // deploymentId belongs to DAG and DAG_TAG roles only.
  CHECK(body.find(R"({"entityId":")" + std::string(kDep) +
                  R"(","entityType":"DEPLOYMENT","role":"DEPLOYMENT_ADMIN"})") !=
        std::string::npos);

  astro::ApiToken plain = token;
  plain.last_rotated_at.reset();
  plain.end_at.reset();
  plain.expiry_period_in_days.reset();
  std::string plain_body = v1::encode_token(plain, false);
  CHECK(plain_body.find("lastRotatedAt") == std::string::npos);
  CHECK(plain_body.find("endAt") == std::string::npos);
  check_same(*v1::decode_token(plain_body), plain);

  astro::json::TokenPage page{{token, plain}, 7, 2, 2};
  auto decoded = v1::decode_token_page(v1::encode_token_page(page));
  REQUIRE(decoded.ok());
  CHECK(decoded->total_count == 7);
  CHECK(decoded->offset == 2);
  CHECK(decoded->limit == 2);
  REQUIRE(decoded->tokens.size() == 2);
  check_same(decoded->tokens[0], token);
  CHECK(decoded->tokens[0].token.empty());  // pages never carry values
  check_same(decoded->tokens[1], plain);
}

TEST_CASE("v1 request bodies round-trip", "[sim]") {
  astro::CreateTokenRequest request{"ci", "d", EntityType::Workspace,  "WORKSPACE_OWNER",
                                    kWs,  90,  TokenKind::DirectAccess};
  std::string body = v1::encode_create_request(request);
  CHECK(body == R"({"name":"ci","description":"d","scope":"WORKSPACE","kind":"DIRECT_ACCESS",)"
                R"("role":"WORKSPACE_OWNER","entityId":")" +
                    std::string(kWs) + R"(","tokenExpiryPeriodInDays":90})");
  auto decoded = v1::decode_create_request(body);
  REQUIRE(decoded.ok());
  CHECK(decoded->name == "ci");
  CHECK(decoded->type == EntityType::Workspace);
  CHECK(decoded->kind == TokenKind::DirectAccess);
  CHECK(decoded->entity_id == kWs);
  CHECK(decoded->expiry_period_in_days == 90);
  // kind is optional and defaults to STANDARD.
  auto standard = v1::decode_create_request(
      R"({"name":"o","scope":"ORGANIZATION","role":"ORGANIZATION_MEMBER"})");
  REQUIRE(standard.ok());
  CHECK(standard->kind == TokenKind::Standard);

  RoleSet roles = normalize_roles({{"WORKSPACE_OWNER", kWs, EntityType::Workspace},
                                   {"DAG_VIEWER", "etl", EntityType::Dag, kDep},
                                   {"custom", "tag-a", EntityType::DagTag, kDep}});
  auto roles_back = v1::decode_roles_request(v1::encode_roles_request(roles));
  REQUIRE(roles_back.ok());
  CHECK(normalize_roles(*roles_back) == roles);
}

TEST_CASE("v1 SubjectRoles carry dagRoles with dagId or dagTag", "[sim]") {
  RoleSet roles = normalize_roles({{"ORGANIZATION_OBSERVE_ADMIN", kOrg, EntityType::Organization},
                                   {"WORKSPACE_OWNER", kWs, EntityType::Workspace},
                                   {"DEPLOYMENT_ADMIN", kDep, EntityType::Deployment},
                                   {"DAG_VIEWER", "etl", EntityType::Dag, kDep},
                                   {"DAG_AUTHOR", "finance", EntityType::DagTag, kDep}});
  std::string body = v1::encode_subject_roles(roles);
  CHECK(body == R"({"organizationRole":"ORGANIZATION_OBSERVE_ADMIN","dagRoles":[)"
                R"({"dagTag":"finance","deploymentId":")" +
                    std::string(kDep) +
                    R"(","role":"DAG_AUTHOR"},{"dagId":"etl","deploymentId":")" + kDep +
                    R"(","role":"DAG_VIEWER"}],"deploymentRoles":[{"deploymentId":")" + kDep +
                    R"(","role":"DEPLOYMENT_ADMIN"}],"workspaceRoles":[{"role":"WORKSPACE_OWNER",)"
                    R"("workspaceId":")" +
                    kWs + R"("}]})");
  auto back = v1::decode_subject_roles(body, kOrg);
  REQUIRE(back.ok());
  CHECK(*back == roles);
  CHECK(v1::decode_subject_roles(R"({"dagRoles":[{"deploymentId":"d","role":"r"}]})", kOrg)
            .error()
            .message == "dagRoles[0] must have exactly one of dagId and dagTag");
}

TEST_CASE("v1 Error bodies carry fieldErrors only when there are some", "[sim]") {
  v1::ErrorBody plain{"token not found", "req-1", 404, {}};
  CHECK(v1::encode_error(plain) ==
        R"({"message":"token not found","requestId":"req-1","statusCode":404})");
  CHECK(v1::decode_error(v1::encode_error(plain)) == plain);
  v1::ErrorBody fields{"roles[0].deploymentId is required for a DAG role",
                       "req-2",
                       400,
                       {{"required", "roles[0].deploymentId", "is required"}}};
  CHECK(v1::encode_error(fields) ==
        R"({"fieldErrors":[{"code":"required","field":"roles[0].deploymentId",)"
        R"("message":"is required"}],"message":"roles[0].deploymentId is required for a DAG )"
        R"(role","requestId":"req-2","statusCode":400})");
  CHECK(v1::decode_error(v1::encode_error(fields)) == fields);
  CHECK_FALSE(v1::decode_error("not json"));
  CHECK_FALSE(v1::decode_error(R"({"status":1})"));
}

TEST_CASE("v1 decoders name the offending field - legacy spellings only where asked for", "[sim]") {
  struct Case {
    std::string body;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {R"({"name":"n","type":"WORKSPACE","role":"r"})", "missing required field scope"},
           {R"({"name":"n","scope":"DAG","role":"r"})",
            "scope must be one of DEPLOYMENT, WORKSPACE, ORGANIZATION"},
           {R"({"name":"n","scope":"WORKSPACE","role":"r","kind":"LIMITED"})",
            "kind must be one of DIRECT_ACCESS, STANDARD"},
           {R"({"name":"n","scope":"WORKSPACE","role":"r","tokenExpiryPeriodInDays":0})",
            "tokenExpiryPeriodInDays must be between 1 and 3650"},
           {"[]", "body is not a JSON object"},
       }) {
    INFO(c.body);
    auto decoded = v1::decode_create_request(c.body);
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.error().message == c.message);
  }
  auto legacy = v1::decode_create_request(R"({"name":"n","type":"WORKSPACE","role":"r"})",
                                          v1::Dialect::Legacy);
  REQUIRE(legacy.ok());
  CHECK(legacy->type == EntityType::Workspace);

  for (const Case& c : std::vector<Case>{
           {R"({"roles":[{"role":"r","entityId":"e","entityType":"TAG"}]})",
            "roles[0].entityType must be one of DAG, DAG_TAG, DEPLOYMENT, ORGANIZATION, WORKSPACE"},
           {R"({"roles":[{"role":"r","entityId":"e","entityType":"DAG","deploymentId":7}]})",
            "roles[0].deploymentId must be a string"},
           {R"({"roles":[{"role":"r","entityType":"DAG"}]})",
            "missing required field roles[0].entityId"},
           {R"({"roles":{}})", "roles must be an array"},
       }) {
    INFO(c.body);
    auto decoded = v1::decode_roles_request(c.body);
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.error().message == c.message);
  }

  // A token written before v1: type, no kind.
  const std::string old_token =
      R"({"id":"c1","name":"n","description":"","type":"ORGANIZATION","shortToken":"s",)"
      R"("createdAt":"2024-01-01T00:00:00Z","updatedAt":"2024-01-01T00:00:00Z",)"
      R"("startAt":"2024-01-01T00:00:00Z","roles":[{"entityId":"o","entityType":"ORGANIZATION",)"
      R"("role":"ORGANIZATION_OWNER"}]})";
  CHECK(v1::decode_token(old_token).error().message == "missing required field scope");
  auto old = v1::decode_token(old_token, v1::Dialect::Legacy);
  REQUIRE(old.ok());
  CHECK(old->type == EntityType::Organization);
  CHECK(old->kind == TokenKind::Standard);
  CHECK_FALSE(old->last_rotated_at);
  auto page = v1::decode_token_page(R"({"limit":1,"offset":0,"totalCount":1,"tokens":[)" +
                                    old_token + "]}");
  REQUIRE_FALSE(page.ok());
  CHECK(page.error().message == "missing required field tokens[0].scope");
}
