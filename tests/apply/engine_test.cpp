#include <SQLiteCpp/SQLiteCpp.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <mutex>

#include "apply/engine.h"
#include "apply/recovery.h"
#include "astro/fake_client.h"
#include "support/process.h"
#include "util/hash.h"

using namespace tokend;
using astro::Operation;
using std::chrono::days;
using std::chrono::seconds;

namespace {

const Timestamp kNow = *parse_rfc3339("2026-11-28T12:00:00Z");
const char* kWorkspace = astro::FakeClient::kDefaultWorkspace;
const char* kDeployment = astro::FakeClient::kDefaultDeployment;
const char* kSecondDeployment = "cdeployment2000000000000000";

spec::TokenSpec workspace_spec(const std::string& key, int roles = 1) {
  spec::TokenSpec s;
  s.key = key;
  s.attrs.name = "token " + key;
  s.attrs.type = EntityType::Workspace;
  s.attrs.role = "WORKSPACE_OWNER";
  s.attrs.roles = {{"WORKSPACE_OWNER", kWorkspace, EntityType::Workspace}};
  if (roles >= 2)
    s.attrs.roles.push_back({"DEPLOYMENT_ADMIN", kDeployment, EntityType::Deployment});
  if (roles >= 3)
    s.attrs.roles.push_back({"DEPLOYMENT_ADMIN", kSecondDeployment, EntityType::Deployment});
  s.attrs.roles = normalize_roles(s.attrs.roles);
  s.sink = "/sinks/" + key + ".token";
  return s;
}

// Forwards to a FakeClient and remembers the order of the calls.
class RecordingClient final : public astro::Client {
 public:
  explicit RecordingClient(astro::FakeClient& inner) : inner_(inner) {}

  Result<astro::TokenListing> list_tokens() override {
    note(Operation::ListApiTokens, "");
    return inner_.list_tokens();
  }
  Result<astro::ApiToken> get_token(const std::string& id) override {
    note(Operation::GetApiToken, id);
    return inner_.get_token(id);
  }
  Result<astro::ApiToken> create_token(const astro::CreateTokenRequest& request) override {
    note(Operation::CreateApiToken, request.name);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      creates_.push_back(request);
    }
    return inner_.create_token(request);
  }
  Result<astro::ApiToken> update_token(const std::string& id,
                                       const astro::UpdateTokenRequest& request) override {
    note(Operation::UpdateApiToken, id);
    return inner_.update_token(id, request);
  }
  Status update_token_roles(const std::string& id, const RoleSet& roles) override {
    note(Operation::UpdateApiTokenRoles, id);
    return inner_.update_token_roles(id, roles);
  }
  Result<astro::ApiToken> rotate_token(const std::string& id) override {
    note(Operation::RotateApiToken, id);
    return inner_.rotate_token(id);
  }
  Status delete_token(const std::string& id) override {
    note(Operation::DeleteApiToken, id);
    return inner_.delete_token(id);
  }
  Result<std::vector<std::string>> existing_workspaces(
      const std::vector<std::string>& ids) override {
    return inner_.existing_workspaces(ids);
  }
  Result<std::vector<std::string>> existing_deployments(
      const std::vector<std::string>& ids) override {
    return inner_.existing_deployments(ids);
  }

  // "CreateApiToken token a", "DeleteApiToken c0…1", … in call order.
  std::vector<std::string> log() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return log_;
  }
  std::vector<astro::CreateTokenRequest> creates() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return creates_;
  }
  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    log_.clear();
    creates_.clear();
  }

 private:
  void note(Operation op, const std::string& what) {
    std::lock_guard<std::mutex> lock(mutex_);
    log_.push_back(std::string(astro::to_string(op)) + (what.empty() ? "" : " " + what));
  }

  astro::FakeClient& inner_;
  mutable std::mutex mutex_;
  std::vector<std::string> log_;
  std::vector<astro::CreateTokenRequest> creates_;
};

class CollectingObserver final : public apply::ApplyObserver {
 public:
  void started(const plan::Change& change) override {
    std::lock_guard<std::mutex> lock(mutex_);
    started_.push_back(change.key);
  }
  void finished(const plan::Change& change, const apply::ActionResult& result) override {
    std::lock_guard<std::mutex> lock(mutex_);
    finished_.push_back(change.key + (result.ok ? " ok" : " failed"));
  }
  std::vector<std::string> started_, finished_;

 private:
  std::mutex mutex_;
};

struct Fixture {
  FixedClock clock{kNow};
  astro::FakeClient fake{astro::FakeClient::kDefaultOrganization, &clock};
  RecordingClient client{fake};
  std::unique_ptr<state::StateStore> store;
  apply::MemorySink sink;
  apply::FakeHookRunner hooks;
  apply::Dependencies deps{client, *store, sink, clock, null_logger(), hooks};
  spec::DesiredState desired;
  apply::ApplyOptions options;

  explicit Fixture(const std::string& db = ":memory:")
      : store(std::move(state::StateStore::open(db).value())) {
    desired.config.organization_id = astro::FakeClient::kDefaultOrganization;
    fake.add_deployment(kSecondDeployment);
  }

  void set_specs(std::vector<spec::TokenSpec> specs) {
    std::sort(specs.begin(), specs.end(),
              [](const auto& a, const auto& b) { return a.key < b.key; });
    desired.tokens = std::move(specs);
  }

  apply::PreparedPlan prepare() {
    auto prepared = apply::prepare_plan(deps, desired, {});
    INFO((prepared.ok() ? "" : prepared.error().describe()));
    REQUIRE(prepared.ok());
    return std::move(prepared).value();
  }

  // Plans and applies; the API calls of the apply alone are in the counters.
  apply::ApplyReport apply(apply::ApplyObserver* observer = nullptr) {
    apply::PreparedPlan prepared = prepare();
    fake.reset_calls();
    client.clear();
    return apply::apply_plan(deps, prepared, options, observer);
  }

  state::ResourceRecord row(const std::string& key) {
    auto r = store->resource(key);
    REQUIRE(r.ok());
    REQUIRE(r->has_value());
    return **r;
  }
  bool has_row(const std::string& key) {
    auto r = store->resource(key);
    REQUIRE(r.ok());
    return r->has_value();
  }
  size_t pending_intents() { return store->pending_intents()->size(); }

  // The row's sink holds the token's current value, and the row its fingerprint.
  void check_delivered(const std::string& key) {
    state::ResourceRecord r = row(key);
    SecretValue value = fake.current_value(r.id);
    REQUIRE_FALSE(value.empty());
    CHECK(sink.content(r.sink_path) == value.reveal());
    CHECK(r.sink_sha256 == sha256_hex(value.reveal()));
    CHECK_FALSE(r.rotate_pending);
  }
};

