#include <catch2/catch.hpp>

#include <set>

#include "apply/engine.h"
#include "apply/recovery.h"
#include "astro/fake_client.h"
#include "util/hash.h"

using namespace tokend;
using std::chrono::seconds;

namespace {

const Timestamp kNow = *parse_rfc3339("2026-11-28T12:00:00Z");

spec::TokenSpec workspace_spec(const std::string& key, const std::string& workspace) {
  spec::TokenSpec s;
  s.key = key;
  s.attrs.name = key;
  s.attrs.type = EntityType::Workspace;
  s.attrs.role = "WORKSPACE_OWNER";
  s.attrs.roles = {{"WORKSPACE_OWNER", workspace, EntityType::Workspace}};
  s.sink = "/sinks/" + key + ".token";
  return s;
}

struct Fixture {
  FixedClock clock{kNow};
  astro::FakeClient client{astro::FakeClient::kDefaultOrganization, &clock};
  std::unique_ptr<state::StateStore> store = std::move(state::StateStore::open(":memory:").value());
  apply::MemorySink sink;
  apply::FakeHookRunner hooks;
  apply::Dependencies deps{client, *store, sink, clock, null_logger(), hooks};
  spec::DesiredState desired;

  Fixture() { desired.config.organization_id = astro::FakeClient::kDefaultOrganization; }
};

}  // namespace

TEST_CASE("prepare_plan refreshes once - checks entities once per kind - writes nothing",
          "[apply][prepare]") {
  Fixture f;
  f.desired.tokens = {workspace_spec("a", astro::FakeClient::kDefaultWorkspace),
                      workspace_spec("b", astro::FakeClient::kDefaultWorkspace),
                      workspace_spec("c", "cnosuchworkspace0000000000")};
  int64_t serial = f.store->serial();
  auto prepared = apply::prepare_plan(f.deps, f.desired, {});
  REQUIRE(prepared.ok());
  CHECK(f.client.calls(astro::Operation::ListApiTokens) == 1);
  CHECK(f.client.calls(astro::Operation::ListWorkspaces) == 1);
  CHECK(f.client.calls(astro::Operation::ListDeployments) == 0);
  CHECK(f.client.calls(astro::Operation::GetApiToken) == 0);
  REQUIRE(prepared->diagnostics.size() == 1);
  CHECK(
      prepared->diagnostics[0].message ==
      "astro_api_token.c: workspace \"cnosuchworkspace0000000000\" does not exist in organization "
      "clx42kkcm01fo01o06agtmshg");
  CHECK(prepared->plan.counts().add == 3);
  CHECK(f.store->serial() == serial);
}

TEST_CASE("prepare_plan without refresh trusts state and makes no API call", "[apply][prepare]") {
  Fixture f;
  f.desired.tokens = {workspace_spec("a", astro::FakeClient::kDefaultWorkspace)};
  auto prepared = apply::prepare_plan(f.deps, f.desired, {false, {}, false, {}});
  REQUIRE(prepared.ok());
  CHECK(f.client.total_calls() == 0);
  CHECK_FALSE(prepared->plan.refreshed);
}

TEST_CASE("prepare_plan resolves a pending create intent in memory and forces a refresh",
          "[apply][prepare]") {
  Fixture f;
  f.desired.tokens = {workspace_spec("a", astro::FakeClient::kDefaultWorkspace)};
  state::Intent intent;
  intent.key = "a";
  intent.kind = state::IntentKind::Create;
  intent.attrs = f.desired.tokens[0].attrs;
  intent.sink_path = f.desired.tokens[0].sink;
  intent.started_at = kNow - seconds(5);
  REQUIRE(f.store->journal_intent(intent).ok());
  // The create happened, but its answer was lost.
  astro::CreateTokenRequest request{"a",
                                    "",
                                    EntityType::Workspace,
                                    "WORKSPACE_OWNER",
                                    astro::FakeClient::kDefaultWorkspace,
                                    std::nullopt};
  auto created = f.client.create_token(request);
  REQUIRE(created.ok());
  f.client.reset_calls();
  int64_t serial = f.store->serial();

  auto prepared = apply::prepare_plan(f.deps, f.desired, {false, {}, true, {}});
  REQUIRE(prepared.ok());
  CHECK(f.client.calls(astro::Operation::ListApiTokens) == 1);
  REQUIRE(prepared->recovery.size() == 1);
  CHECK(prepared->recovery[0].resource->id == created->id);
  REQUIRE(prepared->plan.changes.size() == 1);
  CHECK(prepared->plan.changes[0].action == plan::Action::Rotate);
  CHECK(prepared->plan.changes[0].rotate_reason == plan::RotateReason::ValueLost);
  CHECK(f.store->serial() == serial);
}

