// astro-api-sim held to the published contracts: every route of both
// versions, success and error paths, through the Prism validating proxies
// (support/prism.h): v1 (v1.yaml) and v1beta1 (iam.yaml, platform.yaml).
#include <catch2/catch.hpp>

#include "astro/json.h"
#include "sim/v1_json.h"
#include "support/http.h"
#include "support/prism.h"
#include "support/sim.h"

using namespace tokend;
using namespace tokend::testing;

namespace {

SimOptions contract_options() {
  SimOptions options;
  options.rate_limits = false;  // 429 is not among the contract's answers
  options.serve_v1beta1 = true;
  return options;
}

// Sends one request through the router and checks that Prism saw no violation.
struct ContractClient {
  const SimProcess& sim;
  const PrismHarness& prism;

  HttpResponse send(const std::string& method, const std::string& path,
                    const std::string& body = "",
                    std::optional<std::string> bearer = std::nullopt) const {
    HttpHeaders headers = bearer_header(bearer.value_or(sim.bearer_token()));
    HttpResponse r = http_request({method, prism.base_url() + path, headers, body});
    INFO(method << " " << path << " -> " << r.status << " " << r.body.substr(0, 300));
    CHECK(prism_violation(r) == std::nullopt);
    return r;
  }
};

}  // namespace

