// HttpClient held to the published OpenAPI contracts: every operation, on its
// success and error paths, goes through Stoplight Prism validating proxies in
// front of astro-api-sim — the one v1 proxy (v1.yaml) for the default
// api_version, the IAM and Platform proxies for v1beta1. A request or response that breaks the
// contract makes Prism answer instead of the simulator (422 for a request, 500 for a response),
// which changes the outcome the test expects, and leaves a violation in Prism's log, which the test
// checks is empty.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <sstream>
#include <thread>

#include "astro/http_client.h"
#include "support/http.h"
#include "support/prism.h"
#include "support/sim.h"

using namespace tokend;
using namespace tokend::astro;
namespace t = tokend::testing;

namespace {

// Prism's log lines that report a violation or a request it refused.
std::string violation_lines(const std::string& log) {
  std::istringstream in(log);
  std::string line, found;
  while (std::getline(in, line))
    if (line.find("Violation") != std::string::npos ||
        line.find("\xe2\x9c\x96") != std::string::npos ||  // ✖
        line.find("[VALIDATOR]") != std::string::npos)
      found += line + "\n";
  return found;
}

HttpClientOptions through(const t::PrismHarness& prism, const t::SimProcess& sim) {
  HttpClientOptions options;
  options.api_url = prism.base_url();
  options.api_version = prism.api() == t::PrismApi::V1 ? ApiVersion::V1 : ApiVersion::V1Beta1;
  options.organization_id = sim.org_id();
  options.bearer_token = SecretValue(sim.bearer_token());
  options.request_timeout = std::chrono::milliseconds(30000);
  options.rate_limits = RateLimits{0, 0, 0, 1};
  options.retry.max_attempts = 1;  // a Prism error answer must not be hidden by a retry
  return options;
}

// The outcome a failed call must have: the simulator's own answer, not Prism's.
void check_api_error(const Error& error, ErrorKind kind, int http_status) {
  INFO(error.describe());
  CHECK(error.kind == kind);
  CHECK(error.http_status == http_status);
  CHECK_FALSE(error.request_id.empty());
}

}  // namespace