TEST_CASE("prepare_plan measures sinks against their fingerprints", "[apply][prepare]") {
  Fixture f;
  f.desired.tokens = {workspace_spec("a", astro::FakeClient::kDefaultWorkspace),
                      workspace_spec("b", astro::FakeClient::kDefaultWorkspace),
                      workspace_spec("c", astro::FakeClient::kDefaultWorkspace)};
  for (const auto& s : f.desired.tokens) {
    auto created =
        f.client.create_token({s.attrs.name, "", EntityType::Workspace, "WORKSPACE_OWNER",
                               astro::FakeClient::kDefaultWorkspace, std::nullopt});
    REQUIRE(created.ok());
    REQUIRE(f.store
                ->record_outcome({s.key,
                                  [&] {
                                    state::ResourceRecord r;
                                    r.key = s.key;
                                    r.id = created->id;
                                    r.attrs = created->attrs();
                                    r.created_at = r.updated_at = r.start_at = created->start_at;
                                    r.sink_path = s.sink;
                                    r.sink_sha256 = sha256_hex("value-" + s.key);
                                    return r;
                                  }(),
                                  std::nullopt})
                .ok());
  }
  f.sink.set_content("/sinks/a.token", "value-a");         // matches
  f.sink.set_content("/sinks/b.token", "something else");  // mismatch
  // c: missing
  auto prepared = apply::prepare_plan(f.deps, f.desired, {});
  REQUIRE(prepared.ok());
  REQUIRE(prepared->plan.changes.size() == 2);
  CHECK(prepared->plan.changes[0].key == "b");
  CHECK(prepared->plan.changes[0].rotate_reason == plan::RotateReason::SinkMismatch);
  CHECK(prepared->plan.changes[1].key == "c");
  CHECK(prepared->plan.changes[1].rotate_reason == plan::RotateReason::SinkMissing);
}

TEST_CASE("prepare_plan looks up only the entities that no listed token holds a role on",
          "[apply][prepare]") {
  Fixture f;
  const std::string other_workspace = "clx42sxw501gl01o0gjenother";
  f.client.add_workspace(other_workspace);
  f.desired.tokens = {workspace_spec("a", astro::FakeClient::kDefaultWorkspace)};
  auto created = f.client.create_token({"a", "", EntityType::Workspace, "WORKSPACE_OWNER",
                                        astro::FakeClient::kDefaultWorkspace, std::nullopt});
  REQUIRE(created.ok());
  f.client.reset_calls();

  // Every id the specs use is held by a listed token: no lookup at all.
  auto prepared = apply::prepare_plan(f.deps, f.desired, {});
  REQUIRE(prepared.ok());
  CHECK(prepared->diagnostics.empty());
  CHECK(f.client.calls(astro::Operation::ListApiTokens) == 1);
  CHECK(f.client.calls(astro::Operation::ListWorkspaces) == 0);
  CHECK(f.client.calls(astro::Operation::ListDeployments) == 0);

  // Ids nobody holds yet are still looked up, once per kind.
  f.desired.tokens.push_back(workspace_spec("b", other_workspace));
  f.desired.tokens.push_back(workspace_spec("c", "cnosuchworkspace0000000000"));
  f.client.reset_calls();
  prepared = apply::prepare_plan(f.deps, f.desired, {});
  REQUIRE(prepared.ok());
  CHECK(f.client.calls(astro::Operation::ListWorkspaces) == 1);
  REQUIRE(prepared->diagnostics.size() == 1);
  CHECK(prepared->diagnostics[0].message.find("cnosuchworkspace0000000000") != std::string::npos);
}