std::string failure_text(const apply::ApplyReport& report) {
  std::string text = report.refusal;
  for (const auto& r : report.results)
    if (!r.ok) text += "\n" + address_for_key(r.key) + ": " + r.error.describe();
  return text;
}

// Evaluates `expression` (an ApplyReport) once and requires it to be ok.
#define REQUIRE_APPLIED(expression)                    \
  do {                                                 \
    const apply::ApplyReport& applied_ = (expression); \
    INFO(failure_text(applied_));                      \
    REQUIRE(applied_.ok());                            \
  } while (false)

}  // namespace

TEST_CASE("create with one role is one call and delivers the value", "[apply]") {
  Fixture f;
  f.set_specs({workspace_spec("a")});
  int64_t serial = f.store->serial();
  auto report = f.apply();
  REQUIRE_APPLIED(report);
  CHECK(f.client.log() == std::vector<std::string>{"CreateApiToken token a"});
  REQUIRE(f.client.creates().size() == 1);
  const auto request = f.client.creates()[0];
  CHECK(request.type == EntityType::Workspace);
  CHECK(request.role == "WORKSPACE_OWNER");
  CHECK(request.entity_id == kWorkspace);
  CHECK(report.applied.add == 1);
  f.check_delivered("a");
  state::ResourceRecord r = f.row("a");
  CHECK(r.attrs == f.desired.tokens[0].attrs);
  CHECK(r.created_at == kNow);
  CHECK(f.pending_intents() == 0);
  // One bump for the intent, one for the outcome.
  CHECK(f.store->serial() == serial + 2);

  // The next plan has nothing to do.
  CHECK(f.prepare().plan.empty());
}

TEST_CASE("create with three roles is two calls: the primary role - then the whole set",
          "[apply]") {
  Fixture f;
  f.set_specs({workspace_spec("a", 3)});
  auto report = f.apply();
  REQUIRE_APPLIED(report);
  CHECK(f.fake.calls(Operation::CreateApiToken) == 1);
  CHECK(f.fake.calls(Operation::UpdateApiTokenRoles) == 1);
  CHECK(f.fake.total_calls() == 2);
  auto token = f.fake.token(f.row("a").id);
  REQUIRE(token);
  CHECK(token->roles == f.desired.tokens[0].attrs.roles);
  CHECK(f.row("a").attrs.roles == f.desired.tokens[0].attrs.roles);
  f.check_delivered("a");
  CHECK(f.prepare().plan.empty());
}

TEST_CASE("an organization token is created without an entity id", "[apply]") {
  Fixture f;
  spec::TokenSpec s;
  s.key = "org";
  s.attrs.name = "org";
  s.attrs.type = EntityType::Organization;
  s.attrs.role = "ORGANIZATION_MEMBER";
  s.attrs.roles = {
      {"ORGANIZATION_MEMBER", astro::FakeClient::kDefaultOrganization, EntityType::Organization}};
  s.attrs.expiry_period_in_days = 30;
  s.sink = "/sinks/org.token";
  f.set_specs({s});
  auto report = f.apply();
  REQUIRE_APPLIED(report);
  REQUIRE(f.client.creates().size() == 1);
  CHECK(f.client.creates()[0].entity_id.empty());
  CHECK(f.client.creates()[0].expiry_period_in_days == 30);
  CHECK(f.row("org").end_at == kNow + days(30));
}

TEST_CASE("update sends only what differs", "[apply]") {
  Fixture f;
  f.set_specs({workspace_spec("a"), workspace_spec("b")});
  REQUIRE_APPLIED(f.apply());
  const SecretValue value_a = f.fake.current_value(f.row("a").id);

  SECTION("description only") {
    f.desired.tokens[0].attrs.description = "new description";
    int64_t serial = f.store->serial();
    auto report = f.apply();
    REQUIRE_APPLIED(report);
    CHECK(f.client.log() == std::vector<std::string>{"UpdateApiToken " + f.row("a").id});
    CHECK(report.applied.change == 1);
    CHECK(f.row("a").attrs.description == "new description");
    CHECK(f.fake.token(f.row("a").id)->description == "new description");
    CHECK(f.store->serial() == serial + 1);
  }
  SECTION("roles only") {
    f.desired.tokens[0].attrs.roles =
        normalize_roles({{"WORKSPACE_OWNER", kWorkspace, EntityType::Workspace},
                         {"DEPLOYMENT_ADMIN", kDeployment, EntityType::Deployment}});
    auto report = f.apply();
    REQUIRE_APPLIED(report);
    CHECK(f.client.log() == std::vector<std::string>{"UpdateApiTokenRoles " + f.row("a").id});
    CHECK(f.row("a").attrs.roles == f.desired.tokens[0].attrs.roles);
  }
  SECTION("name and roles") {
    f.desired.tokens[0].attrs.name = "renamed";
    f.desired.tokens[0].attrs.roles =
        normalize_roles({{"WORKSPACE_OPERATOR", kWorkspace, EntityType::Workspace}});
    f.desired.tokens[0].attrs.role = "WORKSPACE_OPERATOR";
    auto report = f.apply();
    REQUIRE_APPLIED(report);
    CHECK(f.client.log() == std::vector<std::string>{"UpdateApiToken " + f.row("a").id,
                                                     "UpdateApiTokenRoles " + f.row("a").id});
    CHECK(f.row("a").attrs == f.desired.tokens[0].attrs);
  }
  // No rotation: the value in the sink is still the one created.
  CHECK(f.sink.content("/sinks/a.token") == value_a.reveal());
  CHECK(f.prepare().plan.empty());
}

TEST_CASE("an update that also rotates commits the new attributes and the new value", "[apply]") {
  Fixture f;
  f.set_specs({workspace_spec("a")});
  REQUIRE_APPLIED(f.apply());
  f.desired.tokens[0].attrs.name = "renamed";
  f.sink.set_content("/sinks/a.token", "someone overwrote it");
  auto report = f.apply();
  REQUIRE_APPLIED(report);
  CHECK(f.client.log() == std::vector<std::string>{"UpdateApiToken " + f.row("a").id,
                                                   "RotateApiToken " + f.row("a").id});
  CHECK(report.applied.change == 1);
  CHECK(report.applied.rotate == 1);
  CHECK(f.row("a").attrs.name == "renamed");
  f.check_delivered("a");
}