TEST_CASE("every v1beta1 simulator route honours the published contract", "[contract]") {
  SimProcess sim(contract_options());
  PrismHarness prism(sim.base_url());
  ContractClient api{sim, prism};
  const std::string iam = "/iam/v1beta1/organizations/" + sim.org_id();
  const std::string platform = "/platform/v1beta1/organizations/" + sim.org_id();
  const std::string tokens = iam + "/tokens";
  const std::string ws = kSimWorkspaceId;
  const std::string dep = kSimDeploymentId;

  // CreateApiToken: 200 for each type, 400 and 404 on bad entities.
  std::vector<astro::ApiToken> created;
  for (const astro::CreateTokenRequest& request :
       {astro::CreateTokenRequest{"org", "an organization token", EntityType::Organization,
                                  "ORGANIZATION_OWNER", "", 30},
        astro::CreateTokenRequest{"ws", "", EntityType::Workspace, "WORKSPACE_AUTHOR", ws,
                                  std::nullopt},
        astro::CreateTokenRequest{"dep", "d", EntityType::Deployment, "DEPLOYMENT_ADMIN", dep,
                                  3650}}) {
    HttpResponse r = api.send("POST", tokens, astro::json::encode_create_request(request));
    REQUIRE(r.status == 200);
    auto token = astro::json::decode_token(r.body);
    REQUIRE(token.ok());
    CHECK_FALSE(token->token.empty());
    created.push_back(*token);
  }
  CHECK(api.send("POST", tokens, R"({"name":"x","type":"ORGANIZATION","role":"WORKSPACE_OWNER"})")
            .status == 400);
  CHECK(api.send("POST", tokens, R"({"name":"x","type":"WORKSPACE","role":"WORKSPACE_OWNER"})")
            .status == 400);
  CHECK(
      api.send("POST", tokens,
               R"({"name":"x","type":"WORKSPACE","role":"WORKSPACE_OWNER","entityId":"cmissing"})")
          .status == 404);
  const std::string org_token = created[0].id;
  const std::string ws_token = created[1].id;
  const std::string dep_token = created[2].id;

  // ListApiTokens with every query parameter.
  for (const std::string& query : std::vector<std::string>{
           "", "?limit=1000", "?offset=1&limit=1", "?workspaceId=" + ws, "?deploymentId=" + dep,
           "?includeOnlyOrganizationTokens=true", "?sorts=name:asc&sorts=createdAt:desc",
           "?sorts=tokenStartAt:desc&limit=0"}) {
    HttpResponse r = api.send("GET", tokens + query);
    CHECK(r.status == 200);
  }

  // GetApiToken, UpdateApiToken, UpdateApiTokenRoles, RotateApiToken.
  CHECK(api.send("GET", tokens + "/" + ws_token).status == 200);
  CHECK(api.send("GET", tokens + "/cnosuchtoken0000000000000").status == 404);
  CHECK(api.send("POST", tokens + "/" + ws_token, R"({"name":"renamed","description":"new"})")
            .status == 200);
  CHECK(api.send("POST", tokens + "/" + ws_token, R"({"name":"only a name"})").status == 200);
  CHECK(api.send("POST", tokens + "/cnosuchtoken0000000000000", R"({"name":"x"})").status == 404);
  const std::string roles_org = astro::json::encode_roles_request(
      {{"ORGANIZATION_MEMBER", sim.org_id(), EntityType::Organization},
       {"WORKSPACE_OWNER", ws, EntityType::Workspace},
       {"DEPLOYMENT_ADMIN", dep, EntityType::Deployment}});
  CHECK(api.send("POST", tokens + "/" + org_token + "/roles", roles_org).status == 200);
  CHECK(api.send("POST", tokens + "/" + ws_token + "/roles",
                 astro::json::encode_roles_request({{"WORKSPACE_MEMBER", ws, EntityType::Workspace},
                                                    {"Custom_Role", dep, EntityType::Deployment}}))
            .status == 200);
  CHECK(api.send("POST", tokens + "/" + dep_token + "/roles",
                 astro::json::encode_roles_request(
                     {{"DEPLOYMENT_ADMIN", dep, EntityType::Deployment}}))
            .status == 200);
  // The newer observe roles are held but not echoed in SubjectRoles (not in its enum).
  CHECK(api.send("POST", tokens + "/" + org_token + "/roles",
                 astro::json::encode_roles_request(
                     {{"ORGANIZATION_OBSERVE_ADMIN", sim.org_id(), EntityType::Organization}}))
            .status == 200);
  CHECK(api.send("POST", tokens + "/" + ws_token + "/roles",
                 astro::json::encode_roles_request(
                     {{"DEPLOYMENT_ADMIN", dep, EntityType::Deployment}}))
            .status == 400);
  CHECK(api.send("POST", tokens + "/cnosuchtoken0000000000000/roles", roles_org).status == 404);
  HttpResponse rotated = api.send("POST", tokens + "/" + dep_token + "/rotate");
  CHECK(rotated.status == 200);
  CHECK(astro::json::decode_token(rotated.body)->id == dep_token);
  CHECK(api.send("POST", tokens + "/cnosuchtoken0000000000000/rotate").status == 404);

  // Platform lookups, with repeated list parameters (the contract's form).
  CHECK(api.send("GET", platform + "/workspaces").status == 200);
  CHECK(api.send("GET",
                 platform + "/workspaces?workspaceIds=" + ws + "&workspaceIds=cother&limit=1000")
            .status == 200);
  CHECK(api.send("GET", platform + "/workspaces?sorts=name:asc&offset=0").status == 200);
  CHECK(api.send("GET", platform + "/deployments?deploymentIds=" + dep + "&deploymentIds=cother")
            .status == 200);
  CHECK(api.send("GET", platform + "/deployments?workspaceIds=" + ws + "&limit=5000").status ==
        200);

  // 401 with a wrong bearer token, and 403 for another organization, on every operation.
  const std::string wrong = "wrong-token";
  CHECK(api.send("GET", tokens, "", wrong).status == 401);
  CHECK(api.send("POST", tokens,
                 astro::json::encode_create_request(
                     {"x", "", EntityType::Organization, "ORGANIZATION_MEMBER", "", 1}),
                 wrong)
            .status == 401);
  CHECK(api.send("GET", tokens + "/" + ws_token, "", wrong).status == 401);
  CHECK(api.send("POST", tokens + "/" + ws_token, R"({"name":"x"})", wrong).status == 401);
  CHECK(api.send("POST", tokens + "/" + ws_token + "/roles", roles_org, wrong).status == 401);
  CHECK(api.send("POST", tokens + "/" + ws_token + "/rotate", "", wrong).status == 401);
  CHECK(api.send("DELETE", tokens + "/" + ws_token, "", wrong).status == 401);
  CHECK(api.send("GET", platform + "/workspaces", "", wrong).status == 401);
  CHECK(api.send("GET", platform + "/deployments", "", wrong).status == 401);
  CHECK(api.send("GET", "/iam/v1beta1/organizations/cotherorg0000000000000000/tokens").status ==
        403);
  CHECK(api.send("GET", "/platform/v1beta1/organizations/cotherorg0000000000000000/workspaces")
            .status == 403);

  // DeleteApiToken: 204, then 404.
  CHECK(api.send("DELETE", tokens + "/" + ws_token).status == 204);
  CHECK(api.send("DELETE", tokens + "/" + ws_token).status == 404);
  CHECK(sim.control().requests().total > 40);
  INFO(prism.log());
  CHECK(prism.logged_violations() == "");
}

