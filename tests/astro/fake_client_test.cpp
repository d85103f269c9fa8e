#include <catch2/catch.hpp>

#include <set>
#include <thread>

#include "astro/fake_client.h"

using namespace tokend;
using namespace tokend::astro;

namespace {

const Timestamp kNow = *parse_rfc3339("2026-03-01T00:00:00Z");

CreateTokenRequest workspace_request(std::string name = "ci") {
  return {std::move(name),
          "desc",
          EntityType::Workspace,
          "WORKSPACE_OWNER",
          FakeClient::kDefaultWorkspace,
          30};
}

}  // namespace

TEST_CASE("FakeClient runs the token lifecycle like the API", "[astro]") {
  FixedClock clock(kNow);
  FakeClient fake(FakeClient::kDefaultOrganization, &clock);

  auto created = fake.create_token(workspace_request());
  REQUIRE(created.ok());
  CHECK(created->id.size() == 25);
  CHECK(created->id[0] == 'c');
  CHECK_FALSE(created->token.empty());
  CHECK(created->start_at == kNow);
  CHECK(created->end_at == kNow + std::chrono::days(30));
  CHECK(created->roles ==
        RoleSet{{"WORKSPACE_OWNER", FakeClient::kDefaultWorkspace, EntityType::Workspace}});
  CHECK(fake.current_value(created->id).reveal() == created->token.reveal());

  auto listed = fake.list_tokens();
  REQUIRE(listed.ok());
  REQUIRE(listed->tokens.size() == 1);
  CHECK(listed->consistent);
  CHECK(listed->tokens.front().token.empty());
  auto got = fake.get_token(created->id);
  REQUIRE(got.ok());
  CHECK(got->token.empty());

  auto updated = fake.update_token(created->id, {"renamed", "new"});
  REQUIRE(updated.ok());
  CHECK(updated->name == "renamed");

  RoleSet roles{{"WORKSPACE_OWNER", FakeClient::kDefaultWorkspace, EntityType::Workspace},
                {"DEPLOYMENT_ADMIN", FakeClient::kDefaultDeployment, EntityType::Deployment}};
  REQUIRE(fake.update_token_roles(created->id, roles).ok());
  CHECK(fake.token(created->id)->roles == normalize_roles(roles));

  clock.advance(std::chrono::hours(24));
  auto rotated = fake.rotate_token(created->id);
  REQUIRE(rotated.ok());
  CHECK(rotated->id == created->id);
  CHECK(rotated->token.reveal() != created->token.reveal());
  CHECK(rotated->start_at == kNow + std::chrono::hours(24));
  CHECK(rotated->end_at == kNow + std::chrono::hours(24) + std::chrono::days(30));

  REQUIRE(fake.delete_token(created->id).ok());
  auto again = fake.delete_token(created->id);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().kind == ErrorKind::NotFound);
  CHECK(fake.get_token(created->id).error().kind == ErrorKind::NotFound);

  CHECK(fake.calls(Operation::CreateApiToken) == 1);
  CHECK(fake.calls(Operation::DeleteApiToken) == 2);
  CHECK(fake.total_calls() == 9);
}

TEST_CASE("FakeClient validates bodies like the contract", "[astro]") {
  FakeClient fake;
  struct Row {
    CreateTokenRequest request;
    std::string says;
  };
  const std::vector<Row> rows = {
      {{"", "", EntityType::Organization, "ORGANIZATION_MEMBER", "", std::nullopt}, "name"},
      {{std::string(257, 'n'), "", EntityType::Organization, "ORGANIZATION_MEMBER", "",
        std::nullopt},
       "name"},
      {{"n", std::string(501, 'd'), EntityType::Organization, "ORGANIZATION_MEMBER", "",
        std::nullopt},
       "description"},
      {{"n", "", EntityType::Organization, "ORGANIZATION_MEMBER", "", 0},
       "tokenExpiryPeriodInDays"},
      {{"n", "", EntityType::Organization, "ORGANIZATION_MEMBER", "", 3651},
       "tokenExpiryPeriodInDays"},
      {{"n", "", EntityType::Workspace, "WORKSPACE_OWNER", "", std::nullopt}, "entityId"},
      {{"n", "", EntityType::Workspace, "WORKSPACE_OWNER", "cunknown", std::nullopt},
       "workspace cunknown"},
      {{"n", "", EntityType::Organization, "", "", std::nullopt}, "role"},
  };
  for (const Row& row : rows) {
    INFO(row.says);
    auto created = fake.create_token(row.request);
    REQUIRE_FALSE(created.ok());
    CHECK(created.error().kind == ErrorKind::Invalid);
    CHECK(created.error().message.find(row.says) != std::string::npos);
  }
  CHECK(fake.tokens().empty());
  auto org =
      fake.create_token({"n", "", EntityType::Organization, "ORGANIZATION_MEMBER", "", 3650});
  REQUIRE(org.ok());
  CHECK(org->roles.front().entity_id == fake.organization_id());
  CHECK(fake.update_token_roles(org->id, {}).error().kind == ErrorKind::Invalid);
}

