// The dispatcher in process: both API versions over one organization, each in
// its own shape, and v1 fieldErrors.
#include <catch2/catch.hpp>

#include "astro/json.h"
#include "sim/api.h"
#include "sim/bodies.h"
#include "sim/v1_json.h"

using namespace tokend;
using namespace tokend::sim;

namespace {

constexpr const char* kOrg = "clx42kkcm01fo01o06agtmshg";
constexpr const char* kDep = "clyn6kxud003x01mtxmccegnh";
constexpr const char* kBearer = "Bearer test-token";

struct Fixture {
  FixedClock clock{*parse_rfc3339("2025-03-01T10:00:00Z")};
  Seed seed = default_seed(*parse_rfc3339("2024-01-01T00:00:00Z"));
  Organization org{kOrg, seed.workspaces, seed.deployments, clock};
  Simulator sim{org, {"test-token", std::nullopt}};

  SimResponse call(const std::string& method, const std::string& path,
                   const std::string& body = "") {
    auto q = path.find('?');
    std::string query = q == std::string::npos ? "" : path.substr(q + 1);
    return sim.handle({method, path.substr(0, q), query, kBearer, body});
  }
};

const std::string v1_tokens = std::string("/v1/organizations/") + kOrg + "/tokens";
const std::string iam_tokens = std::string("/iam/v1beta1/organizations/") + kOrg + "/tokens";

std::string dag_roles_body() {
  return v1::encode_roles_request({{"DEPLOYMENT_ADMIN", kDep, EntityType::Deployment},
                                   {"DAG_VIEWER", "etl", EntityType::Dag, kDep},
                                   {"DAG_AUTHOR", "finance", EntityType::DagTag, kDep}});
}

}  // namespace

TEST_CASE("field errors name the field a validation message starts with", "[sim]") {
  struct Case {
    std::string message;
    std::optional<v1::FieldError> expected;
  };
  for (const Case& c : std::vector<Case>{
           {"roles[1].deploymentId is required for a DAG role",
            v1::FieldError{"required", "roles[1].deploymentId",
                           "roles[1].deploymentId is required for a DAG role"}},
           {"roles[0].deploymentId: deployment cgone not found",
            v1::FieldError{"not_found", "roles[0].deploymentId",
                           "roles[0].deploymentId: deployment cgone not found"}},
           {"missing required field scope",
            v1::FieldError{"required", "scope", "missing required field scope"}},
           {"roles[1]: a WORKSPACE token cannot have a DAG role",
            v1::FieldError{"invalid", "roles[1]",
                           "roles[1]: a WORKSPACE token cannot have a DAG role"}},
           {"sorts: 'x' is not one of name:asc|desc",
            v1::FieldError{"invalid", "sorts", "sorts: 'x' is not one of name:asc|desc"}},
           {"kind must be one of DIRECT_ACCESS, STANDARD",
            v1::FieldError{"invalid", "kind", "kind must be one of DIRECT_ACCESS, STANDARD"}},
           {"body is not valid JSON: unexpected end", std::nullopt},
           {"a DEPLOYMENT token cannot have a WORKSPACE role", std::nullopt},
           {"the query string is not correctly percent-encoded", std::nullopt},
           {"", std::nullopt},
       }) {
    INFO(c.message);
    CHECK(field_error_of(c.message) == c.expected);
  }
}

