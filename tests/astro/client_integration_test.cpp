// HttpClient against the real astro-api-sim binary on 127.0.0.1:0: every
// operation end to end, fault injection through /_sim/, rate limits, HTTPS.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <sstream>
#include <thread>

#include "astro/http_client.h"
#include "support/process.h"
#include "support/sim.h"

using namespace tokend;
using namespace tokend::astro;
namespace t = tokend::testing;

namespace {

t::SimOptions without_limits() {
  t::SimOptions options;
  options.rate_limits = false;
  return options;
}

HttpClientOptions options_for(const t::SimProcess& sim) {
  HttpClientOptions options;
  options.api_url = sim.base_url();
  options.organization_id = sim.org_id();
  options.bearer_token = SecretValue(sim.bearer_token());
  options.connect_timeout = std::chrono::milliseconds(2000);
  options.request_timeout = std::chrono::milliseconds(5000);
  options.rate_limits = RateLimits{0, 0, 0, 1};
  options.retry.max_attempts = 5;
  options.retry.base_delay = std::chrono::milliseconds(5);
  options.retry.max_delay = std::chrono::milliseconds(20);
  return options;
}

std::unique_ptr<HttpClient> client_for(HttpClientOptions options, Logger& logger = null_logger()) {
  auto client = HttpClient::create(std::move(options), logger);
  REQUIRE(client.ok());
  return std::move(client.value());
}

CreateTokenRequest workspace_token(const std::string& name) {
  return {
      name, "made by the client test", EntityType::Workspace, "WORKSPACE_OWNER", t::kSimWorkspaceId,
      30};
}

bool has_token_named(const std::vector<ApiToken>& tokens, const std::string& name) {
  return std::any_of(tokens.begin(), tokens.end(),
                     [&](const ApiToken& token) { return token.name == name; });
}

}  // namespace

TEST_CASE("every client operation against the simulator", "[astro][integration]") {
  t::SimProcess sim(without_limits());
  auto client = client_for(options_for(sim));

  auto created = client->create_token(workspace_token("ci deployer"));
  REQUIRE(created.ok());
  CHECK(created->name == "ci deployer");
  CHECK(created->type == EntityType::Workspace);
  CHECK(created->expiry_period_in_days == 30);
  CHECK(created->roles == RoleSet{{"WORKSPACE_OWNER", t::kSimWorkspaceId, EntityType::Workspace}});
  CHECK_FALSE(created->token.empty());
  const std::string id = created->id;

  auto listed = client->list_tokens();
  REQUIRE(listed.ok());
  REQUIRE(listed->tokens.size() == 1);
  CHECK(listed->tokens.front().id == id);
  CHECK(listed->tokens.front().token.empty());

  auto got = client->get_token(id);
  REQUIRE(got.ok());
  CHECK(got->attrs() == created->attrs());
  CHECK(got->token.empty());

  auto updated = client->update_token(id, {"renamed", "new description"});
  REQUIRE(updated.ok());
  CHECK(updated->name == "renamed");
  CHECK(updated->description == "new description");

  const RoleSet roles =
      normalize_roles({{"WORKSPACE_OWNER", t::kSimWorkspaceId, EntityType::Workspace},
                       {"DEPLOYMENT_ADMIN", t::kSimDeploymentId, EntityType::Deployment}});
  REQUIRE(client->update_token_roles(id, roles).ok());
  CHECK(client->get_token(id)->roles == roles);

  auto rotated = client->rotate_token(id);
  REQUIRE(rotated.ok());
  CHECK(rotated->id == id);
  CHECK_FALSE(rotated->token.empty());
  CHECK(rotated->token.reveal() != created->token.reveal());

  auto workspaces = client->existing_workspaces({t::kSimWorkspaceId, "cmissingworkspace00000000"});
  REQUIRE(workspaces.ok());
  CHECK(*workspaces == std::vector<std::string>{t::kSimWorkspaceId});
  auto deployments =
      client->existing_deployments({"cmissingdeployment0000000", t::kSimDeploymentId});
  REQUIRE(deployments.ok());
  CHECK(*deployments == std::vector<std::string>{t::kSimDeploymentId});

  REQUIRE(client->delete_token(id).ok());
  auto again = client->delete_token(id);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().kind == ErrorKind::NotFound);
  CHECK(again.error().http_status == 404);
  CHECK_FALSE(again.error().request_id.empty());
  CHECK(client->get_token(id).error().kind == ErrorKind::NotFound);

  auto invalid = client->create_token({"wrong role", "", EntityType::Workspace,
                                       "ORGANIZATION_OWNER", t::kSimWorkspaceId, std::nullopt});
  REQUIRE_FALSE(invalid.ok());
  CHECK(invalid.error().kind == ErrorKind::Invalid);
  CHECK(invalid.error().http_status == 400);
  auto unknown_workspace =
      client->create_token({"nowhere", "", EntityType::Workspace, "WORKSPACE_OWNER",
                            "cmissingworkspace00000000", std::nullopt});
  REQUIRE_FALSE(unknown_workspace.ok());
  CHECK(unknown_workspace.error().kind == ErrorKind::NotFound);

  auto stats = sim.control().requests();
  CHECK(stats.count("CreateApiToken") == 3);
  CHECK(stats.count("RotateApiToken") == 1);
  CHECK(stats.count("ListWorkspaces") == 1);
  CHECK(stats.count("ListDeployments") == 1);
}