TEST_CASE("every v1 simulator route honours the v1 contract", "[contract]") {
  SimProcess sim(contract_options());
  PrismHarness prism(sim.base_url(), {.api = PrismApi::V1});
  ContractClient api{sim, prism};
  const std::string base = "/v1/organizations/" + sim.org_id();
  const std::string tokens = base + "/tokens";
  const std::string ws = kSimWorkspaceId;
  const std::string dep = kSimDeploymentId;
  const std::string missing = "/cnosuchtoken0000000000000";

  // CreateApiToken: 200 for each scope and kind, 400 and 404 on bad bodies and entities.
  std::vector<astro::ApiToken> created;
  for (const astro::CreateTokenRequest& request :
       {astro::CreateTokenRequest{"org", "an organization token", EntityType::Organization,
                                  "ORGANIZATION_OWNER", "", 30, TokenKind::Standard},
        astro::CreateTokenRequest{"ws", "", EntityType::Workspace, "WORKSPACE_AUTHOR", ws,
                                  std::nullopt, TokenKind::DirectAccess},
        astro::CreateTokenRequest{"dep", "d", EntityType::Deployment, "DEPLOYMENT_ADMIN", dep, 3650,
                                  TokenKind::DirectAccess}}) {
    HttpResponse r = api.send("POST", tokens, sim::v1::encode_create_request(request));
    REQUIRE(r.status == 200);
    auto token = sim::v1::decode_token(r.body);
    REQUIRE(token.ok());
    CHECK_FALSE(token->token.empty());
    CHECK(token->kind == request.kind);
    created.push_back(*token);
  }
  CHECK(api.send("POST", tokens,
                 R"({"name":"x","scope":"ORGANIZATION","role":"ORGANIZATION_MEMBER"})")
            .status == 200);  // kind is optional
  CHECK(api.send("POST", tokens, R"({"name":"x","scope":"ORGANIZATION","role":"WORKSPACE_OWNER"})")
            .status == 400);
  CHECK(api.send("POST", tokens, R"({"name":"x","scope":"WORKSPACE","role":"WORKSPACE_OWNER"})")
            .status == 400);
  CHECK(
      api.send("POST", tokens,
               R"({"name":"x","scope":"WORKSPACE","role":"WORKSPACE_OWNER","entityId":"cmissing"})")
          .status == 404);
  const std::string org_token = created[0].id;
  const std::string ws_token = created[1].id;
  const std::string dep_token = created[2].id;

  // UpdateApiTokenRoles: DAG and DAG_TAG roles with deploymentId; 400 with fieldErrors.
  const std::string dag_roles =
      sim::v1::encode_roles_request({{"DEPLOYMENT_ADMIN", dep, EntityType::Deployment},
                                     {"DAG_VIEWER", "etl_daily", EntityType::Dag, dep},
                                     {"DAG_AUTHOR", "finance", EntityType::DagTag, dep},
                                     {"Custom_Dag_Role", "reports", EntityType::DagTag, dep}});
  HttpResponse roles = api.send("POST", tokens + "/" + dep_token + "/roles", dag_roles);
  CHECK(roles.status == 200);
  CHECK(roles.body.find("\"dagRoles\":[{") != std::string::npos);
  const std::string roles_org = sim::v1::encode_roles_request(
      {{"ORGANIZATION_OBSERVE_ADMIN", sim.org_id(), EntityType::Organization},
       {"WORKSPACE_OWNER", ws, EntityType::Workspace},
       {"DEPLOYMENT_ADMIN", dep, EntityType::Deployment}});
  CHECK(api.send("POST", tokens + "/" + org_token + "/roles", roles_org).status == 200);
  CHECK(api.send("POST", tokens + "/" + ws_token + "/roles",
                 sim::v1::encode_roles_request({{"WORKSPACE_MEMBER", ws, EntityType::Workspace},
                                                {"Custom_Role", dep, EntityType::Deployment}}))
            .status == 200);
  for (const RoleSet& bad : std::vector<RoleSet>{
           {{"DEPLOYMENT_ADMIN", dep, EntityType::Deployment},
            {"DAG_VIEWER", "etl_daily", EntityType::Dag}},
           {{"DEPLOYMENT_ADMIN", dep, EntityType::Deployment},
            {"DAG_VIEWER", "etl_daily", EntityType::Dag, "cnosuchdeployment00000000"}},
           {{"DEPLOYMENT_ADMIN", dep, EntityType::Deployment, dep}}}) {
    HttpResponse refused =
        api.send("POST", tokens + "/" + dep_token + "/roles", sim::v1::encode_roles_request(bad));
    CHECK(refused.status == 400);
    auto error = sim::v1::decode_error(refused.body);
    REQUIRE(error);
    CHECK(error->field_errors.size() == 1);
  }
  CHECK(api.send("POST", tokens + "/" + ws_token + "/roles",
                 sim::v1::encode_roles_request({{"WORKSPACE_MEMBER", ws, EntityType::Workspace},
                                                {"DAG_VIEWER", "etl_daily", EntityType::Dag, dep}}))
            .status == 400);
  CHECK(api.send("POST", tokens + missing + "/roles", roles_org).status == 404);

  // ListApiTokens with every query parameter, arrays as repeated keys.
  for (const std::string& query : std::vector<std::string>{
           "", "?limit=1000", "?offset=1&limit=1", "?workspaceId=" + ws, "?deploymentId=" + dep,
           "?dagId=etl_daily", "?dagTags=finance&dagTags=reports", "?kind=DIRECT_ACCESS",
           "?kind=STANDARD", "?includeOnlyOrganizationTokens=true", "?sorts=createdAt:asc",
           "?sorts=createdAt:desc&sorts=name:asc", "?sorts=tokenStartAt:desc&limit=0"}) {
    HttpResponse r = api.send("GET", tokens + query);
    CHECK(r.status == 200);
  }
  CHECK(sim::v1::decode_token_page(api.send("GET", tokens + "?dagTags=finance").body)
            ->tokens.size() == 1);

  // GetApiToken, UpdateApiToken, RotateApiToken.
  HttpResponse got = api.send("GET", tokens + "/" + dep_token);
  CHECK(got.status == 200);
  CHECK(sim::v1::decode_token(got.body)->roles.size() == 4);
  CHECK(api.send("GET", tokens + missing).status == 404);
  CHECK(api.send("POST", tokens + "/" + ws_token, R"({"name":"renamed","description":"new"})")
            .status == 200);
  CHECK(api.send("POST", tokens + "/" + ws_token, R"({"name":"only a name"})").status == 200);
  CHECK(api.send("POST", tokens + missing, R"({"name":"x"})").status == 404);
  HttpResponse rotated = api.send("POST", tokens + "/" + dep_token + "/rotate");
  CHECK(rotated.status == 200);
  auto rotated_token = sim::v1::decode_token(rotated.body);
  REQUIRE(rotated_token.ok());
  CHECK(rotated_token->id == dep_token);
  CHECK(rotated_token->last_rotated_at);
  CHECK(api.send("POST", tokens + missing + "/rotate").status == 404);

  // Lookups, with repeated list parameters.
  CHECK(api.send("GET", base + "/workspaces").status == 200);
  CHECK(api.send("GET", base + "/workspaces?workspaceIds=" + ws + "&workspaceIds=cother&limit=1000")
            .status == 200);
  CHECK(api.send("GET", base + "/workspaces?sorts=name:asc&names=x&offset=0").status == 200);
  CHECK(api.send("GET", base + "/deployments?deploymentIds=" + dep + "&deploymentIds=cother")
            .status == 200);
  CHECK(api.send("GET", base + "/deployments?workspaceIds=" + ws + "&limit=5000").status == 200);

  // 401 with a wrong bearer token, and 403 for another organization, on every operation.
  const std::string wrong = "wrong-token";
  CHECK(api.send("GET", tokens, "", wrong).status == 401);
  CHECK(api.send("POST", tokens,
                 sim::v1::encode_create_request(
                     {"x", "", EntityType::Organization, "ORGANIZATION_MEMBER", "", 1}),
                 wrong)
            .status == 401);
  CHECK(api.send("GET", tokens + "/" + ws_token, "", wrong).status == 401);
  CHECK(api.send("POST", tokens + "/" + ws_token, R"({"name":"x"})", wrong).status == 401);
  CHECK(api.send("POST", tokens + "/" + ws_token + "/roles", roles_org, wrong).status == 401);
  CHECK(api.send("POST", tokens + "/" + ws_token + "/rotate", "", wrong).status == 401);
  CHECK(api.send("DELETE", tokens + "/" + ws_token, "", wrong).status == 401);
  CHECK(api.send("GET", base + "/workspaces", "", wrong).status == 401);
  CHECK(api.send("GET", base + "/deployments", "", wrong).status == 401);
  const std::string other = "/v1/organizations/cotherorg0000000000000000";
  CHECK(api.send("GET", other + "/tokens").status == 403);
  CHECK(api.send("GET", other + "/tokens/" + ws_token).status == 403);
  CHECK(api.send("GET", other + "/workspaces").status == 403);
  CHECK(api.send("GET", other + "/deployments").status == 403);

  // DeleteApiToken: 204, then 404.
  CHECK(api.send("DELETE", tokens + "/" + ws_token).status == 204);
  CHECK(api.send("DELETE", tokens + "/" + ws_token).status == 404);
  // Only v1 paths were asked for.
  RequestStats stats = sim.control().requests();
  CHECK(stats.total > 50);
  for (const sim::LoggedRequest& r : stats.requests) CHECK(r.path.starts_with("/v1/"));
  // The v1 harness routes nothing else.
  HttpResponse beta = http_request(
      {"GET", prism.base_url() + "/iam/v1beta1/organizations/" + sim.org_id() + "/tokens",
       bearer_header(sim.bearer_token()), ""});
  CHECK(beta.status == 404);
  CHECK(beta.header("X-Prism-Router") == "no-route");
  CHECK(prism.v1_proxy_url() != "");
  CHECK(prism.iam_proxy_url() == "");
  INFO(prism.log());
  CHECK(prism.logged_violations() == "");
}