TEST_CASE("v1 and v1beta1 serve one organization - each in its own shape", "[sim]") {
  Fixture f;
  astro::CreateTokenRequest request{"dep", "", EntityType::Deployment, "DEPLOYMENT_ADMIN",
                                    kDep,  30, TokenKind::DirectAccess};
  SimResponse created = f.call("POST", v1_tokens, v1::encode_create_request(request));
  REQUIRE(created.status == 200);
  CHECK(created.operation == "CreateApiToken");
  auto token = v1::decode_token(created.body);
  REQUIRE(token.ok());
  CHECK(token->kind == TokenKind::DirectAccess);
  CHECK_FALSE(token->token.empty());
  const std::string id = token->id;

  SimResponse roles = f.call("POST", v1_tokens + "/" + id + "/roles", dag_roles_body());
  REQUIRE(roles.status == 200);
  auto held = v1::decode_subject_roles(roles.body, kOrg);
  REQUIRE(held.ok());
  CHECK(held->size() == 3);

  f.clock.advance(std::chrono::hours(2));
  SimResponse rotated = f.call("POST", v1_tokens + "/" + id + "/rotate");
  REQUIRE(rotated.status == 200);
  CHECK(v1::decode_token(rotated.body)->last_rotated_at == f.clock.now());

  // v1 shows everything.
  auto v1_view = v1::decode_token(f.call("GET", v1_tokens + "/" + id).body);
  REQUIRE(v1_view.ok());
  CHECK(v1_view->roles.size() == 3);
  CHECK(v1_view->last_rotated_at == f.clock.now());
  CHECK(v1_view->kind == TokenKind::DirectAccess);

  // v1beta1 shows the same token without what its contract cannot express.
  SimResponse beta = f.call("GET", iam_tokens + "/" + id);
  REQUIRE(beta.status == 200);
  CHECK(beta.body.find("\"type\":\"DEPLOYMENT\"") != std::string::npos);
  for (const char* absent : {"scope", "kind", "lastRotatedAt", "DAG", "deploymentId"}) {
    INFO(absent);
    CHECK(beta.body.find(absent) == std::string::npos);
  }
  auto beta_token = astro::json::decode_token(beta.body);
  REQUIRE(beta_token.ok());
  CHECK(beta_token->roles == RoleSet{{"DEPLOYMENT_ADMIN", kDep, EntityType::Deployment}});
  SimResponse beta_list = f.call("GET", iam_tokens);
  CHECK(beta_list.body.find("DAG") == std::string::npos);
  CHECK(astro::json::decode_token_page(beta_list.body)->tokens.size() == 1);

  // A v1beta1 roles update replaces what it can see and keeps the DAG roles.
  SimResponse beta_roles =
      f.call("POST", iam_tokens + "/" + id + "/roles",
             astro::json::encode_roles_request({{"Custom_Role", kDep, EntityType::Deployment}}));
  REQUIRE(beta_roles.status == 200);
  CHECK(beta_roles.body.find("DAG") == std::string::npos);
  auto after = v1::decode_token(f.call("GET", v1_tokens + "/" + id).body);
  CHECK(after->roles == normalize_roles({{"Custom_Role", kDep, EntityType::Deployment},
                                         {"DAG_VIEWER", "etl", EntityType::Dag, kDep},
                                         {"DAG_AUTHOR", "finance", EntityType::DagTag, kDep}}));
  // v1beta1 cannot name DAG roles at all.
  SimResponse beta_dag = f.call("POST", iam_tokens + "/" + id + "/roles", dag_roles_body());
  CHECK(beta_dag.status == 400);
}