TEST_CASE("listing 2500 tokens takes exactly three requests", "[astro][integration]") {
  t::SimProcess sim(without_limits());
  sim::NewToken templ;
  templ.request = workspace_token("bulk");
  REQUIRE(sim.control().create_tokens(templ, 2500).ids.size() == 2500);
  auto client = client_for(options_for(sim));
  auto tokens = client->list_tokens();
  REQUIRE(tokens.ok());
  CHECK(tokens->tokens.size() == 2500);
  CHECK(tokens->consistent);
  CHECK(sim.control().requests().count("ListApiTokens") == 3);
}

TEST_CASE("through the simulator - a GET survives three 503s", "[astro][integration]") {
  t::SimProcess sim(without_limits());
  auto client = client_for(options_for(sim));
  auto created = client->create_token(workspace_token("x"));
  REQUIRE(created.ok());
  sim.control().set_faults({t::fail_next("GetApiToken", 503, 3)});
  auto got = client->get_token(created->id);
  REQUIRE(got.ok());
  auto stats = sim.control().requests();
  CHECK(stats.count("GetApiToken") == 4);
  CHECK(stats.count("GetApiToken", 503) == 3);
  CHECK(stats.count("GetApiToken", 200) == 1);
}

TEST_CASE("a 429 with Retry-After: 1 waits about a second", "[astro][integration]") {
  t::SimProcess sim(without_limits());
  auto client = client_for(options_for(sim));
  sim.control().set_faults({t::fail_next("ListApiTokens", 429, 1, 1)});
  const auto started = std::chrono::steady_clock::now();
  auto tokens = client->list_tokens();
  const auto elapsed = std::chrono::steady_clock::now() - started;
  REQUIRE(tokens.ok());
  CHECK(elapsed >= std::chrono::milliseconds(900));
  CHECK(elapsed < std::chrono::seconds(4));
  auto stats = sim.control().requests();
  CHECK(stats.count("ListApiTokens", 429) == 1);
  CHECK(stats.count("ListApiTokens", 200) == 1);
}

TEST_CASE("a create whose answer is lost after it took effect is Ambiguous and not retried",
          "[astro][integration]") {
  t::SimProcess sim(without_limits());
  auto client = client_for(options_for(sim));
  sim.control().set_faults({t::drop_next("CreateApiToken", 1, sim::DropWhen::After)});
  auto created = client->create_token(workspace_token("lost answer"));
  REQUIRE_FALSE(created.ok());
  CHECK(created.error().kind == ErrorKind::Ambiguous);
  CHECK(created.error().http_status == 0);
  CHECK(sim.control().requests().count("CreateApiToken") == 1);
  CHECK(has_token_named(sim.control().tokens(), "lost answer"));
  // The apply engine resolves it by listing: the token is there.
  auto listed = client->list_tokens();
  REQUIRE(listed.ok());
  CHECK(has_token_named(listed->tokens, "lost answer"));
}

TEST_CASE("a rotate whose answer is lost is Ambiguous and not retried", "[astro][integration]") {
  t::SimProcess sim(without_limits());
  auto client = client_for(options_for(sim));
  auto created = client->create_token(workspace_token("rotating"));
  REQUIRE(created.ok());
  sim.control().set_faults({t::drop_next("RotateApiToken", 1, sim::DropWhen::After)});
  auto rotated = client->rotate_token(created->id);
  REQUIRE_FALSE(rotated.ok());
  CHECK(rotated.error().kind == ErrorKind::Ambiguous);
  CHECK(sim.control().requests().count("RotateApiToken") == 1);
}