TEST_CASE("check_entities without known ids looks every kind up once", "[apply][prepare]") {
  Fixture f;
  spec::TokenSpec mixed = workspace_spec("a", astro::FakeClient::kDefaultWorkspace);
  mixed.attrs.roles.push_back(
      {"DEPLOYMENT_ADMIN", "cnosuchdeployment000000000", EntityType::Deployment});
  f.desired.tokens = {mixed, workspace_spec("b", astro::FakeClient::kDefaultWorkspace)};
  auto diagnostics = apply::check_entities(f.client, f.desired);
  REQUIRE(diagnostics.ok());
  CHECK(f.client.calls(astro::Operation::ListWorkspaces) == 1);
  CHECK(f.client.calls(astro::Operation::ListDeployments) == 1);
  REQUIRE(diagnostics->size() == 1);
  CHECK(
      diagnostics->at(0).message ==
      "astro_api_token.a: deployment \"cnosuchdeployment000000000\" does not exist in organization "
      "clx42kkcm01fo01o06agtmshg");
}

TEST_CASE(
    "check_entities checks the deployment of DAG and DAG_TAG roles in the one deployments "
    "lookup",
    "[apply][prepare]") {
  Fixture f;
  spec::TokenSpec dags;
  dags.key = "dags";
  dags.attrs.name = "dags";
  dags.attrs.type = EntityType::Deployment;
  dags.attrs.role = "DEPLOYMENT_ADMIN";
  dags.attrs.roles = {
      {"DEPLOYMENT_ADMIN", astro::FakeClient::kDefaultDeployment, EntityType::Deployment},
      {"DAG_VIEWER", "etl", EntityType::Dag, astro::FakeClient::kDefaultDeployment},
      {"DAG_AUTHOR", "etl", EntityType::Dag, "cnosuchdeployment000000000"},
      {"DAG_VIEWER", "finance", EntityType::DagTag, "cnosuchdeployment000000000"},
      {"DAG_VIEWER", "reports", EntityType::DagTag, "cnosuchdeployment000000001"}};
  f.desired.tokens = {dags};
  auto diagnostics = apply::check_entities(f.client, f.desired);
  REQUIRE(diagnostics.ok());
  CHECK(f.client.calls(astro::Operation::ListDeployments) == 1);
  CHECK(f.client.calls(astro::Operation::ListWorkspaces) == 0);
  REQUIRE(diagnostics->size() == 2);
  CHECK(diagnostics->at(0).message ==
        "astro_api_token.dags: deployment \"cnosuchdeployment000000000\" (the deployment_id of its "
        "DAG role on \"etl\") does not exist in organization clx42kkcm01fo01o06agtmshg");
  CHECK(diagnostics->at(1).message.find("\"cnosuchdeployment000000001\" (the deployment_id of its "
                                        "DAG_TAG role on \"reports\")") != std::string::npos);

  // A deployment that tokens of the organization already hold roles on is
  // known to exist: no lookup.
  f.client.reset_calls();
  apply::KnownEntities known;
  known.deployments = {astro::FakeClient::kDefaultDeployment, "cnosuchdeployment000000000",
                       "cnosuchdeployment000000001"};
  diagnostics = apply::check_entities(f.client, f.desired, known);
  REQUIRE(diagnostics.ok());
  CHECK(diagnostics->empty());
  CHECK(f.client.total_calls() == 0);
}

namespace {

// Creates a token for `spec` in the fake organization and records it as
// managed under spec.key with a delivered value.
astro::ApiToken manage(Fixture& f, const spec::TokenSpec& spec) {
  auto created =
      f.client.create_token({spec.attrs.name, "", EntityType::Workspace, "WORKSPACE_OWNER",
                             astro::FakeClient::kDefaultWorkspace, std::nullopt});
  REQUIRE(created.ok());
  REQUIRE(f.sink.write(apply::SinkTarget{spec.sink, 0600, ""}, created->token).ok());
  state::ResourceRecord row =
      apply::record_from_token(spec.key, *created, spec.sink, sha256_hex(created->token.reveal()));
  REQUIRE(f.store->record_outcome({spec.key, row, std::nullopt}).ok());
  return *created;
}

}  // namespace

