// astro-api-sim over real HTTP: the binary started by SimProcess on port 0.
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <thread>

#include "astro/json.h"
#include "support/http.h"
#include "support/process.h"
#include "support/sim.h"

using namespace tokend;
using namespace tokend::testing;

namespace {

std::string workspace_token_body(const std::string& name, int expiry_days = 30) {
  astro::CreateTokenRequest request{
      name,       "made by a test", EntityType::Workspace, "WORKSPACE_OWNER", kSimWorkspaceId,
      expiry_days};
  return astro::json::encode_create_request(request);
}

std::string tokens_path(const SimProcess& sim) {
  return "/iam/v1beta1/organizations/" + sim.org_id() + "/tokens";
}

std::string error_message(const HttpResponse& r) {
  auto error = astro::json::decode_error(r.body);
  return error ? error->message : "(not an Error body: " + r.body + ")";
}

// Every Error body carries message, requestId and statusCode equal to the status.
void check_error_shape(const HttpResponse& r) {
  auto error = astro::json::decode_error(r.body);
  REQUIRE(error);
  CHECK_FALSE(error->message.empty());
  CHECK_FALSE(error->request_id.empty());
  CHECK(error->status_code == r.status);
}

SimOptions no_limits() {
  SimOptions options;
  options.rate_limits = false;
  options.serve_v1beta1 = true;
  return options;
}

bool looks_like_api_id(const std::string& id) {
  if (id.size() != 25 || id[0] != 'c') return false;
  for (char c : id)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  return true;
}

}  // namespace

TEST_CASE("the whole token lifecycle over HTTP", "[sim]") {
  SimProcess sim(no_limits());
  const std::string tokens = tokens_path(sim);

  HttpResponse created = sim.api("POST", tokens, workspace_token_body("ci deployer"));
  REQUIRE(created.status == 200);
  auto token = astro::json::decode_token(created.body);
  REQUIRE(token.ok());
  CHECK(looks_like_api_id(token->id));
  CHECK(token->name == "ci deployer");
  CHECK(token->type == EntityType::Workspace);
  CHECK(token->expiry_period_in_days == 30);
  REQUIRE(token->end_at);
  CHECK(*token->end_at - token->start_at == std::chrono::days(30));
  CHECK(token->roles == RoleSet{{"WORKSPACE_OWNER", kSimWorkspaceId, EntityType::Workspace}});
  const std::string value = token->token.reveal();
  CHECK(std::count(value.begin(), value.end(), '.') == 2);
  CHECK(value.find(token->short_token) == std::string::npos);

  SECTION("get answers the token without its value") {
    HttpResponse got = sim.api("GET", tokens + "/" + token->id);
    REQUIRE(got.status == 200);
    CHECK(got.body.find(value) == std::string::npos);
    auto fetched = astro::json::decode_token(got.body);
    REQUIRE(fetched.ok());
    CHECK(fetched->token.empty());
    CHECK(fetched->attrs() == token->attrs());
  }

  SECTION("update changes name and description only") {
    HttpResponse updated = sim.api("POST", tokens + "/" + token->id,
                                   R"({"name":"renamed","description":"new words"})");
    REQUIRE(updated.status == 200);
    auto after = astro::json::decode_token(updated.body);
    REQUIRE(after.ok());
    CHECK(after->name == "renamed");
    CHECK(after->description == "new words");
    CHECK(after->roles == token->roles);
    CHECK(after->token.empty());
    HttpResponse name_only = sim.api("POST", tokens + "/" + token->id, R"({"name":"again"})");
    REQUIRE(name_only.status == 200);
    CHECK(astro::json::decode_token(name_only.body)->description == "new words");
  }

  SECTION("roles are replaced and answered as SubjectRoles") {
    RoleSet roles = {{"WORKSPACE_OPERATOR", kSimWorkspaceId, EntityType::Workspace},
                     {"DEPLOYMENT_ADMIN", kSimDeploymentId, EntityType::Deployment}};
    HttpResponse answer = sim.api("POST", tokens + "/" + token->id + "/roles",
                                  astro::json::encode_roles_request(roles));
    REQUIRE(answer.status == 200);
    CHECK(answer.body.find("\"workspaceRoles\":[{\"role\":\"WORKSPACE_OPERATOR\"") !=
          std::string::npos);
    CHECK(answer.body.find("\"deploymentRoles\":[{\"deploymentId\":\"" +
                           std::string(kSimDeploymentId)) != std::string::npos);
    auto after = astro::json::decode_token(sim.api("GET", tokens + "/" + token->id).body);
    REQUIRE(after.ok());
    CHECK(after->roles == normalize_roles(roles));
  }

  SECTION("rotate keeps the id and issues a new value and window") {
    sim::TokenPatch aged;
    aged.start_at = token->start_at - std::chrono::days(10);
    aged.end_at = std::optional<Timestamp>(token->start_at + std::chrono::days(20));
    sim.control().patch_token(token->id, aged);
    HttpResponse rotated = sim.api("POST", tokens + "/" + token->id + "/rotate");
    REQUIRE(rotated.status == 200);
    auto after = astro::json::decode_token(rotated.body);
    REQUIRE(after.ok());
    CHECK(after->id == token->id);
    CHECK_FALSE(after->token.empty());
    CHECK(after->token.reveal() != value);
    CHECK(after->start_at >= token->start_at);
    REQUIRE(after->end_at);
    CHECK(*after->end_at - after->start_at == std::chrono::days(30));
    CHECK(after->short_token != token->short_token);
    auto issued = sim.control().issued_values();
    CHECK(issued == std::vector<std::string>{value, after->token.reveal()});
  }

  SECTION("delete answers 204, then 404") {
    HttpResponse deleted = sim.api("DELETE", tokens + "/" + token->id);
    CHECK(deleted.status == 204);
    CHECK(deleted.body.empty());
    HttpResponse again = sim.api("DELETE", tokens + "/" + token->id);
    CHECK(again.status == 404);
    check_error_shape(again);
    CHECK(sim.api("GET", tokens + "/" + token->id).status == 404);
  }
}