TEST_CASE("v1 400 answers carry fieldErrors - v1beta1 ones do not", "[sim]") {
  Fixture f;
  auto token = f.org.create_token(
      {"dep", "", EntityType::Deployment, "DEPLOYMENT_ADMIN", kDep, std::nullopt});
  REQUIRE(token.ok());
  const std::string missing_deployment = v1::encode_roles_request(
      {{"DEPLOYMENT_ADMIN", kDep, EntityType::Deployment}, {"DAG_VIEWER", "etl", EntityType::Dag}});
  SimResponse r = f.call("POST", v1_tokens + "/" + token->id + "/roles", missing_deployment);
  CHECK(r.status == 400);
  auto error = v1::decode_error(r.body);
  REQUIRE(error);
  CHECK(error->status_code == 400);
  CHECK(error->message == "roles[1].deploymentId is required for a DAG role");
  CHECK(error->field_errors ==
        std::vector<v1::FieldError>{{"required", "roles[1].deploymentId",
                                     "roles[1].deploymentId is required for a DAG role"}});

  struct Case {
    std::string method, path, body;
    int status;
    std::string message, field;  // field "": no fieldErrors
  };
  for (const Case& c : std::vector<Case>{
           {"POST", v1_tokens, R"({"name":"x","type":"WORKSPACE","role":"WORKSPACE_OWNER"})", 400,
            "missing required field scope", "scope"},
           {"POST", v1_tokens,
            R"({"name":"x","scope":"ORGANIZATION","role":"ORGANIZATION_MEMBER","kind":"X"})", 400,
            "kind must be one of DIRECT_ACCESS, STANDARD", "kind"},
           {"GET", v1_tokens + "?kind=SOMETIMES", "", 400,
            "kind must be one of DIRECT_ACCESS, STANDARD", "kind"},
           {"GET", v1_tokens + "?sorts=createdAt:asc,name:asc", "", 400,
            "sorts: 'createdAt:asc,name:asc' is not one of name:asc|desc description:asc|desc "
            "createdAt:asc|desc updatedAt:asc|desc tokenStartAt:asc|desc",
            "sorts"},
           {"POST", v1_tokens + "/" + token->id + "/roles",
            v1::encode_roles_request({{"DEPLOYMENT_ADMIN", kDep, EntityType::Deployment},
                                      {"DAG_VIEWER", "etl", EntityType::Dag, "cgone"}}),
            400, "roles[1].deploymentId: deployment cgone not found", "roles[1].deploymentId"},
           {"POST", v1_tokens, "{", 400, "", ""},
           {"GET", v1_tokens + "/cnosuchtoken0000000000000", "", 404,
            "API token cnosuchtoken0000000000000 not found", ""},
           {"POST", iam_tokens, R"({"name":"x","type":"WORKSPACE","role":"WORKSPACE_OWNER"})", 400,
            "entityId is required for a WORKSPACE token", ""},
       }) {
    INFO(c.method << " " << c.path << " " << c.body);
    SimResponse answer = f.call(c.method, c.path, c.body);
    CHECK(answer.status == c.status);
    auto e = v1::decode_error(answer.body);
    REQUIRE(e);
    if (!c.message.empty()) CHECK(e->message == c.message);
    if (c.field.empty()) {
      CHECK(e->field_errors.empty());
      CHECK(answer.body.find("fieldErrors") == std::string::npos);
    } else {
      REQUIRE(e->field_errors.size() == 1);
      CHECK(e->field_errors[0].field == c.field);
      CHECK(e->field_errors[0].message == c.message);
    }
  }
}