TEST_CASE("replace deletes first - or creates first with create_before_destroy", "[apply]") {
  Fixture f;
  f.set_specs({workspace_spec("a", 2)});
  REQUIRE_APPLIED(f.apply());
  const std::string old_id = f.row("a").id;
  f.desired.tokens[0].attrs.expiry_period_in_days = 30;

  SECTION("destroy then create") {
    auto report = f.apply();
    REQUIRE_APPLIED(report);
    const std::string new_id = f.row("a").id;
    CHECK(f.client.log() == std::vector<std::string>{"DeleteApiToken " + old_id,
                                                     "CreateApiToken token a",
                                                     "UpdateApiTokenRoles " + new_id});
  }
  SECTION("create then destroy") {
    f.desired.tokens[0].lifecycle.create_before_destroy = true;
    int64_t serial = f.store->serial();
    auto report = f.apply();
    REQUIRE_APPLIED(report);
    const std::string new_id = f.row("a").id;
    CHECK(f.client.log() == std::vector<std::string>{"CreateApiToken token a",
                                                     "UpdateApiTokenRoles " + new_id,
                                                     "DeleteApiToken " + old_id});
    // Intent, new row with the deposed old row, removal of the deposed row.
    CHECK(f.store->serial() == serial + 3);
    CHECK_FALSE(f.has_row(apply::deposed_key("a", old_id)));
  }
  CHECK(f.row("a").id != old_id);
  CHECK(f.row("a").attrs.expiry_period_in_days == 30);
  CHECK_FALSE(f.fake.token(old_id));
  REQUIRE(f.fake.tokens().size() == 1);
  f.check_delivered("a");
  CHECK(f.store->resources()->size() == 1);
  CHECK(f.prepare().plan.empty());
}

TEST_CASE("create_before_destroy keeps the old token deposed when it cannot be deleted",
          "[apply]") {
  Fixture f;
  f.set_specs({workspace_spec("a")});
  f.desired.tokens[0].lifecycle.create_before_destroy = true;
  REQUIRE_APPLIED(f.apply());
  const std::string old_id = f.row("a").id;
  f.desired.tokens[0].attrs.expiry_period_in_days = 30;
  f.fake.script_failure(Operation::DeleteApiToken,
                        {ErrorKind::Forbidden, 1, false, "not allowed", 403});
  auto report = f.apply();
  REQUIRE(report.failed == 1);
  CHECK_THAT(report.results[0].error.message, Catch::Contains("could not be destroyed"));
  CHECK(f.row("a").id != old_id);
  f.check_delivered("a");
  REQUIRE(f.has_row(apply::deposed_key("a", old_id)));

  // The next run destroys the deposed token, and leaves the sink alone.
  auto next = f.prepare();
  REQUIRE(next.plan.changes.size() == 1);
  CHECK(next.plan.changes[0].action == plan::Action::Delete);
  REQUIRE_APPLIED(f.apply());
  CHECK(f.client.log() == std::vector<std::string>{"DeleteApiToken " + old_id});
  CHECK_FALSE(f.has_row(apply::deposed_key("a", old_id)));
  f.check_delivered("a");
}

TEST_CASE("delete destroys the token - drops the row and removes the sink", "[apply]") {
  Fixture f;
  f.set_specs({workspace_spec("a"), workspace_spec("b")});
  REQUIRE_APPLIED(f.apply());
  const std::string id = f.row("b").id;
  f.desired.tokens.pop_back();
  int64_t serial = f.store->serial();
  auto report = f.apply();
  REQUIRE_APPLIED(report);
  CHECK(f.client.log() == std::vector<std::string>{"DeleteApiToken " + id});
  CHECK(report.applied.destroy == 1);
  CHECK_FALSE(f.has_row("b"));
  CHECK_FALSE(f.sink.content("/sinks/b.token"));
  CHECK(f.sink.content("/sinks/a.token"));
  CHECK(f.store->serial() == serial + 1);
}

TEST_CASE("delete of a token that is already gone succeeds", "[apply]") {
  Fixture f;
  f.set_specs({workspace_spec("a"), workspace_spec("b")});
  REQUIRE_APPLIED(f.apply());
  const std::string id = f.row("b").id;
  f.desired.tokens.pop_back();
  apply::PreparedPlan prepared = f.prepare();
  REQUIRE(f.fake.remove_token(id));  // gone between plan and apply
  auto report = apply::apply_plan(f.deps, prepared, f.options);
  REQUIRE_APPLIED(report);
  CHECK_FALSE(f.has_row("b"));
}

TEST_CASE("forget drops the row without an API call", "[apply]") {
  Fixture f;
  f.set_specs({workspace_spec("a"), workspace_spec("b")});
  REQUIRE_APPLIED(f.apply());
  REQUIRE(f.fake.remove_token(f.row("b").id));
  f.desired.tokens.pop_back();
  auto report = f.apply();
  REQUIRE_APPLIED(report);
  CHECK(f.client.log().empty());
  CHECK_FALSE(f.has_row("b"));
  CHECK(report.results.size() == 1);
  CHECK(report.results[0].action == plan::Action::Forget);
}

TEST_CASE("rotate journals - rotates - delivers and commits", "[apply]") {
  Fixture f;
  f.set_specs({workspace_spec("a")});
  f.desired.tokens[0].attrs.expiry_period_in_days = 10;
  f.desired.tokens[0].rotate_before_expiry_days = 3;
  REQUIRE_APPLIED(f.apply());
  const std::string id = f.row("a").id;
  f.clock.advance(days(8));
  int64_t serial = f.store->serial();
  auto report = f.apply();
  REQUIRE_APPLIED(report);
  CHECK(f.client.log() == std::vector<std::string>{"RotateApiToken " + id});
  CHECK(report.applied.rotate == 1);
  CHECK(f.row("a").id == id);
  CHECK(f.row("a").start_at == kNow + days(8));
  CHECK(f.row("a").end_at == kNow + days(18));
  f.check_delivered("a");
  CHECK(f.store->serial() == serial + 2);
  CHECK(f.pending_intents() == 0);
}

TEST_CASE("rotate delivers to a changed sink path", "[apply]") {
  Fixture f;
  f.set_specs({workspace_spec("a")});
  REQUIRE_APPLIED(f.apply());
  f.desired.tokens[0].sink = "/elsewhere/a.token";
  REQUIRE_APPLIED(f.apply());
  CHECK(f.row("a").sink_path == "/elsewhere/a.token");
  f.check_delivered("a");
}