TEST_CASE("listing pages with offset - limit and totalCount", "[sim]") {
  SimProcess sim(no_limits());
  sim::NewToken templ{
      {"bulk", "", EntityType::Organization, "ORGANIZATION_MEMBER", "", std::nullopt},
      std::nullopt,
      ""};
  auto created = sim.control().create_tokens(templ, 2345);
  REQUIRE(created.ids.size() == 2345);
  CHECK(created.values.empty());
  const std::string tokens = tokens_path(sim);

  auto page = astro::json::decode_token_page(sim.api("GET", tokens).body);
  REQUIRE(page.ok());
  CHECK(page->limit == 20);
  CHECK(page->offset == 0);
  CHECK(page->total_count == 2345);
  CHECK(page->tokens.size() == 20);

  std::vector<std::string> seen;
  for (int offset = 0; offset < 2345; offset += 1000) {
    HttpResponse r = sim.api("GET", tokens + "?limit=1000&offset=" + std::to_string(offset));
    REQUIRE(r.status == 200);
    auto p = astro::json::decode_token_page(r.body);
    REQUIRE(p.ok());
    CHECK(p->total_count == 2345);
    CHECK(p->limit == 1000);
    CHECK(p->offset == offset);
    for (const auto& t : p->tokens) seen.push_back(t.id);
  }
  CHECK(seen == created.ids);

  HttpResponse too_big = sim.api("GET", tokens + "?limit=1001");
  CHECK(too_big.status == 400);
  CHECK(error_message(too_big) == "limit must be at most 1000");
  HttpResponse negative = sim.api("GET", tokens + "?offset=-1");
  CHECK(negative.status == 400);
  CHECK(error_message(negative) == "offset must be a non-negative integer");
  HttpResponse bad_sort = sim.api("GET", tokens + "?sorts=colour:asc");
  CHECK(bad_sort.status == 400);
  CHECK(error_message(bad_sort).starts_with("sorts: 'colour:asc' is not one of"));
}