TEST_CASE("with api_version v1beta1 every client operation honours the v1beta1 contract",
          "[astro][contract][integration]") {
  t::SimOptions sim_options;
  sim_options.rate_limits = false;
  sim_options.serve_v1beta1 = true;
  t::SimProcess sim(sim_options);
  // 1,001 tokens beforehand, so that listing takes two pages through Prism.
  sim::NewToken templ;
  templ.request = {"seeded", "", EntityType::Deployment, "DEPLOYMENT_ADMIN", t::kSimDeploymentId,
                   90};
  REQUIRE(sim.control().create_tokens(templ, 1001).ids.size() == 1001);

  t::PrismHarness prism(sim.base_url());
  auto created_client = HttpClient::create(through(prism, sim), null_logger());
  REQUIRE(created_client.ok());
  HttpClient& client = *created_client.value();

  // --- success paths ---------------------------------------------------------
  auto organization = client.create_token(
      {"org token", "", EntityType::Organization, "ORGANIZATION_MEMBER", "", std::nullopt});
  REQUIRE(organization.ok());
  auto workspace =
      client.create_token({"workspace token", "with a description", EntityType::Workspace,
                           "WORKSPACE_OPERATOR", t::kSimWorkspaceId, 30});
  REQUIRE(workspace.ok());
  auto deployment = client.create_token({"deployment token", "", EntityType::Deployment,
                                         "DEPLOYMENT_ADMIN", t::kSimDeploymentId, 3650});
  REQUIRE(deployment.ok());

  auto listed = client.list_tokens();
  REQUIRE(listed.ok());
  CHECK(listed->tokens.size() == 1004);
  CHECK(listed->consistent);

  REQUIRE(client.get_token(workspace->id).ok());
  REQUIRE(client.update_token(workspace->id, {"renamed", ""}).ok());
  REQUIRE(
      client.update_token(organization->id, {std::string(256, 'n'), std::string(500, 'd')}).ok());
  REQUIRE(
      client
          .update_token_roles(workspace->id,
                              {{"WORKSPACE_OPERATOR", t::kSimWorkspaceId, EntityType::Workspace},
                               {"DEPLOYMENT_ADMIN", t::kSimDeploymentId, EntityType::Deployment}})
          .ok());
  REQUIRE(client
              .update_token_roles(organization->id,
                                  {{"ORGANIZATION_MEMBER", sim.org_id(), EntityType::Organization},
                                   {"WORKSPACE_MEMBER", t::kSimWorkspaceId, EntityType::Workspace}})
              .ok());
  auto rotated = client.rotate_token(deployment->id);
  REQUIRE(rotated.ok());
  CHECK_FALSE(rotated->token.empty());
  REQUIRE(client.delete_token(deployment->id).ok());

  auto workspaces = client.existing_workspaces({t::kSimWorkspaceId, "cmissingworkspace00000000"});
  REQUIRE(workspaces.ok());
  CHECK(*workspaces == std::vector<std::string>{t::kSimWorkspaceId});
  auto deployments = client.existing_deployments({t::kSimDeploymentId});
  REQUIRE(deployments.ok());
  CHECK(*deployments == std::vector<std::string>{t::kSimDeploymentId});
  auto none = client.existing_deployments({"cmissingdeployment0000000"});
  REQUIRE(none.ok());
  CHECK(none->empty());

  // --- error paths -------------------------------------------------------------
  const std::string gone = deployment->id;
  check_api_error(client.get_token(gone).error(), ErrorKind::NotFound, 404);
  check_api_error(client.update_token(gone, {"x", ""}).error(), ErrorKind::NotFound, 404);
  check_api_error(client
                      .update_token_roles(
                          gone, {{"DEPLOYMENT_ADMIN", t::kSimDeploymentId, EntityType::Deployment}})
                      .error(),
                  ErrorKind::NotFound, 404);
  check_api_error(client.rotate_token(gone).error(), ErrorKind::NotFound, 404);
  check_api_error(client.delete_token(gone).error(), ErrorKind::NotFound, 404);
  check_api_error(client
                      .create_token({"wrong role", "", EntityType::Workspace, "ORGANIZATION_OWNER",
                                     t::kSimWorkspaceId, std::nullopt})
                      .error(),
                  ErrorKind::Invalid, 400);
  check_api_error(client
                      .create_token({"unknown workspace", "", EntityType::Workspace,
                                     "WORKSPACE_OWNER", "cmissingworkspace00000000", std::nullopt})
                      .error(),
                  ErrorKind::NotFound, 404);
  check_api_error(client
                      .update_token_roles(workspace->id, {{"DEPLOYMENT_ADMIN", t::kSimDeploymentId,
                                                           EntityType::Deployment}})
                      .error(),
                  ErrorKind::Invalid, 400);

  auto wrong_token_options = through(prism, sim);
  wrong_token_options.bearer_token = SecretValue("not-the-simulators-token");
  auto wrong_token = HttpClient::create(wrong_token_options, null_logger());
  REQUIRE(wrong_token.ok());
  check_api_error(wrong_token.value()->list_tokens().error(), ErrorKind::Unauthorized, 401);
  check_api_error(wrong_token.value()
                      ->create_token({"x", "", EntityType::Organization, "ORGANIZATION_MEMBER", "",
                                      std::nullopt})
                      .error(),
                  ErrorKind::Unauthorized, 401);
  check_api_error(wrong_token.value()->existing_workspaces({t::kSimWorkspaceId}).error(),
                  ErrorKind::Unauthorized, 401);

  auto other_org_options = through(prism, sim);
  other_org_options.organization_id = "cotherorganization0000000";
  auto other_org = HttpClient::create(other_org_options, null_logger());
  REQUIRE(other_org.ok());
  check_api_error(other_org.value()->list_tokens().error(), ErrorKind::Forbidden, 403);
  check_api_error(other_org.value()->existing_deployments({t::kSimDeploymentId}).error(),
                  ErrorKind::Forbidden, 403);

  CHECK(sim.control().requests().count("ListApiTokens") == 4);

  // Prism logs asynchronously. Two requests that break the contract, one per
  // proxy, mark the end of the exchanges above: once Prism has logged both
  // refusals, it has logged everything before them.
  const std::string sentinel = "csentinel0000000000000000";
  t::HttpResponse iam_sentinel =
      t::http_request({"POST",
                       prism.base_url() + "/iam/v1beta1/organizations/" + sentinel + "/tokens/" +
                           sentinel + "/roles",
                       t::bearer_header(sim.bearer_token()), R"({"roles":[]})"});
  t::HttpResponse platform_sentinel = t::http_request(
      {"GET",
       prism.base_url() + "/platform/v1beta1/organizations/" + sentinel + "/workspaces?limit=-1",
       t::bearer_header(sim.bearer_token()), ""});
  CHECK(iam_sentinel.status == 422);
  CHECK(platform_sentinel.status == 422);
  CHECK(t::prism_violation(iam_sentinel).has_value());

  std::string log = prism.log();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  auto sentinels_logged = [&] {
    const std::string found = violation_lines(log);
    return found.find("/organizations/" + sentinel + "/tokens/") != std::string::npos &&
           found.find("/organizations/" + sentinel + "/workspaces") != std::string::npos;
  };
  while (!sentinels_logged() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    log = prism.log();
  }
  INFO("Prism log:\n" << log);
  REQUIRE(sentinels_logged());  // the violation check below can fail
  // The exchanges above went through Prism.
  CHECK(log.find("post /organizations/" + sim.org_id() + "/tokens/" + deployment->id + "/rotate") !=
        std::string::npos);
  CHECK(log.find("get /organizations/" + sim.org_id() + "/deployments") != std::string::npos);

  std::string violations;
  std::istringstream lines(violation_lines(log));
  for (std::string line; std::getline(lines, line);)
    if (line.find(sentinel) == std::string::npos) violations += line + "\n";
  CHECK(violations.empty());
}