TEST_CASE("a managed token the listing leaves out is looked up - found - and not re-created",
          "[apply][prepare]") {
  Fixture f;
  f.desired.tokens = {workspace_spec("a", astro::FakeClient::kDefaultWorkspace),
                      workspace_spec("b", astro::FakeClient::kDefaultWorkspace)};
  astro::ApiToken a = manage(f, f.desired.tokens[0]);
  manage(f, f.desired.tokens[1]);
  f.client.hide_from_listing(a.id);
  f.client.reset_calls();

  auto prepared = apply::prepare_plan(f.deps, f.desired, {});
  REQUIRE(prepared.ok());
  CHECK(f.client.calls(astro::Operation::ListApiTokens) == 1);
  CHECK(f.client.calls(astro::Operation::GetApiToken) == 1);
  CHECK(prepared->plan.empty());
  CHECK(prepared->plan.drift.empty());
}

TEST_CASE("a managed token the listing leaves out is gone only when its GET answers 404",
          "[apply][prepare]") {
  Fixture f;
  f.desired.tokens = {workspace_spec("a", astro::FakeClient::kDefaultWorkspace)};
  astro::ApiToken a = manage(f, f.desired.tokens[0]);
  REQUIRE(f.client.remove_token(a.id));
  f.client.reset_calls();

  auto prepared = apply::prepare_plan(f.deps, f.desired, {});
  REQUIRE(prepared.ok());
  CHECK(f.client.calls(astro::Operation::GetApiToken) == 1);
  REQUIRE(prepared->plan.changes.size() == 1);
  CHECK(prepared->plan.changes[0].action == plan::Action::Create);
  CHECK(prepared->plan.changes[0].recreate_after_remote_delete);
  REQUIRE(prepared->plan.drift.size() == 1);
  CHECK(prepared->plan.drift[0].kind == plan::Drift::Kind::Deleted);
}

TEST_CASE("a failed confirmation fails the whole plan - naming the token", "[apply][prepare]") {
  Fixture f;
  f.desired.tokens = {workspace_spec("a", astro::FakeClient::kDefaultWorkspace)};
  astro::ApiToken a = manage(f, f.desired.tokens[0]);
  f.client.hide_from_listing(a.id);
  f.client.script_failure(astro::Operation::GetApiToken,
                          {ErrorKind::Unavailable, 1, false, "HTTP 503"});

  auto prepared = apply::prepare_plan(f.deps, f.desired, {});
  REQUIRE_FALSE(prepared.ok());
  CHECK(prepared.error().kind == ErrorKind::Unavailable);
  CHECK(prepared.error().message == "cannot tell whether token " + a.id +
                                        " (astro_api_token.a), which the listing of tokens did "
                                        "not show, still exists: GetApiToken: HTTP 503");
}

TEST_CASE("an import id the listing leaves out is looked up before the plan calls it missing",
          "[apply][prepare]") {
  Fixture f;
  auto existing =
      f.client.create_token({"made by hand", "", EntityType::Workspace, "WORKSPACE_OWNER",
                             astro::FakeClient::kDefaultWorkspace, std::nullopt});
  REQUIRE(existing.ok());
  f.client.hide_from_listing(existing->id);
  spec::TokenSpec imported = workspace_spec("made by hand", astro::FakeClient::kDefaultWorkspace);
  imported.key = "imported";
  imported.import_id = existing->id;
  f.desired.tokens = {imported};

  auto prepared = apply::prepare_plan(f.deps, f.desired, {});
  REQUIRE(prepared.ok());
  CHECK(prepared->plan.errors.empty());
  REQUIRE(prepared->plan.changes.size() == 1);
  CHECK(prepared->plan.changes[0].action == plan::Action::Import);
}