TEST_CASE("the contract harness reports violations and passes drops through", "[contract]") {
  SimProcess sim(contract_options());
  PrismHarness prism(sim.base_url());
  const std::string tokens = "/iam/v1beta1/organizations/" + sim.org_id() + "/tokens";
  HttpHeaders auth = bearer_header(sim.bearer_token());

  // A request that breaks the contract never reaches the simulator.
  HttpResponse bad_request =
      http_request({"GET", prism.base_url() + tokens + "?limit=1001", auth, ""});
  CHECK(bad_request.status == 422);
  auto request_violation = prism_violation(bad_request);
  REQUIRE(request_violation);
  CHECK(request_violation->find("limit") != std::string::npos);

  // An answer the contract does not declare is flagged.
  sim.control().set_faults({fail_next("ListApiTokens", 503, 1)});
  HttpResponse undeclared = http_request({"GET", prism.base_url() + tokens, auth, ""});
  CHECK(undeclared.status == 503);
  auto response_violation = prism_violation(undeclared);
  REQUIRE(response_violation);
  CHECK(response_violation->find("sl-violations") != std::string::npos);

  // A missing bearer token is answered by Prism itself.
  HttpResponse anonymous = http_request({"GET", prism.base_url() + tokens, {}, ""});
  CHECK(anonymous.status == 401);
  CHECK(prism_violation(anonymous));

  // A path outside both APIs is the router's 404.
  HttpResponse nowhere = http_request({"GET", prism.base_url() + "/elsewhere", auth, ""});
  CHECK(nowhere.status == 404);
  CHECK(nowhere.header("X-Prism-Router") == "no-route");

  // A connection the simulator drops is dropped through the harness too.
  sim.control().set_faults({drop_next("CreateApiToken", 1, sim::DropWhen::After)});
  HttpResponse dropped =
      http_request({"POST", prism.base_url() + tokens, auth,
                    astro::json::encode_create_request(
                        {"lost", "", EntityType::Organization, "ORGANIZATION_MEMBER", "", 1})});
  CHECK(dropped.status == 0);
  CHECK(sim.control().tokens().size() == 1);
  CHECK(prism.log().find("Prism is listening on") != std::string::npos);
  // The log holds what the answers showed; a second call finds the same
  // (sentinel lines are always left out).
  std::string logged = prism.logged_violations();
  INFO(logged);
  CHECK(logged.find("UNPROCESSABLE_ENTITY") != std::string::npos);
  CHECK(logged.find("Unable to match the returned status code") != std::string::npos);
  CHECK(prism.logged_violations() == logged);
}