TEST_CASE("FakeClient plays scripted failures in order - optionally after taking effect",
          "[astro]") {
  FakeClient fake;
  fake.script_failure(Operation::CreateApiToken, {ErrorKind::Unavailable, 2, false, "down", 503});
  fake.script_failure(Operation::CreateApiToken, {ErrorKind::Ambiguous, 1, true, "reset", 0});

  for (int i = 0; i < 2; ++i) {
    auto failed = fake.create_token(workspace_request());
    REQUIRE_FALSE(failed.ok());
    CHECK(failed.error().kind == ErrorKind::Unavailable);
    CHECK(failed.error().http_status == 503);
  }
  CHECK(fake.tokens().empty());

  auto ambiguous = fake.create_token(workspace_request("took effect"));
  REQUIRE_FALSE(ambiguous.ok());
  CHECK(ambiguous.error().kind == ErrorKind::Ambiguous);
  REQUIRE(fake.tokens().size() == 1);
  CHECK(fake.tokens().front().name == "took effect");

  CHECK(fake.create_token(workspace_request()).ok());
  CHECK(fake.calls(Operation::CreateApiToken) == 4);
  CHECK(fake.tokens().size() == 2);
}

TEST_CASE("FakeClient out-of-band changes and lookups", "[astro]") {
  FakeClient fake;
  ApiToken drifted;
  drifted.name = "made elsewhere";
  drifted.type = EntityType::Organization;
  drifted.token = SecretValue("must not be kept");
  ApiToken stored = fake.put_token(drifted);
  CHECK_FALSE(stored.id.empty());
  CHECK(fake.get_token(stored.id)->token.empty());
  stored.description = "changed";
  fake.put_token(stored);
  CHECK(fake.token(stored.id)->description == "changed");
  CHECK(fake.remove_token(stored.id));
  CHECK_FALSE(fake.remove_token(stored.id));
  CHECK(fake.calls(Operation::GetApiToken) == 1);

  fake.add_workspace("cws2");
  auto workspaces =
      fake.existing_workspaces({"cws2", "cnope", FakeClient::kDefaultWorkspace, "cws2"});
  REQUIRE(workspaces.ok());
  CHECK(*workspaces == std::vector<std::string>{"cws2", FakeClient::kDefaultWorkspace});
  auto deployments = fake.existing_deployments({FakeClient::kDefaultDeployment});
  REQUIRE(deployments.ok());
  CHECK(deployments->size() == 1);
  CHECK(fake.existing_deployments({})->empty());
  CHECK(fake.calls(Operation::ListDeployments) == 1);
  CHECK(fake.calls(Operation::ListWorkspaces) == 1);
}

TEST_CASE("FakeClient is safe to call from many threads and issues unique ids and values",
          "[astro]") {
  FakeClient fake;
  std::vector<std::thread> threads;
  std::mutex mutex;
  std::set<std::string> ids, values;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        auto created = fake.create_token(workspace_request());
        REQUIRE(created.ok());
        std::lock_guard<std::mutex> lock(mutex);
        ids.insert(created->id);
        values.insert(created->token.reveal());
      }
    });
  for (auto& thread : threads) thread.join();
  CHECK(ids.size() == 200);
  CHECK(values.size() == 200);
  CHECK(fake.calls(Operation::CreateApiToken) == 200);
  CHECK(fake.list_tokens()->tokens.size() == 200);
}
