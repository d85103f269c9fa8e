// JSON bodies of the simulator's seed file, controls and Platform pages.
#include <catch2/catch.hpp>

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include "astro/json.h"
#include "sim/bodies.h"

using namespace tokend;
using namespace tokend::sim;

namespace {

Timestamp at(const char* text) { return *parse_rfc3339(text); }

bool same(const NewToken& a, const NewToken& b) {
  return a.id == b.id && a.roles == b.roles && a.request.name == b.request.name &&
         a.request.description == b.request.description && a.request.type == b.request.type &&
         a.request.kind == b.request.kind && a.request.role == b.request.role &&
         a.request.entity_id == b.request.entity_id &&
         a.request.expiry_period_in_days == b.request.expiry_period_in_days;
}

Poco::JSON::Object::Ptr first_item(const std::string& body, const std::string& collection) {
  Poco::JSON::Parser parser;
  auto root = parser.parse(body).extract<Poco::JSON::Object::Ptr>();
  return root->getArray(collection)->getObject(0);
}

}  // namespace

TEST_CASE("bulk create bodies round-trip", "[sim]") {
  BulkCreate request;
  request.include_values = true;
  request.tokens.push_back(
      {{"a \"quoted\" name", "d", EntityType::Workspace, "WORKSPACE_OWNER",
        "clx42sxw501gl01o0gjenthnh", 30},
       RoleSet{{"WORKSPACE_OWNER", "clx42sxw501gl01o0gjenthnh", EntityType::Workspace},
               {"DEPLOYMENT_ADMIN", "clyn6kxud003x01mtxmccegnh", EntityType::Deployment}},
       "cfixed0000000000000000001"});
  request.tokens.push_back(
      {{"dags", "", EntityType::Deployment, "DEPLOYMENT_ADMIN", "clyn6kxud003x01mtxmccegnh",
        std::nullopt, TokenKind::DirectAccess},
       RoleSet{{"DEPLOYMENT_ADMIN", "clyn6kxud003x01mtxmccegnh", EntityType::Deployment},
               {"DAG_VIEWER", "etl", EntityType::Dag, "clyn6kxud003x01mtxmccegnh"}},
       ""});
  request.tokens.push_back(
      {{"org", "", EntityType::Organization, "ORGANIZATION_MEMBER", "", std::nullopt},
       std::nullopt,
       ""});
  auto decoded = decode_bulk_create(encode_bulk_create(request));
  REQUIRE(decoded.ok());
  CHECK(decoded->include_values);
  REQUIRE(decoded->tokens.size() == 3);
  CHECK(same(decoded->tokens[0], request.tokens[0]));
  CHECK(same(decoded->tokens[1], request.tokens[1]));
  CHECK(same(decoded->tokens[2], request.tokens[2]));
  CHECK(
      encode_new_token(request.tokens[1]).find(R"("scope":"DEPLOYMENT","kind":"DIRECT_ACCESS")") !=
      std::string::npos);

  auto templated = decode_bulk_create(
      R"({"template":{"name":"n","type":"ORGANIZATION","role":"ORGANIZATION_MEMBER"},"count":3})");
  REQUIRE(templated.ok());
  REQUIRE(templated->tokens.size() == 3);
  CHECK(templated->tokens[2].request.name == "n-3");
  CHECK(templated->tokens[2].request.type == EntityType::Organization);  // "type" still works
  CHECK_FALSE(templated->include_values);
  auto v1_template = decode_bulk_create(
      R"({"template":{"name":"n","scope":"ORGANIZATION","kind":"DIRECT_ACCESS","role":"ORGANIZATION_MEMBER"},"count":1})");
  REQUIRE(v1_template.ok());
  CHECK(v1_template->tokens[0].request.kind == TokenKind::DirectAccess);

  BulkCreated created{{"c1", "c2"}, {"v1", "v2"}};
  auto answer = decode_bulk_created(encode_bulk_created(created));
  REQUIRE(answer.ok());
  CHECK(answer->ids == created.ids);
  CHECK(answer->values == created.values);
  BulkCreated ids_only{{"c1"}, {}};
  CHECK(encode_bulk_created(ids_only) == R"({"ids":["c1"]})");

  for (const char* bad : {R"({})", R"({"tokens":[],"template":{},"count":1})",
                          R"({"template":{"name":"n","type":"ORGANIZATION","role":"r"},"count":0})",
                          R"({"tokens":[{"name":"n"}]})", R"({"tokens":[],"extra":true})"}) {
    INFO(bad);
    CHECK_FALSE(decode_bulk_create(bad).ok());
  }
  CHECK(decode_bulk_create(R"({"tokens":[{"name":"n"}]})").error().message ==
        "tokens[0]: missing required field scope");
  CHECK(decode_bulk_create(R"({"tokens":[{"name":"n","type":"DAG","role":"DAG_VIEWER"}]})")
            .error()
            .message == "tokens[0]: type must be one of DEPLOYMENT, WORKSPACE, ORGANIZATION");
  CHECK(decode_bulk_create(R"({"tokens":[{"name":"n","scope":"DAG_TAG","role":"DAG_VIEWER"}]})")
            .error()
            .message == "tokens[0]: scope must be one of DEPLOYMENT, WORKSPACE, ORGANIZATION");
}