TEST_CASE("every client operation honours the v1 contract", "[astro][contract][integration]") {
  t::SimOptions sim_options;
  sim_options.rate_limits = false;
  t::SimProcess sim(sim_options);
  // 1,001 tokens beforehand, so that listing takes two pages through Prism.
  sim::NewToken templ;
  templ.request = {"seeded", "", EntityType::Deployment, "DEPLOYMENT_ADMIN", t::kSimDeploymentId,
                   90};
  REQUIRE(sim.control().create_tokens(templ, 1001).ids.size() == 1001);

  t::PrismHarness prism(sim.base_url(), {.api = t::PrismApi::V1});
  HttpClientOptions options = through(prism, sim);
  REQUIRE(options.api_version == ApiVersion::V1);
  REQUIRE(HttpClientOptions{}.api_version == ApiVersion::V1);  // the default
  auto created_client = HttpClient::create(options, null_logger());
  REQUIRE(created_client.ok());
  HttpClient& client = *created_client.value();
  const std::string dep = t::kSimDeploymentId;

  // --- success paths ---------------------------------------------------------
  auto organization = client.create_token(
      {"org token", "", EntityType::Organization, "ORGANIZATION_MEMBER", "", std::nullopt});
  REQUIRE(organization.ok());
  CHECK(organization->kind == TokenKind::Standard);
  auto workspace =
      client.create_token({"workspace token", "with a description", EntityType::Workspace,
                           "WORKSPACE_OPERATOR", t::kSimWorkspaceId, 30, TokenKind::Standard});
  REQUIRE(workspace.ok());
  auto deployment = client.create_token({"deployment token", "", EntityType::Deployment,
                                         "DEPLOYMENT_ADMIN", dep, 3650, TokenKind::DirectAccess});
  REQUIRE(deployment.ok());
  CHECK(deployment->kind == TokenKind::DirectAccess);
  CHECK(deployment->type == EntityType::Deployment);

  auto listed = client.list_tokens();
  REQUIRE(listed.ok());
  CHECK(listed->tokens.size() == 1004);
  CHECK(listed->consistent);

  const RoleSet dag_roles = normalize_roles({{"DEPLOYMENT_ADMIN", dep, EntityType::Deployment},
                                             {"DAG_VIEWER", "etl_daily", EntityType::Dag, dep},
                                             {"DAG_AUTHOR", "finance", EntityType::DagTag, dep}});
  REQUIRE(client.update_token_roles(deployment->id, dag_roles).ok());
  auto got = client.get_token(deployment->id);
  REQUIRE(got.ok());
  CHECK(got->roles == dag_roles);
  CHECK(got->kind == TokenKind::DirectAccess);
  REQUIRE(client.update_token(workspace->id, {"renamed", ""}).ok());
  REQUIRE(
      client.update_token(organization->id, {std::string(256, 'n'), std::string(500, 'd')}).ok());
  REQUIRE(client
              .update_token_roles(
                  workspace->id, {{"WORKSPACE_OPERATOR", t::kSimWorkspaceId, EntityType::Workspace},
                                  {"DEPLOYMENT_ADMIN", dep, EntityType::Deployment}})
              .ok());
  REQUIRE(client
              .update_token_roles(organization->id,
                                  {{"ORGANIZATION_MEMBER", sim.org_id(), EntityType::Organization},
                                   {"WORKSPACE_MEMBER", t::kSimWorkspaceId, EntityType::Workspace}})
              .ok());
  auto rotated = client.rotate_token(deployment->id);
  REQUIRE(rotated.ok());
  CHECK_FALSE(rotated->token.empty());
  CHECK(rotated->last_rotated_at);
  CHECK(rotated->roles == dag_roles);
  REQUIRE(client.delete_token(deployment->id).ok());

  auto workspaces = client.existing_workspaces({t::kSimWorkspaceId, "cmissingworkspace00000000"});
  REQUIRE(workspaces.ok());
  CHECK(*workspaces == std::vector<std::string>{t::kSimWorkspaceId});
  auto deployments = client.existing_deployments({dep, "cmissingdeployment0000000"});
  REQUIRE(deployments.ok());
  CHECK(*deployments == std::vector<std::string>{dep});

  // --- error paths -------------------------------------------------------------
  const std::string gone = deployment->id;
  check_api_error(client.get_token(gone).error(), ErrorKind::NotFound, 404);
  check_api_error(client.update_token(gone, {"x", ""}).error(), ErrorKind::NotFound, 404);
  check_api_error(client.update_token_roles(gone, dag_roles).error(), ErrorKind::NotFound, 404);
  check_api_error(client.rotate_token(gone).error(), ErrorKind::NotFound, 404);
  check_api_error(client.delete_token(gone).error(), ErrorKind::NotFound, 404);
  check_api_error(client
                      .create_token({"unknown workspace", "", EntityType::Workspace,
                                     "WORKSPACE_OWNER", "cmissingworkspace00000000", std::nullopt})
                      .error(),
                  ErrorKind::NotFound, 404);
  // 400 with fieldErrors, shown in the message.
  Error wrong_role = client
                         .create_token({"wrong role", "", EntityType::Workspace,
                                        "ORGANIZATION_OWNER", t::kSimWorkspaceId, std::nullopt})
                         .error();
  check_api_error(wrong_role, ErrorKind::Invalid, 400);
  Error dag_elsewhere =
      client
          .update_token_roles(
              workspace->id,
              {{"WORKSPACE_OPERATOR", t::kSimWorkspaceId, EntityType::Workspace},
               {"DAG_VIEWER", "etl_daily", EntityType::Dag, "cnosuchdeployment00000000"}})
          .error();
  check_api_error(dag_elsewhere, ErrorKind::Invalid, 400);
  Error unknown_dag_deployment =
      client
          .update_token_roles(
              organization->id,
              {{"ORGANIZATION_MEMBER", sim.org_id(), EntityType::Organization},
               {"DEPLOYMENT_ADMIN", dep, EntityType::Deployment},
               {"DAG_VIEWER", "etl_daily", EntityType::Dag, "cnosuchdeployment00000000"}})
          .error();
  check_api_error(unknown_dag_deployment, ErrorKind::Invalid, 400);
  // The sim names the field: the message carries "(roles[…]…: …)".
  CHECK(unknown_dag_deployment.message.find("(roles[") != std::string::npos);

  // 5xx, answered by the simulator's fault rules (429 is last, below).
  sim.control().set_faults({t::fail_next("ListApiTokens", 500, 1)});
  check_api_error(client.list_tokens().error(), ErrorKind::Unavailable, 500);
  sim.control().set_faults({t::fail_next("CreateApiToken", 500, 1)});
  check_api_error(client
                      .create_token({"x", "", EntityType::Organization, "ORGANIZATION_MEMBER", "",
                                     std::nullopt})
                      .error(),
                  ErrorKind::Ambiguous, 500);
  sim.control().clear_faults();

  auto wrong_token_options = through(prism, sim);
  wrong_token_options.bearer_token = SecretValue("not-the-simulators-token");
  auto wrong_token = HttpClient::create(wrong_token_options, null_logger());
  REQUIRE(wrong_token.ok());
  check_api_error(wrong_token.value()->list_tokens().error(), ErrorKind::Unauthorized, 401);
  check_api_error(wrong_token.value()->existing_workspaces({t::kSimWorkspaceId}).error(),
                  ErrorKind::Unauthorized, 401);

  auto other_org_options = through(prism, sim);
  other_org_options.organization_id = "cotherorganization0000000";
  auto other_org = HttpClient::create(other_org_options, null_logger());
  REQUIRE(other_org.ok());
  check_api_error(other_org.value()->list_tokens().error(), ErrorKind::Forbidden, 403);
  check_api_error(other_org.value()->existing_deployments({dep}).error(), ErrorKind::Forbidden,
                  403);

  // Only v1 paths were asked for, all through the one v1 proxy.
  t::RequestStats stats = sim.control().requests();
  CHECK(stats.count("ListApiTokens") == 5);
  for (const sim::LoggedRequest& r : stats.requests) {
    INFO(r.path);
    CHECK(r.path.starts_with("/v1/organizations/"));
  }
  const std::string log = prism.log();
  CHECK(log.find("post /organizations/" + sim.org_id() + "/tokens/" + deployment->id + "/rotate") !=
        std::string::npos);
  CHECK(log.find("get /organizations/" + sim.org_id() + "/deployments") != std::string::npos);
  INFO("Prism log:\n" << log);
  CHECK(prism.logged_violations() == "");

  // v1.yaml declares no 429 (the generated client it comes from cannot tell
  // which operations answer one), so Prism can only note the status as
  // undeclared; the answer must still reach the client as RateLimited, and
  // that note must be the only thing Prism finds.
  sim.control().set_faults({t::fail_next("GetApiToken", 429, 1, 0)});
  check_api_error(client.get_token(workspace->id).error(), ErrorKind::RateLimited, 429);
  sim.control().clear_faults();
  const std::string after_429 = prism.logged_violations();
  CHECK(std::count(after_429.begin(), after_429.end(), '\n') == 1);
  CHECK(after_429.find("Unable to match the returned status code with those defined in the "
                       "document: 200,400,401,403,404,500") != std::string::npos);
}