TEST_CASE("v1 routes - list parameters that repeat - and the lookups", "[sim]") {
  Fixture f;
  for (const char* name : {"b", "a", "c"})
    REQUIRE(f.org
                .create_token(
                    {name, "", EntityType::Organization, "ORGANIZATION_MEMBER", "", std::nullopt})
                .ok());
  auto names = [&](const std::string& path) {
    SimResponse r = f.call("GET", path);
    REQUIRE(r.status == 200);
    auto page = v1::decode_token_page(r.body);
    REQUIRE(page.ok());
    std::string out;
    for (const auto& t : page->tokens) out += t.name;
    return out;
  };
  CHECK(names(v1_tokens) == "bac");
  CHECK(names(v1_tokens + "?sorts=name:desc") == "cba");
  CHECK(names(v1_tokens + "?sorts=createdAt:asc&sorts=name:asc") == "abc");
  CHECK(names(v1_tokens + "?kind=STANDARD&limit=2") == "ba");
  CHECK(names(v1_tokens + "?kind=DIRECT_ACCESS").empty());
  CHECK(names(v1_tokens + "?dagId=etl").empty());
  // v1beta1 still takes comma-separated lists.
  SimResponse beta = f.call("GET", iam_tokens + "?sorts=createdAt:asc,name:asc");
  CHECK(beta.status == 200);

  const std::string v1_base = std::string("/v1/organizations/") + kOrg;
  SimResponse deployments = f.call(
      "GET", v1_base + "/deployments?deploymentIds=" + std::string(kDep) + "&deploymentIds=cother");
  REQUIRE(deployments.status == 200);
  CHECK(deployments.operation == "ListDeployments");
  CHECK(deployments.body.find(R"("apiUrl":"https://)") != std::string::npos);
  CHECK(deployments.body.find(R"("uiUrl":"https://)") != std::string::npos);
  CHECK(astro::json::decode_id_page(deployments.body, "deployments")->ids ==
        std::vector<std::string>{kDep});
  // A comma-joined v1 list is one (unknown) id.
  SimResponse joined =
      f.call("GET", v1_base + "/deployments?deploymentIds=" + std::string(kDep) + ",cother");
  CHECK(astro::json::decode_id_page(joined.body, "deployments")->ids.empty());
  SimResponse beta_deployments =
      f.call("GET", std::string("/platform/v1beta1/organizations/") + kOrg + "/deployments");
  CHECK(beta_deployments.body.find("apiUrl") == std::string::npos);
  SimResponse workspaces = f.call("GET", v1_base + "/workspaces?limit=1000");
  CHECK(workspaces.status == 200);
  CHECK(workspaces.operation == "ListWorkspaces");

  struct Case {
    std::string method, path;
    int status;
    std::string operation;
  };
  for (const Case& c : std::vector<Case>{
           {"DELETE", v1_tokens, 405, "unknown"},
           {"GET", v1_base + "/tokens/", 404, "unknown"},
           {"GET", v1_base + "/tokens/cx/rotate", 405, "unknown"},
           {"GET", "/v1/organizations/" + std::string(kOrg), 404, "unknown"},
           {"GET", "/v1/organizations/cother/tokens", 403, "ListApiTokens"},
           {"GET", "/v2/organizations/" + std::string(kOrg) + "/tokens", 404, "unknown"},
           {"GET", "/iam/v1beta1/organizations/" + std::string(kOrg) + "/deployments", 404,
            "unknown"},
           {"GET", "/platform/v1beta1/organizations/" + std::string(kOrg) + "/tokens", 404,
            "unknown"},
       }) {
    INFO(c.method << " " << c.path);
    SimResponse r = f.call(c.method, c.path);
    CHECK(r.status == c.status);
    CHECK(r.operation == c.operation);
  }
  SimResponse anonymous = f.sim.handle({"GET", v1_tokens, "", "", ""});
  CHECK(anonymous.status == 401);
}

TEST_CASE("serving v1 only answers 404 on every v1beta1 route and logs it", "[sim]") {
  FixedClock clock{*parse_rfc3339("2025-03-01T10:00:00Z")};
  Seed seed = default_seed(*parse_rfc3339("2024-01-01T00:00:00Z"));
  Organization org{kOrg, seed.workspaces, seed.deployments, clock};
  SimulatorOptions options{"test-token", std::nullopt};
  options.serve_v1beta1 = false;
  Simulator sim{org, options};
  auto call = [&](const std::string& method, const std::string& path) {
    return sim.handle({method, path, "", kBearer, ""});
  };
  CHECK(call("GET", v1_tokens).status == 200);
  const size_t tokens_before = org.all_tokens().size();
  for (const std::string& path :
       {iam_tokens, std::string("/platform/v1beta1/organizations/") + kOrg + "/workspaces"}) {
    INFO(path);
    SimResponse r = call("GET", path);
    CHECK(r.status == 404);
    CHECK(r.body.find("v1beta1 is not served") != std::string::npos);
    CHECK(r.operation == "unknown");
  }
  CHECK(call("POST", iam_tokens).status == 404);
  CHECK(org.all_tokens().size() == tokens_before);
}