TEST_CASE("import records the adopted token and applies its updates", "[apply]") {
  Fixture f;
  auto existing = f.fake.create_token(
      {"legacy", "", EntityType::Workspace, "WORKSPACE_OWNER", kWorkspace, std::nullopt});
  REQUIRE(existing.ok());
  spec::TokenSpec s = workspace_spec("legacy");
  s.import_id = existing->id;
  s.attrs.description = "now managed";
  f.set_specs({s});
  auto report = f.apply();
  REQUIRE_APPLIED(report);
  CHECK(f.client.log() == std::vector<std::string>{"UpdateApiToken " + existing->id});
  CHECK(report.applied.import == 1);
  CHECK(report.applied.add == 0);
  CHECK(report.applied.change == 1);
  state::ResourceRecord r = f.row("legacy");
  CHECK(r.id == existing->id);
  CHECK(r.attrs.description == "now managed");
  CHECK(r.sink_path == "/sinks/legacy.token");
  CHECK(r.sink_sha256.empty());
  CHECK_FALSE(f.sink.content("/sinks/legacy.token"));
  CHECK(f.fake.tokens().size() == 1);
}

TEST_CASE("an import with a requested rotation delivers a new value", "[apply]") {
  Fixture f;
  auto existing = f.fake.create_token(
      {"token legacy", "", EntityType::Workspace, "WORKSPACE_OWNER", kWorkspace, std::nullopt});
  REQUIRE(existing.ok());
  spec::TokenSpec s = workspace_spec("legacy");
  s.import_id = existing->id;
  f.set_specs({s});
  apply::PlanRequest request;
  request.rotations = {"astro_api_token.legacy"};
  auto prepared = apply::prepare_plan(f.deps, f.desired, request);
  REQUIRE(prepared.ok());
  REQUIRE(prepared->plan.changes.size() == 1);
  CHECK(prepared->plan.changes[0].rotate_reason == plan::RotateReason::Requested);
  f.client.clear();
  auto report = apply::apply_plan(f.deps, *prepared, f.options);
  REQUIRE_APPLIED(report);
  CHECK(f.client.log() == std::vector<std::string>{"RotateApiToken " + existing->id});
  CHECK(report.applied.import == 1);
  CHECK(report.applied.rotate == 1);
  CHECK(f.row("legacy").id == existing->id);
  f.check_delivered("legacy");
}

TEST_CASE("import without refresh reads the token first", "[apply]") {
  Fixture f;
  auto existing = f.fake.create_token(
      {"token legacy", "", EntityType::Workspace, "WORKSPACE_OWNER", kWorkspace, std::nullopt});
  REQUIRE(existing.ok());
  spec::TokenSpec s = workspace_spec("legacy");
  s.import_id = existing->id;
  f.set_specs({s});
  auto prepared = apply::prepare_plan(f.deps, f.desired, {false, {}, false, {}});
  REQUIRE(prepared.ok());
  REQUIRE(prepared->plan.changes.size() == 1);
  CHECK_FALSE(prepared->plan.changes[0].before);
  f.client.clear();
  auto report = apply::apply_plan(f.deps, *prepared, f.options);
  REQUIRE_APPLIED(report);
  CHECK(f.client.log() == std::vector<std::string>{"GetApiToken " + existing->id});
  CHECK(f.row("legacy").id == existing->id);
}

TEST_CASE("an ambiguous create that took effect is adopted - rotated and delivered", "[apply]") {
  Fixture f;
  f.set_specs({workspace_spec("a", 2)});
  f.fake.script_failure(Operation::CreateApiToken,
                        {ErrorKind::Ambiguous, 1, true, "connection reset", 0});
  auto report = f.apply();
  REQUIRE_APPLIED(report);
  REQUIRE(f.fake.tokens().size() == 1);  // no duplicate
  const std::string id = f.fake.tokens()[0].id;
  CHECK(f.client.log() == std::vector<std::string>{"CreateApiToken token a", "ListApiTokens",
                                                   "UpdateApiTokenRoles " + id,
                                                   "RotateApiToken " + id});
  CHECK(f.row("a").id == id);
  CHECK(f.row("a").attrs.roles == f.desired.tokens[0].attrs.roles);
  f.check_delivered("a");
  CHECK(f.pending_intents() == 0);
  CHECK(f.prepare().plan.empty());
}

TEST_CASE("an ambiguous create that did not take effect is retried once", "[apply]") {
  Fixture f;
  f.set_specs({workspace_spec("a")});
  f.fake.script_failure(Operation::CreateApiToken,
                        {ErrorKind::Ambiguous, 1, false, "timed out", 0});
  auto report = f.apply();
  REQUIRE_APPLIED(report);
  CHECK(f.client.log() == std::vector<std::string>{"CreateApiToken token a", "ListApiTokens",
                                                   "CreateApiToken token a"});
  REQUIRE(f.fake.tokens().size() == 1);
  f.check_delivered("a");
  CHECK(f.pending_intents() == 0);
}

TEST_CASE("an ambiguous create never adopts a token another key manages", "[apply]") {
  Fixture f;
  spec::TokenSpec a = workspace_spec("a");
  spec::TokenSpec b = workspace_spec("b");
  b.attrs.name = a.attrs.name;  // names need not be unique
  f.set_specs({a});
  REQUIRE_APPLIED(f.apply());
  f.set_specs({a, b});
  f.fake.script_failure(Operation::CreateApiToken,
                        {ErrorKind::Ambiguous, 1, false, "timed out", 0});
  REQUIRE_APPLIED(f.apply());
  CHECK(f.fake.calls(Operation::CreateApiToken) == 2);
  CHECK(f.row("a").id != f.row("b").id);
  CHECK(f.fake.tokens().size() == 2);
}

TEST_CASE("an ambiguous create that stays unresolved leaves its intent for the next run",
          "[apply]") {
  Fixture f;
  f.set_specs({workspace_spec("a")});
  auto prepared = f.prepare();
  f.fake.script_failure(Operation::CreateApiToken, {ErrorKind::Ambiguous, 1, true, "timed out", 0});
  f.fake.script_failure(Operation::ListApiTokens, {ErrorKind::Unavailable, 1, false, "down", 503});
  auto report = apply::apply_plan(f.deps, prepared, f.options);
  REQUIRE(report.failed == 1);
  CHECK(report.results[0].error.kind == ErrorKind::Ambiguous);
  CHECK(f.pending_intents() == 1);
  CHECK_FALSE(f.has_row("a"));

  // The next run adopts the token the create made and rotates its value.
  auto next = f.prepare();
  REQUIRE(next.recovery.size() == 1);
  REQUIRE(next.plan.changes.size() == 1);
  CHECK(next.plan.changes[0].action == plan::Action::Rotate);
  REQUIRE_APPLIED(apply::apply_plan(f.deps, next, f.options));
  CHECK(f.fake.tokens().size() == 1);
  f.check_delivered("a");
  CHECK(f.pending_intents() == 0);
}