TEST_CASE("validation answers 400 with a message naming the field", "[sim]") {
  SimProcess sim(no_limits());
  const std::string tokens = tokens_path(sim);
  struct Case {
    std::string body;
    int status;
    std::string message;
  };
  const std::string ws = kSimWorkspaceId;
  const std::vector<Case> cases = {
      {"not json", 400, "body is not valid JSON"},
      {R"({"type":"WORKSPACE","role":"WORKSPACE_OWNER"})", 400, "missing required field name"},
      {R"({"name":"x","role":"WORKSPACE_OWNER"})", 400, "missing required field type"},
      {R"({"name":"x","type":"WORKSPACE"})", 400, "missing required field role"},
      {R"({"name":"x","type":"TEAM","role":"r"})", 400,
       "type must be one of DEPLOYMENT, WORKSPACE, ORGANIZATION"},
      {R"({"name":"","type":"ORGANIZATION","role":"ORGANIZATION_MEMBER"})", 400,
       "name must be between 1 and 256 characters long"},
      {R"({"name":")" + std::string(257, 'n') +
           R"(","type":"ORGANIZATION","role":"ORGANIZATION_MEMBER"})",
       400, "name must be between 1 and 256 characters long"},
      {R"({"name":"x","description":")" + std::string(501, 'd') +
           R"(","type":"ORGANIZATION","role":"ORGANIZATION_MEMBER"})",
       400, "description must be at most 500 characters long"},
      {R"({"name":"x","type":"ORGANIZATION","role":"ORGANIZATION_MEMBER","tokenExpiryPeriodInDays":0})",
       400, "tokenExpiryPeriodInDays must be between 1 and 3650"},
      {R"({"name":"x","type":"ORGANIZATION","role":"ORGANIZATION_MEMBER","tokenExpiryPeriodInDays":3651})",
       400, "tokenExpiryPeriodInDays must be between 1 and 3650"},
      {R"({"name":"x","type":"ORGANIZATION","role":"WORKSPACE_OWNER"})", 400,
       "role WORKSPACE_OWNER is not a valid role for a token of type ORGANIZATION"},
      {R"({"name":"x","type":"WORKSPACE","role":"DEPLOYMENT_ADMIN","entityId":")" + ws + R"("})",
       400, "role DEPLOYMENT_ADMIN is not a valid role for a token of type WORKSPACE"},
      {R"({"name":"x","type":"DEPLOYMENT","role":"WORKSPACE_OWNER","entityId":"d"})", 400,
       "role WORKSPACE_OWNER is not a valid role for a token of type DEPLOYMENT"},
      {R"({"name":"x","type":"WORKSPACE","role":"WORKSPACE_OWNER"})", 400,
       "entityId is required for a WORKSPACE token"},
      {R"({"name":"x","type":"WORKSPACE","role":"WORKSPACE_OWNER","entityId":"cnosuchworkspace000000000"})",
       404, "workspace cnosuchworkspace000000000 not found"},
      {R"({"name":"x","type":"DEPLOYMENT","role":"DEPLOYMENT_ADMIN","entityId":"cnosuchdeployment00000000"})",
       404, "deployment cnosuchdeployment00000000 not found"},
  };
  for (const Case& c : cases) {
    INFO(c.body.substr(0, 120));
    HttpResponse r = sim.api("POST", tokens, c.body);
    CHECK(r.status == c.status);
    check_error_shape(r);
    CHECK(error_message(r).starts_with(c.message));
  }
  // Code points, not bytes: 256 two-byte characters are a valid name.
  std::string name;
  for (int i = 0; i < 256; ++i) name += "\xc3\xa9";
  CHECK(sim.api("POST", tokens, workspace_token_body(name)).status == 200);
  // A custom Deployment role is accepted.
  CHECK(sim.api("POST", tokens,
                R"({"name":"x","type":"DEPLOYMENT","role":"Deployment_Viewer","entityId":")" +
                    std::string(kSimDeploymentId) + R"("})")
            .status == 200);

  auto token = astro::json::decode_token(sim.api("POST", tokens, workspace_token_body("t")).body);
  REQUIRE(token.ok());
  const std::string roles_path = tokens + "/" + token->id + "/roles";
  const std::string dep = kSimDeploymentId;
  const std::string org = sim.org_id();
  const std::vector<Case> role_cases = {
      {R"({"roles":[]})", 400, "roles must contain at least one role"},
      {R"({"roles":[{"role":"DEPLOYMENT_ADMIN","entityId":")" + dep +
           R"(","entityType":"DEPLOYMENT"}]})",
       400,
       "roles must contain exactly one role with entityType WORKSPACE (the token's type), found 0"},
      {R"({"roles":[{"role":"WORKSPACE_OWNER","entityId":"cnowhere","entityType":"WORKSPACE"}]})",
       400, "roles[0].entityId: workspace cnowhere not found"},
      {R"({"roles":[{"role":"WORKSPACE_OWNER","entityId":")" + ws +
           R"(","entityType":"WORKSPACE"},{"role":"ORGANIZATION_MEMBER","entityId":")" + org +
           R"(","entityType":"ORGANIZATION"}]})",
       400, "roles[1]: a WORKSPACE token cannot have an ORGANIZATION role"},
      {R"({"roles":[{"role":"ORGANIZATION_OWNER","entityId":")" + ws +
           R"(","entityType":"WORKSPACE"}]})",
       400, "roles[0].role ORGANIZATION_OWNER is not a valid WORKSPACE role"},
      {R"({"roles":[{"role":"WORKSPACE_OWNER","entityId":")" + ws + R"(","entityType":"TEAM"}]})",
       400, "roles[0].entityType must be one of DEPLOYMENT, WORKSPACE, ORGANIZATION"},
      {R"({"roles":[{"role":"WORKSPACE_OWNER","entityType":"WORKSPACE"}]})", 400,
       "missing required field roles[0].entityId"},
  };
  for (const Case& c : role_cases) {
    INFO(c.body);
    HttpResponse r = sim.api("POST", roles_path, c.body);
    CHECK(r.status == c.status);
    check_error_shape(r);
    CHECK(error_message(r) == c.message);
  }
  HttpResponse bad_update = sim.api("POST", tokens + "/" + token->id, R"({"description":"d"})");
  CHECK(bad_update.status == 400);
  CHECK(error_message(bad_update) == "missing required field name");
  // Nothing changed on any of these.
  auto after = astro::json::decode_token(sim.api("GET", tokens + "/" + token->id).body);
  REQUIRE(after.ok());
  CHECK(after->attrs() == token->attrs());
}