TEST_CASE("a pending create is not dropped on the word of an incomplete listing",
          "[apply][prepare]") {
  Fixture f;
  f.desired.tokens = {workspace_spec("a", astro::FakeClient::kDefaultWorkspace),
                      workspace_spec("b", astro::FakeClient::kDefaultWorkspace)};
  astro::ApiToken b = manage(f, f.desired.tokens[1]);
  state::Intent intent;
  intent.key = "a";
  intent.kind = state::IntentKind::Create;
  intent.attrs = f.desired.tokens[0].attrs;
  intent.sink_path = f.desired.tokens[0].sink;
  intent.started_at = kNow - seconds(5);
  auto intent_id = f.store->journal_intent(intent);
  REQUIRE(intent_id.ok());

  SECTION("the listing missed a managed token that exists") { f.client.hide_from_listing(b.id); }
  SECTION("the listing's pages were inconsistent") {
    f.client.set_listing_problem("token x was listed on two pages");
  }
  auto prepared = apply::prepare_plan(f.deps, f.desired, {});
  REQUIRE(prepared.ok());
  CHECK(prepared->dropped_intents.empty());
  CHECK(prepared->recovery.empty());
  REQUIRE(prepared->unsettled.size() == 1);
  CHECK(prepared->unsettled[0].id == *intent_id);
  // The plan still creates `a`: apply settles the intent before it does.
  REQUIRE(prepared->plan.changes.size() == 1);
  CHECK(prepared->plan.changes[0].action == plan::Action::Create);
}

TEST_CASE("prepare_plan holds back a create or rotation whose sink cannot be written",
          "[apply][prepare]") {
  Fixture f;
  f.desired.tokens = {workspace_spec("lost", astro::FakeClient::kDefaultWorkspace),
                      workspace_spec("fresh", astro::FakeClient::kDefaultWorkspace),
                      workspace_spec("fine", astro::FakeClient::kDefaultWorkspace)};
  // "lost" is managed, its value gone from its sink (a reason to rotate).
  auto created = f.client.create_token({"lost", "", EntityType::Workspace, "WORKSPACE_OWNER",
                                        astro::FakeClient::kDefaultWorkspace, std::nullopt});
  REQUIRE(created.ok());
  state::ResourceRecord row;
  row.key = "lost";
  row.id = created->id;
  row.attrs = created->attrs();
  row.created_at = row.updated_at = row.start_at = created->start_at;
  row.sink_path = "/sinks/lost.token";
  row.sink_sha256 = sha256_hex("value-lost");
  REQUIRE(f.store->record_outcome({"lost", row, std::nullopt}).ok());
  f.sink.set_unwritable("/sinks/lost.token", true);
  f.sink.set_unwritable("/sinks/fresh.token", true);

  auto prepared = apply::prepare_plan(f.deps, f.desired, {});
  REQUIRE(prepared.ok());
  // Only "fine" (writable) is created; the other two are held back.
  REQUIRE(prepared->plan.changes.size() == 1);
  CHECK(prepared->plan.changes[0].key == "fine");
  REQUIRE(prepared->held_back.size() == 2);
  std::set<std::string> held_keys;
  for (const apply::HeldBack& held : prepared->held_back) held_keys.insert(held.key);
  CHECK(held_keys == std::set<std::string>{"fresh", "lost"});
  for (const apply::HeldBack& held : prepared->held_back) {
    CHECK(held.unwritable);
    CHECK(held.error.kind == ErrorKind::Io);
    CHECK(held.error.message.rfind("cannot write /sinks/", 0) == 0);
  }
  CHECK(apply::held_back_reason(prepared->held_back) == "sink unwritable");
  // The held-back managed token stays in the plan's unchanged records.
  REQUIRE(prepared->plan.unchanged.size() == 1);
  CHECK(prepared->plan.unchanged[0].key == "lost");

  // Once it can be written, the rotation and the create come back.
  f.sink.set_unwritable("/sinks/lost.token", false);
  f.sink.set_unwritable("/sinks/fresh.token", false);
  auto again = apply::prepare_plan(f.deps, f.desired, {});
  REQUIRE(again.ok());
  CHECK(again->plan.changes.size() == 3);
  CHECK(again->held_back.empty());
}