TEST_CASE("an ambiguous create is never retried on the word of an inconsistent listing",
          "[apply]") {
  Fixture f;
  f.set_specs({workspace_spec("a")});
  auto prepared = f.prepare();
  f.fake.script_failure(Operation::CreateApiToken,
                        {ErrorKind::Ambiguous, 1, false, "timed out", 0});
  f.fake.set_listing_problem("token x was listed on two pages");
  auto report = apply::apply_plan(f.deps, prepared, f.options);
  REQUIRE(report.failed == 1);
  CHECK(report.results[0].error.kind == ErrorKind::Ambiguous);
  CHECK_THAT(report.results[0].error.message,
             Catch::Contains("the listing of tokens that would show it was inconsistent (token x "
                             "was listed on two pages); the next run will settle it"));
  CHECK(f.fake.calls(Operation::CreateApiToken) == 1);
  CHECK(f.pending_intents() == 1);
  CHECK_FALSE(f.has_row("a"));
}

TEST_CASE("apply settles an interrupted create before it creates again", "[apply]") {
  Fixture f;
  f.set_specs({workspace_spec("a")});
  state::Intent intent;
  intent.key = "a";
  intent.kind = state::IntentKind::Create;
  intent.attrs = f.desired.tokens[0].attrs;
  intent.sink_path = f.desired.tokens[0].sink;
  intent.started_at = kNow - seconds(5);
  REQUIRE(f.store->journal_intent(intent).ok());
  // The plan's listing is inconsistent: the intent stays unsettled.
  f.fake.set_listing_problem("totalCount changed from 3 to 2 between pages");
  auto prepared = f.prepare();
  REQUIRE(prepared.unsettled.size() == 1);
  f.client.clear();

  SECTION("a consistent listing shows nothing: the intent is dropped and the token created") {
    f.fake.set_listing_problem("");
    REQUIRE_APPLIED(apply::apply_plan(f.deps, prepared, f.options));
    CHECK(f.client.log() == std::vector<std::string>{"ListApiTokens", "CreateApiToken token a"});
    REQUIRE(f.fake.tokens().size() == 1);
    f.check_delivered("a");
    CHECK(f.pending_intents() == 0);
  }
  SECTION("the token the interrupted create made shows up: it is adopted, not made again") {
    auto made = f.fake.create_token(
        {"token a", "", EntityType::Workspace, "WORKSPACE_OWNER", kWorkspace, std::nullopt});
    REQUIRE(made.ok());
    REQUIRE_APPLIED(apply::apply_plan(f.deps, prepared, f.options));
    CHECK(f.client.log() ==
          std::vector<std::string>{"ListApiTokens", "RotateApiToken " + made->id});
    REQUIRE(f.fake.tokens().size() == 1);
    CHECK(f.row("a").id == made->id);
    f.check_delivered("a");
    CHECK(f.pending_intents() == 0);
  }
  SECTION("the listing is still inconsistent: nothing is created and the intent stays") {
    auto report = apply::apply_plan(f.deps, prepared, f.options);
    REQUIRE(report.failed == 1);
    CHECK(report.results[0].error.kind == ErrorKind::Ambiguous);
    CHECK(f.client.log() == std::vector<std::string>{"ListApiTokens"});
    CHECK(f.fake.tokens().empty());
    CHECK(f.pending_intents() == 1);
  }
}

TEST_CASE("an ambiguous create is tried at most three times", "[apply]") {
  Fixture f;
  f.set_specs({workspace_spec("a")});
  f.fake.script_failure(Operation::CreateApiToken,
                        {ErrorKind::Ambiguous, 5, false, "timed out", 0});
  auto report = f.apply();
  REQUIRE(report.failed == 1);
  CHECK(f.fake.calls(Operation::CreateApiToken) == 3);
  CHECK(f.fake.calls(Operation::ListApiTokens) == 3);
  CHECK_THAT(report.results[0].error.message, Catch::Contains("after 3 attempts"));
  CHECK(f.pending_intents() == 0);
  CHECK(f.fake.tokens().empty());
}

TEST_CASE("an ambiguous rotation is checked with a get", "[apply]") {
  Fixture f;
  f.clock.set(kNow - days(30));
  f.set_specs({workspace_spec("a")});
  f.desired.tokens[0].rotate_every_days = 7;
  REQUIRE_APPLIED(f.apply());
  const std::string id = f.row("a").id;
  f.clock.set(kNow);

  SECTION("it took effect: the lost value is recorded and the token rotated again") {
    f.fake.script_failure(Operation::RotateApiToken, {ErrorKind::Ambiguous, 1, true, "reset", 0});
    auto report = f.apply();
    REQUIRE_APPLIED(report);
    CHECK(f.client.log() == std::vector<std::string>{"RotateApiToken " + id, "GetApiToken " + id,
                                                     "RotateApiToken " + id});
    f.check_delivered("a");
  }
  SECTION("it took effect and the second rotation fails: the value is known to be lost") {
    f.fake.script_failure(Operation::RotateApiToken, {ErrorKind::Ambiguous, 1, true, "reset", 0});
    f.fake.script_failure(Operation::RotateApiToken,
                          {ErrorKind::Unavailable, 1, false, "down", 503});
    auto report = f.apply();
    REQUIRE(report.failed == 1);
    CHECK(f.row("a").rotate_pending);
    CHECK(f.row("a").start_at == kNow);
    CHECK(f.pending_intents() == 0);
    auto next = f.prepare();
    REQUIRE(next.plan.changes.size() == 1);
    CHECK(next.plan.changes[0].rotate_reason == plan::RotateReason::ValueLost);
  }
  SECTION("it did not take effect: the rotation is retried") {
    f.fake.script_failure(Operation::RotateApiToken, {ErrorKind::Ambiguous, 1, false, "reset", 0});
    auto report = f.apply();
    REQUIRE_APPLIED(report);
    CHECK(f.client.log() == std::vector<std::string>{"RotateApiToken " + id, "GetApiToken " + id,
                                                     "RotateApiToken " + id});
    f.check_delivered("a");
  }
  SECTION("it did not take effect and the retry fails: the old value still stands") {
    const std::string old_value = *f.sink.content("/sinks/a.token");
    f.fake.script_failure(Operation::RotateApiToken, {ErrorKind::Ambiguous, 1, false, "reset", 0});
    f.fake.script_failure(Operation::RotateApiToken,
                          {ErrorKind::Unavailable, 1, false, "down", 503});
    auto report = f.apply();
    REQUIRE(report.failed == 1);
    CHECK_FALSE(f.row("a").rotate_pending);
    CHECK(f.sink.content("/sinks/a.token") == old_value);
    CHECK(f.fake.current_value(id).reveal() == old_value);
    CHECK(f.pending_intents() == 0);
  }
  CHECK(f.fake.tokens().size() == 1);
}