TEST_CASE("the bearer token is required and never logged", "[sim]") {
  SimProcess sim(no_limits());
  const std::string url = sim.base_url() + tokens_path(sim);
  HttpResponse missing = http_request({"GET", url, {}, ""});
  CHECK(missing.status == 401);
  check_error_shape(missing);
  HttpResponse wrong = http_request({"GET", url, bearer_header("not-the-token"), ""});
  CHECK(wrong.status == 401);
  check_error_shape(wrong);
  HttpResponse other_scheme =
      http_request({"GET", url, {{"Authorization", "Basic " + sim.bearer_token()}}, ""});
  CHECK(other_scheme.status == 401);
  HttpResponse platform = http_request({"GET", sim.platform_url() + "/workspaces", {}, ""});
  CHECK(platform.status == 401);
  CHECK(sim.api("GET", tokens_path(sim)).status == 200);

  HttpResponse other_org =
      sim.api("GET", "/iam/v1beta1/organizations/cotherorg0000000000000000/tokens");
  CHECK(other_org.status == 403);
  check_error_shape(other_org);
  HttpResponse unknown = sim.api("GET", "/iam/v1beta1/organizations/" + sim.org_id() + "/teams");
  CHECK(unknown.status == 404);
  check_error_shape(unknown);
  HttpResponse wrong_method = sim.api("PUT", tokens_path(sim));
  CHECK(wrong_method.status == 405);
  check_error_shape(wrong_method);

  // Secrets stay out of the log, which still names every request.
  HttpResponse created = sim.api("POST", tokens_path(sim), workspace_token_body("secret holder"));
  REQUIRE(created.status == 200);
  std::string value = astro::json::decode_token(created.body)->token.reveal();
  REQUIRE(sim.stop() == 0);
  std::string log = sim.stderr_text();
  CHECK(log.find(sim.bearer_token()) == std::string::npos);
  CHECK(log.find(value) == std::string::npos);
  CHECK(log.find("method=POST path=/iam/v1beta1/organizations/" + sim.org_id() +
                 "/tokens status=200 operation=CreateApiToken") != std::string::npos);
  CHECK(log.find("status=401 operation=ListApiTokens") != std::string::npos);
}

TEST_CASE("curl walks the whole lifecycle (POSTs without a body included)", "[sim]") {
  SimProcess sim(no_limits());
  const std::string api = sim.iam_url();
  const std::string auth = "Authorization: Bearer " + sim.bearer_token();
  auto curl = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/curl",  "-sS", "--max-time", "10", "-w",
                                     "\n%{http_code}", "-H",  auth};
    argv.insert(argv.end(), args.begin(), args.end());
    ProcessResult r = run_process(argv, {.env = {},
                                         .unset_env = {},
                                         .cwd = "",
                                         .stdin_data = "",
                                         .timeout = std::chrono::seconds(20)});
    REQUIRE(r.exit_code == 0);
    auto newline = r.out.rfind('\n');
    return std::make_pair(std::stoi(r.out.substr(newline + 1)), r.out.substr(0, newline));
  };
  auto [created_status, created_body] =
      curl({"-H", "Content-Type: application/json", "-X", "POST", api + "/tokens", "-d",
            workspace_token_body("ci deployer")});
  REQUIRE(created_status == 200);
  std::string id = astro::json::decode_token(created_body)->id;
  CHECK(curl({api + "/tokens?limit=1000"}).first == 200);
  CHECK(curl({api + "/tokens/" + id}).first == 200);
  CHECK(curl({"-X", "POST", api + "/tokens/" + id, "-d", R"({"name":"renamed"})"}).first == 200);
  CHECK(curl({"-X", "POST", api + "/tokens/" + id + "/roles", "-d",
              R"({"roles":[{"role":"WORKSPACE_OWNER","entityId":")" + std::string(kSimWorkspaceId) +
                  R"(","entityType":"WORKSPACE"}]})"})
            .first == 200);
  auto start = std::chrono::steady_clock::now();
  auto [rotated_status, rotated_body] = curl({"-X", "POST", api + "/tokens/" + id + "/rotate"});
  CHECK(rotated_status == 200);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
  CHECK(astro::json::decode_token(rotated_body)->id == id);
  CHECK(curl({"-X", "DELETE", api + "/tokens/" + id}).first == 204);
  CHECK(curl({"-X", "DELETE", api + "/tokens/" + id}).first == 404);
}