TEST_CASE("token patches round-trip - including cleared fields", "[sim]") {
  TokenPatch patch;
  patch.name = "n";
  patch.description = "";
  patch.roles = RoleSet{{"ORGANIZATION_OWNER", "corg", EntityType::Organization},
                        {"DAG_VIEWER", "etl", EntityType::Dag, "cdep"}};
  patch.kind = TokenKind::DirectAccess;
  patch.last_rotated_at = std::optional<Timestamp>();
  patch.start_at = at("2024-01-01T00:00:00Z");
  patch.created_at = at("2023-01-01T00:00:00Z");
  patch.updated_at = at("2024-02-01T00:00:00Z");
  patch.end_at = std::optional<Timestamp>();
  patch.last_used_at = std::optional<Timestamp>(at("2024-03-01T00:00:00Z"));
  patch.expiry_period_in_days = std::optional<int>(90);
  auto decoded = decode_token_patch(encode_token_patch(patch));
  REQUIRE(decoded.ok());
  CHECK(decoded->name == patch.name);
  CHECK(decoded->description == patch.description);
  CHECK(decoded->roles == patch.roles);
  CHECK(decoded->kind == patch.kind);
  CHECK(decoded->last_rotated_at == patch.last_rotated_at);
  CHECK(decoded->start_at == patch.start_at);
  CHECK(decoded->created_at == patch.created_at);
  CHECK(decoded->updated_at == patch.updated_at);
  CHECK(decoded->end_at == patch.end_at);
  CHECK(decoded->last_used_at == patch.last_used_at);
  CHECK(decoded->expiry_period_in_days == patch.expiry_period_in_days);

  auto empty = decode_token_patch(encode_token_patch(TokenPatch{}));
  REQUIRE(empty.ok());
  CHECK_FALSE(empty->name);
  CHECK_FALSE(empty->end_at);
  CHECK(encode_token_patch(TokenPatch{}) == "{}");

  CHECK(decode_token_patch(R"({"startAt":null})").error().message == "startAt cannot be null");
  CHECK(decode_token_patch(R"({"endAt":"yesterday"})").error().message ==
        "endAt is not a date-time such as 2024-01-02T03:04:05Z");
  CHECK(decode_token_patch(R"({"name":null})").error().message == "name must be a string");
  CHECK(decode_token_patch(R"({"expiryPeriodInDays":0})").error().message ==
        "expiryPeriodInDays must be between 1 and 3650");
  CHECK(decode_token_patch(R"({"ttl":1})").error().message == "unknown field ttl");
  CHECK(decode_token_patch(R"({"kind":"SOMETIMES"})").error().message ==
        "kind must be one of DIRECT_ACCESS, STANDARD");
  CHECK(decode_token_patch(R"({"lastRotatedAt":"2024-05-06T07:08:09Z"})")->last_rotated_at ==
        std::optional<Timestamp>(at("2024-05-06T07:08:09Z")));
}