TEST_CASE("a refused role update after create keeps the token", "[apply]") {
  Fixture f;
  f.set_specs({workspace_spec("a", 3)});
  f.fake.script_failure(Operation::UpdateApiTokenRoles,
                        {ErrorKind::Invalid, 1, false, "role not allowed", 400});
  auto report = f.apply();
  REQUIRE(report.failed == 1);
  CHECK(report.applied.add == 0);
  const apply::ActionResult& result = report.results[0];
  CHECK(
      result.error.describe() ==
      "the token was created but its roles could not be set: UpdateApiTokenRoles: role not allowed "
      "(HTTP 400, requestId fake-request-id)");
  REQUIRE(f.fake.tokens().size() == 1);
  state::ResourceRecord r = f.row("a");
  CHECK(r.id == f.fake.tokens()[0].id);
  CHECK(r.attrs.roles.size() == 1);
  f.check_delivered("a");
  CHECK(f.pending_intents() == 0);

  // The next plan sets the roles; nothing is created again.
  auto next = f.prepare();
  REQUIRE(next.plan.changes.size() == 1);
  CHECK(next.plan.changes[0].action == plan::Action::Update);
  CHECK(next.plan.changes[0].update_roles);
  REQUIRE_APPLIED(apply::apply_plan(f.deps, next, f.options));
  CHECK(f.fake.calls(Operation::CreateApiToken) == 1);
  CHECK(f.prepare().plan.empty());
}

TEST_CASE("a failed sink write keeps the token with its value marked lost", "[apply]") {
  Fixture f;
  f.set_specs({workspace_spec("a")});
  f.sink.fail_writes(true);
  auto report = f.apply();
  REQUIRE(report.failed == 1);
  CHECK(report.results[0].error.kind == ErrorKind::Io);
  CHECK_THAT(report.results[0].error.message, Catch::Contains("could not be delivered"));
  REQUIRE(f.fake.tokens().size() == 1);
  state::ResourceRecord r = f.row("a");
  CHECK(r.rotate_pending);
  CHECK(r.sink_sha256.empty());
  CHECK(f.pending_intents() == 0);

  f.sink.fail_writes(false);
  auto next = f.prepare();
  REQUIRE(next.plan.changes.size() == 1);
  CHECK(next.plan.changes[0].rotate_reason == plan::RotateReason::ValueLost);
  REQUIRE_APPLIED(apply::apply_plan(f.deps, next, f.options));
  CHECK(f.fake.tokens().size() == 1);
  f.check_delivered("a");
}

TEST_CASE("a 4xx fails only its own change - with the API's message and requestId", "[apply]") {
  Fixture f;
  f.set_specs({workspace_spec("a"), workspace_spec("b"), workspace_spec("c")});
  f.options.parallelism = 1;
  f.fake.script_failure(Operation::CreateApiToken,
                        {ErrorKind::Forbidden, 1, false, "token lacks permission", 403});
  auto report = f.apply();
  CHECK(report.failed == 1);
  CHECK(report.applied.add == 2);
  CHECK(f.fake.calls(Operation::CreateApiToken) == 3);
  REQUIRE(report.results.size() == 3);
  CHECK_FALSE(report.results[0].ok);
  CHECK(report.results[0].key == "a");
  CHECK(report.results[0].error.describe() ==
        "CreateApiToken: token lacks permission (HTTP 403, requestId fake-request-id)");
  CHECK_FALSE(f.has_row("a"));
  f.check_delivered("b");
  f.check_delivered("c");
  CHECK(f.pending_intents() == 0);
}

TEST_CASE("the mass-delete guard refuses - changing nothing", "[apply]") {
  Fixture f;
  std::vector<spec::TokenSpec> specs;
  for (char c = 'a'; c <= 'g'; ++c) specs.push_back(workspace_spec(std::string(1, c)));
  f.set_specs(specs);
  REQUIRE_APPLIED(f.apply());
  const int64_t serial = f.store->serial();

  SECTION("more than max_deletes_per_run") {
    f.desired.tokens.resize(1);
    auto report = f.apply();
    CHECK(report.refused);
    CHECK(report.refusal ==
          "Refusing to destroy 6 tokens: that is more than max_deletes_per_run (5). Nothing was "
          "changed. "
          "If this is intended, run again with --allow-mass-delete.");
    CHECK(f.fake.total_calls() == 0);
    CHECK(f.store->serial() == serial);
    CHECK(f.fake.tokens().size() == 7);

    f.options.allow_mass_delete = true;
    auto allowed = f.apply();
    REQUIRE_APPLIED(allowed);
    CHECK(allowed.applied.destroy == 6);
    CHECK(f.fake.tokens().size() == 1);
  }
  SECTION("every managed token") {
    f.options.max_deletes_per_run = 100;
    f.desired.tokens.clear();
    auto report = f.apply();
    CHECK(report.refused);
    CHECK_THAT(report.refusal, Catch::StartsWith("Refusing to destroy all 7 managed tokens"));
    CHECK_THAT(report.refusal, Catch::Contains("spec directories may be empty or missing"));
    CHECK_THAT(report.refusal, Catch::Contains("--allow-mass-delete"));
    CHECK(f.fake.total_calls() == 0);
    CHECK(f.store->serial() == serial);

    f.options.allow_mass_delete = true;
    REQUIRE_APPLIED(f.apply());
    CHECK(f.fake.tokens().empty());
    CHECK(f.store->resources()->empty());
  }
  SECTION("every managed token, some already gone") {
    f.desired.tokens.clear();
    for (const auto& token : f.fake.tokens())
      if (token.name != "token a") f.fake.remove_token(token.id);
    auto report = f.apply();
    CHECK(report.refused);
    CHECK_THAT(report.refusal, Catch::StartsWith("Refusing to destroy all 1 managed"));
  }
  SECTION("within the limit") {
    f.desired.tokens.resize(2);
    REQUIRE_APPLIED(f.apply());
    CHECK(f.fake.tokens().size() == 2);
  }
}

TEST_CASE("the guard counts the only managed token", "[apply]") {
  Fixture f;
  f.set_specs({workspace_spec("a")});
  REQUIRE_APPLIED(f.apply());
  f.desired.tokens.clear();
  auto report = f.apply();
  CHECK(report.refused);
  CHECK_THAT(report.refusal, Catch::StartsWith("Refusing to destroy the only managed token"));
  CHECK(f.fake.tokens().size() == 1);
}