TEST_CASE("a wrong bearer token is Unauthorized and not retried", "[astro][integration]") {
  t::SimProcess sim(without_limits());
  auto options = options_for(sim);
  options.bearer_token = SecretValue("not-the-simulators-token-7f3e");
  auto client = client_for(options);
  auto tokens = client->list_tokens();
  REQUIRE_FALSE(tokens.ok());
  CHECK(tokens.error().kind == ErrorKind::Unauthorized);
  CHECK(tokens.error().http_status == 401);
  CHECK_FALSE(tokens.error().request_id.empty());
  CHECK(sim.control().requests().count("ListApiTokens") == 1);
}

TEST_CASE("the bearer token appears in no log line and no error message", "[astro][integration]") {
  t::SimProcess sim(without_limits());
  std::ostringstream log_text;
  Logger logger(log_text, LogLevel::Debug, LogFormat::Json);
  auto client = client_for(options_for(sim), logger);
  sim.control().set_faults({t::fail_next("ListApiTokens", 503, 2),
                            t::fail_next("CreateApiToken", 429, 1, 0),
                            t::drop_next("GetApiToken", 1, sim::DropWhen::Before)});
  std::vector<Error> errors;
  REQUIRE(client->list_tokens().ok());
  auto created = client->create_token(workspace_token("secret keeper"));
  REQUIRE(created.ok());
  REQUIRE(client->get_token(created->id).ok());
  if (auto missing = client->get_token("cdoesnotexist000000000000"); !missing.ok())
    errors.push_back(missing.error());

  auto wrong_options = options_for(sim);
  wrong_options.bearer_token = SecretValue("wrong-bearer-token-5d2c9");
  auto wrong = client_for(wrong_options, logger);
  if (auto denied = wrong->rotate_token(created->id); !denied.ok())
    errors.push_back(denied.error());

  REQUIRE(errors.size() == 2);
  CHECK(errors[1].kind == ErrorKind::Unauthorized);
  const std::string text = log_text.str();
  CHECK(text.find("retrying") != std::string::npos);
  CHECK(std::count(text.begin(), text.end(), '\n') >= 8);
  for (const std::string& secret :
       {sim.bearer_token(), std::string("wrong-bearer-token-5d2c9"), created->token.reveal()}) {
    CHECK(text.find(secret) == std::string::npos);
    for (const Error& error : errors) CHECK(error.describe().find(secret) == std::string::npos);
  }
}

TEST_CASE("the client-side limiter keeps parallel callers under the simulator's limits",
          "[astro][integration]") {
  t::SimOptions sim_options;
  sim_options.rate_limits_spec = "get=25,post=10,delete=5";
  t::SimProcess sim(sim_options);
  auto options = options_for(sim);
  options.rate_limits = RateLimits{25, 10, 5, 1};
  options.retry.max_attempts = 1;  // a 429 would surface as an error
  auto client = client_for(options);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i)
        if (!client->list_tokens().ok()) ++failures;
    });
  for (auto& thread : threads) thread.join();
  CHECK(failures == 0);
  auto stats = sim.control().requests();
  CHECK(stats.count("ListApiTokens", 200) == 40);
  CHECK(stats.count("ListApiTokens", 429) == 0);
}

TEST_CASE("HTTPS: verified with ca_file - a clear Tls error without it", "[astro][integration]") {
  t::TempDir dir;
  t::TestTls tls = t::make_test_tls(dir.path());
  t::SimOptions sim_options = without_limits();
  sim_options.tls_cert = tls.cert_file;
  sim_options.tls_key = tls.key_file;
  sim_options.ca_file = tls.ca_file;
  t::SimProcess sim(sim_options);
  REQUIRE(sim.base_url().rfind("https://", 0) == 0);

  SECTION("with ca_file") {
    auto options = options_for(sim);
    options.ca_file = tls.ca_file;
    auto client = client_for(options);
    auto created = client->create_token(workspace_token("over tls"));
    REQUIRE(created.ok());
    auto tokens = client->list_tokens();
    REQUIRE(tokens.ok());
    CHECK(tokens->tokens.size() == 1);
  }
  SECTION("without ca_file") {
    auto client = client_for(options_for(sim));
    auto tokens = client->list_tokens();
    REQUIRE_FALSE(tokens.ok());
    CHECK(tokens.error().kind == ErrorKind::Tls);
    CHECK(tokens.error().message.find("TLS handshake with 127.0.0.1") != std::string::npos);
    CHECK(tokens.error().message.find("ca_file") != std::string::npos);
    auto created = client->create_token(workspace_token("never sent"));
    REQUIRE_FALSE(created.ok());
    CHECK(created.error().kind == ErrorKind::Tls);
    CHECK(sim.control().requests().total == 0);
  }
}