TEST_CASE("seed files", "[sim]") {
  Timestamp now = at("2025-01-01T00:00:00Z");
  Seed defaults = default_seed(now);
  REQUIRE(defaults.workspaces.size() == 1);
  CHECK(defaults.workspaces[0].id == "clx42sxw501gl01o0gjenthnh");
  REQUIRE(defaults.deployments.size() == 1);
  CHECK(defaults.deployments[0].id == "clyn6kxud003x01mtxmccegnh");
  CHECK(defaults.deployments[0].workspace_id == "clx42sxw501gl01o0gjenthnh");
  CHECK(defaults.tokens.empty());

  auto seed = decode_seed(R"({"workspaces":[{"id":"w1","name":"one"}],
                              "deployments":[{"id":"d1","workspaceId":"w1"}],
                              "tokens":[{"name":"t","type":"WORKSPACE","role":"WORKSPACE_OWNER","entityId":"w1"}]})",
                          now);
  REQUIRE(seed.ok());
  CHECK(seed->workspaces[0].name == "one");
  CHECK(seed->deployments[0].name == "d1");  // the id when no name is given
  CHECK(seed->tokens[0].request.entity_id == "w1");
  CHECK(decode_seed("{}", now)->workspaces.empty());

  struct Case {
    std::string json;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {R"({"workspace":[]})",
            "unknown field workspace (expected workspaces, deployments, tokens)"},
           {R"({"workspaces":[{"name":"x"}]})", "workspaces[0].id is required"},
           {R"({"workspaces":[{"id":"w"},{"id":"w"}]})", "workspaces[1].id w is repeated"},
           {R"({"deployments":[{"id":"d"}]})", "deployments[0].workspaceId is required"},
           {R"({"deployments":[{"id":"d","workspaceId":"nowhere"}]})",
            "deployments[0].workspaceId nowhere is not a seeded workspace"},
           {R"({"tokens":[{"name":1}]})", "tokens[0]: name must be a string"},
           {R"({"workspaces":{}})", "workspaces must be an array"},
       }) {
    INFO(c.json);
    auto bad = decode_seed(c.json, now);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().message == c.message);
  }
}

TEST_CASE("Workspace and Deployment pages carry every field the contract requires", "[sim]") {
  Timestamp now = at("2025-01-01T00:00:00Z");
  Seed seed = default_seed(now);
  FixedClock clock(now);
  Organization org("corg", seed.workspaces, seed.deployments, clock);

  Page<Workspace> workspaces{seed.workspaces, 1, 0, 20};
  std::string ws_body = encode_workspace_page(workspaces, "corg");
  auto ws_ids = astro::json::decode_id_page(ws_body, "workspaces");
  REQUIRE(ws_ids.ok());
  CHECK(ws_ids->ids == std::vector<std::string>{"clx42sxw501gl01o0gjenthnh"});
  auto ws = first_item(ws_body, "workspaces");
  for (const char* field :
       {"cicdEnforcedDefault", "createdAt", "id", "name", "organizationId", "updatedAt"}) {
    INFO(field);
    CHECK(ws->has(field));
  }
  CHECK(ws->getValue<std::string>("organizationId") == "corg");

  Page<Deployment> deployments{seed.deployments, 1, 0, 20};
  std::string dep_body = encode_deployment_page(deployments, org, ApiVersion::V1Beta1);
  auto dep_ids = astro::json::decode_id_page(dep_body, "deployments");
  REQUIRE(dep_ids.ok());
  CHECK(dep_ids->total_count == 1);
  auto dep = first_item(dep_body, "deployments");
  for (const char* field : {"airflowVersion",
                            "astroRuntimeVersion",
                            "createdAt",
                            "createdBy",
                            "id",
                            "imageRepository",
                            "imageTag",
                            "isCicdEnforced",
                            "isDagDeployEnabled",
                            "name",
                            "namespace",
                            "organizationId",
                            "runtimeVersion",
                            "schedulerCpu",
                            "schedulerMemory",
                            "schedulerReplicas",
                            "status",
                            "updatedAt",
                            "updatedBy",
                            "webServerAirflowApiUrl",
                            "webServerCpu",
                            "webServerIngressHostname",
                            "webServerMemory",
                            "webServerUrl",
                            "workspaceId"}) {
    INFO(field);
    CHECK(dep->has(field));
  }
  CHECK(dep->getValue<std::string>("workspaceId") == "clx42sxw501gl01o0gjenthnh");
  CHECK(dep->getValue<std::string>("workspaceName") == "Default Workspace");
  CHECK_FALSE(dep->has("apiUrl"));
  // v1 Deployments also require apiUrl and uiUrl.
  auto v1_dep = first_item(encode_deployment_page(deployments, org, ApiVersion::V1), "deployments");
  CHECK(v1_dep->getValue<std::string>("apiUrl") == "https://sim.astronomer.run/dxmccegnh/api/v2");
  CHECK(v1_dep->getValue<std::string>("uiUrl") == "https://sim.astronomer.run/dxmccegnh");

  CHECK(decode_string_list(encode_string_list("values", {"a", "b\"c"}), "values").value() ==
        std::vector<std::string>{"a", "b\"c"});
}