TEST_CASE("a plan with errors is refused", "[apply]") {
  Fixture f;
  f.set_specs({workspace_spec("a")});
  apply::PreparedPlan prepared = f.prepare();
  prepared.plan.errors.push_back(
      "import_id \"x\" for astro_api_token.b does not exist in the organization");
  const int64_t serial = f.store->serial();
  f.client.clear();
  auto report = apply::apply_plan(f.deps, prepared, f.options);
  CHECK(report.refused);
  CHECK_FALSE(report.ok());
  CHECK_THAT(report.refusal, Catch::Contains("import_id \"x\""));
  CHECK(f.client.log().empty());
  CHECK(f.store->serial() == serial);
  CHECK(report.results.empty());
}

TEST_CASE("a refused plan does not commit its recovery either", "[apply]") {
  Fixture f;
  f.set_specs({workspace_spec("a")});
  state::Intent intent;
  intent.key = "a";
  intent.attrs = f.desired.tokens[0].attrs;
  intent.sink_path = f.desired.tokens[0].sink;
  intent.started_at = kNow;
  REQUIRE(f.store->journal_intent(intent).ok());
  apply::PreparedPlan prepared = f.prepare();
  REQUIRE(prepared.dropped_intents.size() == 1);
  prepared.plan.errors.push_back("broken");
  const int64_t serial = f.store->serial();
  CHECK(apply::apply_plan(f.deps, prepared, f.options).refused);
  CHECK(f.store->serial() == serial);
  CHECK(f.pending_intents() == 1);
}

TEST_CASE("an interrupted create_before_destroy is recovered in one transaction", "[apply]") {
  Fixture f;
  f.set_specs({workspace_spec("a")});
  f.desired.tokens[0].lifecycle.create_before_destroy = true;
  REQUIRE_APPLIED(f.apply());
  const std::string old_id = f.row("a").id;
  // A previous run journalled the replacement's create, created it, and died.
  f.desired.tokens[0].attrs.expiry_period_in_days = 30;
  state::Intent intent;
  intent.key = "a";
  intent.attrs = f.desired.tokens[0].attrs;
  intent.sink_path = f.desired.tokens[0].sink;
  intent.started_at = kNow;
  REQUIRE(f.store->journal_intent(intent).ok());
  auto created = f.fake.create_token(
      {"token a", "", EntityType::Workspace, "WORKSPACE_OWNER", kWorkspace, 30});
  REQUIRE(created.ok());

  auto report = f.apply();
  REQUIRE_APPLIED(report);
  CHECK(f.row("a").id == created->id);
  CHECK_FALSE(f.has_row(apply::deposed_key("a", old_id)));
  CHECK_FALSE(f.fake.token(old_id));
  CHECK(f.fake.tokens().size() == 1);
  f.check_delivered("a");
  CHECK(f.pending_intents() == 0);
}

TEST_CASE("stop: no change starts once it is raised", "[apply]") {
  Fixture f;
  f.set_specs({workspace_spec("a"), workspace_spec("b"), workspace_spec("c")});
  std::atomic<bool> stop{false};
  f.options.stop = &stop;
  f.options.parallelism = 1;

  SECTION("raised before the run") {
    stop = true;
    auto report = f.apply();
    CHECK(report.stopped);
    CHECK(report.results.empty());
    CHECK(f.fake.total_calls() == 0);
  }
  SECTION("raised while the first change runs") {
    class StopAfterFirst final : public apply::ApplyObserver {
     public:
      explicit StopAfterFirst(std::atomic<bool>& flag) : flag_(flag) {}
      void started(const plan::Change&) override { flag_ = true; }
      void finished(const plan::Change&, const apply::ActionResult&) override {}

     private:
      std::atomic<bool>& flag_;
    } observer(stop);
    auto report = f.apply(&observer);
    CHECK(report.stopped);
    REQUIRE(report.results.size() == 1);
    CHECK(report.results[0].ok);
    // The change in flight finished and committed.
    f.check_delivered("a");
    CHECK_FALSE(f.has_row("b"));
    CHECK(f.pending_intents() == 0);
  }
}

TEST_CASE("parallel workers apply every change once and report each", "[apply]") {
  Fixture f;
  std::vector<spec::TokenSpec> specs;
  for (int i = 0; i < 40; ++i)
    specs.push_back(workspace_spec("t" + std::to_string(100 + i), 1 + i % 3));
  f.set_specs(specs);
  f.options.parallelism = 8;
  CollectingObserver observer;
  auto report = f.apply(&observer);
  REQUIRE_APPLIED(report);
  CHECK(report.applied.add == 40);
  CHECK(report.results.size() == 40);
  CHECK(observer.started_.size() == 40);
  CHECK(observer.finished_.size() == 40);
  CHECK(f.fake.tokens().size() == 40);
  CHECK(f.fake.calls(Operation::CreateApiToken) == 40);
  for (const auto& s : f.desired.tokens) f.check_delivered(s.key);
  CHECK(f.prepare().plan.empty());
}

TEST_CASE("each action is recorded in the run's history", "[apply]") {
  Fixture f;
  f.set_specs({workspace_spec("a"), workspace_spec("b")});
  state::RunRecord run;
  run.trigger = "cli";
  run.command = "apply";
  run.started_at = kNow;
  auto run_id = f.store->begin_run(run);
  REQUIRE(run_id.ok());
  f.options.run_id = *run_id;
  f.options.parallelism = 1;
  f.fake.script_failure(Operation::CreateApiToken, {ErrorKind::Invalid, 1, false, "bad name", 400});
  auto report = f.apply();
  CHECK(report.failed == 1);
  auto runs = f.store->runs(1);
  REQUIRE(runs.ok());
  REQUIRE(runs->size() == 1);
  const auto& actions = runs->front().actions;
  REQUIRE(actions.size() == 2);
  CHECK(actions[0].address == "astro_api_token.a");
  CHECK(actions[0].action == "create");
  CHECK_FALSE(actions[0].ok);
  CHECK(actions[0].message == "CreateApiToken: bad name (HTTP 400, requestId fake-request-id)");
  CHECK(actions[1].ok);
  CHECK(actions[1].message.empty());
}

TEST_CASE("no token value ever reaches the state database", "[apply]") {
  testing::TempDir dir;
  const std::string db = dir.file("state.db");
  {
    Fixture f(db);
    f.set_specs({workspace_spec("a", 3), workspace_spec("b"), workspace_spec("c", 2)});
    f.desired.tokens[1].lifecycle.create_before_destroy = true;
    REQUIRE_APPLIED(f.apply());
    f.desired.tokens[0].attrs.expiry_period_in_days = 5;  // replace
    f.desired.tokens[1].attrs.expiry_period_in_days = 5;  // replace, create first
    f.sink.set_content("/sinks/c.token", "lost");         // rotate
    f.fake.script_failure(Operation::CreateApiToken, {ErrorKind::Ambiguous, 1, true, "reset", 0});
    REQUIRE_APPLIED(f.apply());
    f.fake.script_failure(Operation::RotateApiToken, {ErrorKind::Ambiguous, 1, true, "reset", 0});
    f.clock.advance(days(10));  // expired: rotate all
    REQUIRE_APPLIED(f.apply());

    // Values were issued ("fake-token-value-N") and delivered…
    auto rows = f.store->resources();
    REQUIRE(rows.ok());
    REQUIRE(rows->size() == 3);
    for (const auto& r : *rows) {
      CHECK_THAT(*f.sink.content(r.sink_path), Catch::StartsWith("fake-token-value-"));
      CHECK(r.sink_sha256 == sha256_hex(*f.sink.content(r.sink_path)));
    }
    CHECK(f.fake.calls(Operation::RotateApiToken) == 3);  // one ambiguous, two expired
    // …but none is in the database or its journal files, open…
    for (const std::string suffix : {"", "-wal", "-shm"}) {
      if (!std::filesystem::exists(db + suffix)) continue;
      CHECK(testing::read_file(db + suffix).find("fake-token-value") == std::string::npos);
    }
  }
  // …or closed.
  for (const std::string suffix : {"", "-wal", "-shm"}) {
    if (!std::filesystem::exists(db + suffix)) continue;
    CHECK(testing::read_file(db + suffix).find("fake-token-value") == std::string::npos);
  }
  SQLite::Database raw(db, SQLite::OPEN_READONLY);
  CHECK(raw.execAndGet("PRAGMA integrity_check").getString() == "ok");
}

TEST_CASE("an ambiguous create is not made again while its request may still reach the API",
          "[apply]") {
  Fixture f;
  f.options.settle_window = std::chrono::seconds(5);  // a 3 s client timeout and its margin
  f.set_specs({workspace_spec("a")});
  f.fake.script_failure(Operation::CreateApiToken,
                        {ErrorKind::Ambiguous, 1, false, "connection reset", 0});
  auto report = f.apply();
  REQUIRE(report.failed == 1);
  CHECK(report.results[0].error.kind == ErrorKind::Ambiguous);
  CHECK(report.results[0].error.message.find("may still take effect") != std::string::npos);
  CHECK(f.client.log() == std::vector<std::string>{"CreateApiToken token a", "ListApiTokens"});
  CHECK(f.pending_intents() == 1);
  CHECK_FALSE(f.has_row("a"));

  // A run within the window creates nothing either.
  f.clock.advance(std::chrono::seconds(2));
  report = f.apply();
  REQUIRE(report.failed == 1);
  CHECK(f.fake.calls(Operation::CreateApiToken) == 0);
  CHECK(f.pending_intents() == 1);

  // The request lands late; the first run after the window adopts its token.
  astro::CreateTokenRequest late;
  late.name = "token a";
  late.type = EntityType::Workspace;
  late.role = "WORKSPACE_OWNER";
  late.entity_id = kWorkspace;
  REQUIRE(f.fake.create_token(late).ok());
  f.clock.advance(std::chrono::seconds(7));
  REQUIRE_APPLIED(f.apply());
  CHECK(f.fake.calls(Operation::CreateApiToken) == 0);
  CHECK(f.fake.tokens().size() == 1);
  f.check_delivered("a");
  CHECK(f.pending_intents() == 0);
  CHECK(f.prepare().plan.empty());
}

TEST_CASE("a second token a create made late is destroyed - and recorded in history", "[apply]") {
  Fixture f;
  f.options.settle_window = std::chrono::seconds(8);
  f.set_specs({workspace_spec("a")});
  REQUIRE_APPLIED(f.apply());
  const std::string mine = f.row("a").id;
  // The same create reached the API twice (a retry behind a proxy): a second
  // token with the primary role, within the create's window.
  f.clock.advance(std::chrono::seconds(1));
  astro::CreateTokenRequest twin;
  twin.name = "token a";
  twin.type = EntityType::Workspace;
  twin.role = "WORKSPACE_OWNER";
  twin.entity_id = kWorkspace;
  auto extra = f.fake.create_token(twin);
  REQUIRE(extra.ok());
  // And a person's token of the same name, made an hour later: never ours.
  f.clock.advance(std::chrono::hours(1));
  auto person = f.fake.create_token(twin);
  REQUIRE(person.ok());

  auto prepared = f.prepare();
  REQUIRE(prepared.late.size() == 1);
  CHECK(prepared.late[0].token_id == extra->id);
  REQUIRE(prepared.plan.changes.size() == 1);
  CHECK(prepared.plan.changes[0].action == plan::Action::Delete);
  CHECK(prepared.plan.changes[0].key == apply::deposed_key("a", extra->id));
  auto run = f.store->begin_run(state::RunRecord{});
  REQUIRE(run.ok());
  f.options.run_id = *run;
  REQUIRE_APPLIED(apply::apply_plan(f.deps, prepared, f.options));
  std::vector<std::string> ids;
  for (const auto& token : f.fake.tokens()) ids.push_back(token.id);
  std::sort(ids.begin(), ids.end());
  std::vector<std::string> expected{mine, person->id};
  std::sort(expected.begin(), expected.end());
  CHECK(ids == expected);
  CHECK(f.row("a").id == mine);
  CHECK_FALSE(f.has_row(apply::deposed_key("a", extra->id)));
  auto runs = f.store->runs(1);
  REQUIRE(runs.ok());
  REQUIRE(runs->size() == 1);
  std::vector<std::string> actions;
  for (const auto& action : runs->front().actions) actions.push_back(action.action);
  CHECK(actions == std::vector<std::string>{"orphan", "delete"});
  CHECK(f.prepare().plan.empty());
}

TEST_CASE("an ambiguous create waits out a short window - then creates again", "[apply]") {
  Fixture f;
  f.options.settle_window = std::chrono::seconds(1);
  f.options.settle_wait = std::chrono::seconds(2);
  f.set_specs({workspace_spec("a")});
  f.fake.script_failure(Operation::CreateApiToken,
                        {ErrorKind::Ambiguous, 1, false, "connection reset", 0});
  const auto started = std::chrono::steady_clock::now();
  REQUIRE_APPLIED(f.apply());
  CHECK(std::chrono::steady_clock::now() - started >= std::chrono::milliseconds(900));
  CHECK(f.client.log() == std::vector<std::string>{"CreateApiToken token a", "ListApiTokens",
                                                   "ListApiTokens", "CreateApiToken token a"});
  REQUIRE(f.fake.tokens().size() == 1);
  f.check_delivered("a");
  CHECK(f.pending_intents() == 0);
}
