// One reconcile cycle in-process: FakeClient, a ":memory:" store, a
// MemorySink, a fixed wall clock and a manual monotonic clock.
#include "daemon/cycle.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "astro/fake_client.h"
#include "state/store.h"

namespace {

using namespace tokend;  // NOLINT: test file
using astro::Operation;
using daemon::CycleOutcome;
using daemon::CycleResult;

const Timestamp kNow = *parse_rfc3339("2026-11-28T12:00:00Z");

spec::TokenSpec workspace_spec(const std::string& key) {
  spec::TokenSpec s;
  s.key = key;
  s.attrs.name = "token " + key;
  s.attrs.type = EntityType::Workspace;
  s.attrs.role = "WORKSPACE_OWNER";
  s.attrs.roles = {
      {"WORKSPACE_OWNER", astro::FakeClient::kDefaultWorkspace, EntityType::Workspace}};
  s.sink = "/sinks/" + key + ".token";
  return s;
}

// Forwards to a FakeClient; raises `stop` as the first create is sent.
class StoppingClient final : public astro::Client {
 public:
  StoppingClient(astro::FakeClient& inner, std::atomic<bool>& stop) : inner_(inner), stop_(stop) {}
  bool armed = false;

  Result<astro::TokenListing> list_tokens() override { return inner_.list_tokens(); }
  Result<astro::ApiToken> get_token(const std::string& id) override { return inner_.get_token(id); }
  Result<astro::ApiToken> create_token(const astro::CreateTokenRequest& request) override {
    if (armed) stop_.store(true);
    return inner_.create_token(request);
  }
  Result<astro::ApiToken> update_token(const std::string& id,
                                       const astro::UpdateTokenRequest& request) override {
    return inner_.update_token(id, request);
  }
  Status update_token_roles(const std::string& id, const RoleSet& roles) override {
    return inner_.update_token_roles(id, roles);
  }
  Result<astro::ApiToken> rotate_token(const std::string& id) override {
    return inner_.rotate_token(id);
  }
  Status delete_token(const std::string& id) override { return inner_.delete_token(id); }
  Result<std::vector<std::string>> existing_workspaces(
      const std::vector<std::string>& ids) override {
    return inner_.existing_workspaces(ids);
  }
  Result<std::vector<std::string>> existing_deployments(
      const std::vector<std::string>& ids) override {
    return inner_.existing_deployments(ids);
  }

 private:
  astro::FakeClient& inner_;
  std::atomic<bool>& stop_;
};

struct CycleFixture {
  FixedClock clock{kNow};
  ManualMonotonicClock steady;
  astro::FakeClient fake{astro::FakeClient::kDefaultOrganization, &clock};
  std::atomic<bool> stop{false};
  StoppingClient client{fake, stop};
  std::unique_ptr<state::StateStore> store{std::move(state::StateStore::open(":memory:").value())};
  apply::MemorySink sink;
  daemon::MetricsRegistry metrics;
  daemon::TokenBackoff backoff{
      daemon::BackoffPolicy{std::chrono::seconds(10), std::chrono::minutes(10), 0.0}};
  spec::DesiredState desired;
  apply::FakeHookRunner hooks;
  daemon::CycleContext context{
      apply::Dependencies{client, *store, sink, clock, null_logger(), hooks},
      steady,
      metrics,
      backoff,
      [this] { return fake.total_calls(); },
      [] { return 0.5; },
      {},
      &stop};

  CycleFixture() {
    daemon::declare_daemon_metrics(metrics, "test");
    desired.config.organization_id = astro::FakeClient::kDefaultOrganization;
    desired.config.parallelism = 1;
  }

  void set_specs(const std::vector<std::string>& keys) {
    desired.tokens.clear();
    for (const std::string& key : keys) desired.tokens.push_back(workspace_spec(key));
  }

  CycleOutcome cycle() { return daemon::run_cycle(context, desired, "timer"); }

  std::vector<state::RunRecord> runs() {
    auto runs = store->runs(0);
    REQUIRE(runs.ok());
    return *runs;
  }
};

}  // namespace

TEST_CASE("a cycle applies the plan and records the run like apply does", "[daemon][cycle]") {
  CycleFixture f;
  f.set_specs({"a", "b"});
  CycleOutcome outcome = f.cycle();
  CHECK(outcome.result == CycleResult::Success);
  CHECK(outcome.applied.add == 2);
  CHECK(outcome.pending == 2);
  CHECK(f.fake.tokens().size() == 2);
  CHECK(f.metrics.value(daemon::metric::kManagedTokens) == 2);

  std::vector<state::RunRecord> runs = f.runs();
  REQUIRE(runs.size() == 1);
  CHECK(runs[0].command == "run");
  CHECK(runs[0].trigger == "timer");
  CHECK(runs[0].result == state::RunResult::Ok);
  CHECK(runs[0].to_add == 2);
  CHECK(runs[0].actions.size() == 2);
  // The listing and the workspace lookup are part of the run, as for apply.
  CHECK(runs[0].api_calls == f.fake.total_calls());
  CHECK(outcome.run_id == runs[0].id);

  SECTION("the next cycle finds nothing to do and says so in history") {
    CycleOutcome again = f.cycle();
    CHECK(again.result == CycleResult::Success);
    CHECK(again.pending == 0);
    runs = f.runs();
    REQUIRE(runs.size() == 2);
    CHECK(runs[0].result == state::RunResult::NoOp);
    CHECK(runs[0].api_calls == 1);  // one listing page
  }
}

TEST_CASE("a token whose change failed is held back until its backoff expires, the others go on",
          "[daemon][cycle]") {
  CycleFixture f;
  f.set_specs({"a"});
  f.fake.script_failure(Operation::CreateApiToken, {ErrorKind::Invalid, 1, false, "refused", 400});
  CycleOutcome first = f.cycle();
  CHECK(first.result == CycleResult::Failure);
  CHECK(first.failed == 1);
  CHECK(f.backoff.holds("a", f.steady.now()));
  CHECK(f.runs()[0].result == state::RunResult::Failed);

  f.set_specs({"a", "b"});
  const int creates_before = f.fake.calls(Operation::CreateApiToken);
  CycleOutcome second = f.cycle();
  CHECK(second.result == CycleResult::Success);
  CHECK(second.backing_off == 1);
  CHECK(second.applied.add == 1);  // b went ahead
  CHECK(f.fake.calls(Operation::CreateApiToken) == creates_before + 1);
  CHECK(f.fake.tokens().size() == 1);

  f.steady.advance(std::chrono::seconds(11));
  CycleOutcome third = f.cycle();
  CHECK(third.backing_off == 0);
  CHECK(third.applied.add == 1);
  CHECK(f.fake.tokens().size() == 2);
  CHECK_FALSE(f.backoff.holds("a", f.steady.now()));
}

TEST_CASE("in plan mode a cycle reports the changes and applies none", "[daemon][cycle]") {
  CycleFixture f;
  f.desired.config.mode = spec::ReconcileMode::Plan;
  f.set_specs({"a", "b", "c"});
  CycleOutcome outcome = f.cycle();
  CHECK(outcome.result == CycleResult::Success);
  CHECK(outcome.plan_mode);
  CHECK(outcome.pending == 3);
  CHECK(outcome.applied.add == 0);
  CHECK(f.fake.calls(Operation::CreateApiToken) == 0);
  CHECK(f.fake.tokens().empty());
  CHECK(f.metrics.value(daemon::metric::kDriftedTokens) == 3);
  std::vector<state::RunRecord> runs = f.runs();
  REQUIRE(runs.size() == 1);
  CHECK(runs[0].result == state::RunResult::Planned);
  CHECK(runs[0].to_add == 3);
  CHECK(runs[0].actions.empty());
}

TEST_CASE("a cycle that would destroy every managed token is refused and changes nothing",
          "[daemon][cycle]") {
  CycleFixture f;
  f.set_specs({"a", "b", "c", "d", "e", "f"});
  REQUIRE(f.cycle().result == CycleResult::Success);
  REQUIRE(f.fake.tokens().size() == 6);
  const int64_t serial = f.store->serial();

  f.set_specs({});
  CycleOutcome outcome = f.cycle();
  CHECK(outcome.result == CycleResult::Refused);
  CHECK_THAT(outcome.error, Catch::Contains("--allow-mass-delete"));
  CHECK(f.fake.calls(Operation::DeleteApiToken) == 0);
  CHECK(f.fake.tokens().size() == 6);
  CHECK(f.store->serial() == serial);
  std::vector<state::RunRecord> runs = f.runs();
  CHECK(runs[0].result == state::RunResult::Refused);
  CHECK(runs[0].to_destroy == 6);
}

TEST_CASE("a cycle whose listing fails backs off the whole cycle and records the failure",
          "[daemon][cycle]") {
  CycleFixture f;
  f.set_specs({"a"});
  f.fake.script_failure(Operation::ListApiTokens,
                        {ErrorKind::Unavailable, 1, false, "ListApiTokens: HTTP 503", 503});
  CycleOutcome outcome = f.cycle();
  CHECK(outcome.result == CycleResult::Failure);
  CHECK(outcome.unreachable);
  CHECK_THAT(outcome.error, Catch::Contains("ListApiTokens"));
  CHECK(f.fake.calls(Operation::CreateApiToken) == 0);
  CHECK(f.metrics.value(daemon::metric::kErrors, {{"kind", "Unavailable"}}) == 1);
  std::vector<state::RunRecord> runs = f.runs();
  REQUIRE(runs.size() == 1);
  CHECK(runs[0].result == state::RunResult::Failed);
  CHECK_THAT(runs[0].message, Catch::StartsWith("planning failed: ListApiTokens"));
  CHECK(runs[0].api_calls == 1);
}

TEST_CASE("a stop request during a cycle lets the change in flight finish and starts no other",
          "[daemon][cycle]") {
  CycleFixture f;
  f.set_specs({"a", "b", "c"});
  f.client.armed = true;
  CycleOutcome outcome = f.cycle();
  CHECK(outcome.stopped);
  CHECK(outcome.applied.add == 1);
  CHECK(f.fake.tokens().size() == 1);
  // What completed is committed.
  auto rows = f.store->resources();
  REQUIRE(rows.ok());
  CHECK(rows->size() == 1);
  std::vector<state::RunRecord> runs = f.runs();
  CHECK(runs[0].result == state::RunResult::Failed);
  CHECK_THAT(runs[0].message, Catch::Contains("stopped by a signal"));

  SECTION("a cycle started after the stop applies nothing") {
    CycleOutcome next = f.cycle();
    CHECK(next.stopped);
    CHECK(f.fake.tokens().size() == 1);
  }
}

TEST_CASE("a cycle rotates at most max_rotations_per_run tokens whose sink is missing",
          "[daemon][cycle]") {
  CycleFixture f;
  f.desired.config.max_rotations_per_run = 2;
  f.set_specs({"a", "b", "c", "d", "e"});
  REQUIRE(f.cycle().applied.add == 5);
  // A new leader on a host that does not see the sinks.
  for (const char* key : {"a", "b", "c", "d", "e"})
    REQUIRE(f.sink.remove("/sinks/" + std::string(key) + ".token").ok());

  CycleOutcome first = f.cycle();
  CHECK(first.result == CycleResult::Success);
  CHECK(first.applied.rotate == 2);
  CHECK(first.rotations_capped == 3);
  CHECK_THAT(first.summary, Catch::Contains("3 rotations held back (max_rotations_per_run)"));
  CHECK(f.runs().front().message ==
        "3 rotations of missing or changed sinks held back by max_rotations_per_run = 2");

  CycleOutcome second = f.cycle();
  CHECK(second.applied.rotate == 2);
  CHECK(second.rotations_capped == 1);
  CycleOutcome third = f.cycle();
  CHECK(third.applied.rotate == 1);
  CHECK(third.rotations_capped == 0);
  CHECK(f.cycle().pending == 0);
}

TEST_CASE("a cycle sets the per-token gauges for exactly the tokens in state", "[daemon][cycle]") {
  CycleFixture f;
  f.set_specs({"a", "b"});
  f.desired.tokens[0].attrs.expiry_period_in_days = 30;
  f.desired.tokens[0].rotate_before_expiry_days = 7;
  CycleOutcome outcome = f.cycle();
  REQUIRE(outcome.result == CycleResult::Success);
  const double now = static_cast<double>(kNow.time_since_epoch().count());
  const daemon::MetricLabels a = {{"address", "astro_api_token.a"}};
  const daemon::MetricLabels b = {{"address", "astro_api_token.b"}};
  CHECK(f.metrics.value(daemon::metric::kTokenExpiry, a) == now + 30 * 86400);
  CHECK(f.metrics.value(daemon::metric::kTokenRotationDue, a) == now + 23 * 86400);
  CHECK(f.metrics.value(daemon::metric::kTokenLastRotation, a) == now);
  CHECK(std::isnan(f.metrics.value(daemon::metric::kTokenExpiry, b)));  // never expires
  CHECK(std::isnan(f.metrics.value(daemon::metric::kTokenRotationDue, b)));
  CHECK(f.metrics.value(daemon::metric::kTokenLastRotation, b) == now);
  CHECK(f.metrics.value(daemon::metric::kDeliveryHookFailures, a) == 0);

  // The status page's view of the same tokens.
  REQUIRE(outcome.planned);
  CHECK(outcome.plan_counts.add == 2);
  REQUIRE(outcome.plan_changes.size() == 2);
  CHECK(outcome.plan_changes[0].address == "astro_api_token.a");
  CHECK(outcome.plan_changes[0].action == "create");
  REQUIRE(outcome.tokens.size() == 2);
  const daemon::TokenStatus& token = outcome.tokens[0];
  CHECK(token.address == "astro_api_token.a");
  CHECK(token.name == "token a");
  CHECK(token.expires_at == kNow + std::chrono::hours(24 * 30));
  CHECK(token.next_rotation == kNow + std::chrono::hours(24 * 23));
  CHECK(token.pending.empty());  // created
  CHECK(token.failure.empty());

  // A token no longer in state leaves the per-token families.
  f.set_specs({"a"});
  f.desired.tokens[0].attrs.expiry_period_in_days = 30;
  f.desired.tokens[0].rotate_before_expiry_days = 7;
  REQUIRE(f.cycle().applied.destroy == 1);
  CHECK(std::isnan(f.metrics.value(daemon::metric::kTokenLastRotation, b)));
  CHECK(f.metrics.value(daemon::metric::kTokenLastRotation, a) == now);
}

TEST_CASE("a cycle logs which attributes drifted and shows drift and failures per token",
          "[daemon][cycle]") {
  CycleFixture f;
  f.set_specs({"a"});
  REQUIRE(f.cycle().result == CycleResult::Success);
  astro::ApiToken changed = f.fake.tokens().at(0);
  changed.name = "renamed outside";
  changed.description = "edited by hand";
  f.fake.put_token(changed);
  f.fake.script_failure(Operation::UpdateApiToken, {ErrorKind::Invalid, 1, false, "no", 400});

  std::ostringstream log;
  Logger logger(log, LogLevel::Info, LogFormat::Text);
  daemon::CycleContext context{
      apply::Dependencies{f.client, *f.store, f.sink, f.clock, logger, f.hooks},
      f.steady,
      f.metrics,
      f.backoff,
      [&f] { return f.fake.total_calls(); },
      [] { return 0.5; },
      {},
      &f.stop};
  CycleOutcome outcome = daemon::run_cycle(context, f.desired, "timer");
  INFO(log.str());
  CHECK(log.str().find("msg=\"changed outside astro-tokend\" address=astro_api_token.a "
                       "drift=changed attributes=name,description\n") != std::string::npos);
  CHECK(log.str().find("msg=\"change started\" address=astro_api_token.a action=update "
                       "rotate=false") != std::string::npos);
  CHECK(outcome.result == CycleResult::Failure);
  REQUIRE(outcome.tokens.size() == 1);
  const daemon::TokenStatus& token = outcome.tokens[0];
  CHECK(token.drifted == std::vector<std::string>{"name", "description"});
  CHECK(token.pending == "update");
  CHECK(token.failure.find("no") != std::string::npos);
  REQUIRE(token.retry_at.has_value());
  CHECK(*token.retry_at == kNow + std::chrono::seconds(10));
}

TEST_CASE(
    "a failed delivery hook fails the cycle - is counted per token - and runs again next "
    "cycle",
    "[daemon][cycle][delivery]") {
  CycleFixture f;
  f.set_specs({"a"});
  f.desired.tokens[0].on_delivery = {"/usr/local/bin/reload"};
  f.desired.config.hook_timeout = std::chrono::seconds(3);
  f.hooks.respond([](const apply::HookCommand&, const std::string&) { return apply::exited(2); });
  CycleOutcome first = f.cycle();
  CHECK(first.result == CycleResult::Failure);
  CHECK(first.applied.add == 1);
  CHECK(first.failed == 0);
  CHECK(first.hooks_failed == 1);
  CHECK(first.error == "1 delivery hook failed");
  CHECK(first.summary.find(", 1 delivery hook failed") != std::string::npos);
  CHECK(f.metrics.value(daemon::metric::kDeliveryHookFailures,
                        {{"address", "astro_api_token.a"}}) == 1);
  REQUIRE(f.hooks.calls().size() == 1);
  CHECK(f.hooks.calls()[0].command.timeout == std::chrono::seconds(3));
  std::vector<state::RunRecord> runs = f.runs();
  REQUIRE(runs.size() == 1);
  CHECK(runs[0].result == state::RunResult::Failed);
  REQUIRE(runs[0].actions.size() == 2);
  CHECK(runs[0].actions[1].action == "deliver");
  CHECK_FALSE(runs[0].actions[1].ok);
  CHECK(runs[0].actions[1].message ==
        "delivery hook /usr/local/bin/reload (after create) exited with status 2");
  // A failed hook does not back its token off: the next cycle tries again.
  CHECK_FALSE(f.backoff.holds("a", f.steady.now()));

  f.hooks.respond({});
  f.fake.reset_calls();
  CycleOutcome second = f.cycle();
  CHECK(second.result == CycleResult::Success);
  CHECK(f.fake.calls(Operation::CreateApiToken) == 0);
  CHECK(f.fake.calls(Operation::RotateApiToken) == 0);
  REQUIRE(f.hooks.calls().size() == 2);
  CHECK(f.metrics.value(daemon::metric::kDeliveryHookFailures,
                        {{"address", "astro_api_token.a"}}) == 1);
  runs = f.runs();
  CHECK(runs[0].result == state::RunResult::Ok);
  REQUIRE(runs[0].actions.size() == 1);
  CHECK(runs[0].actions[0].action == "deliver");
  CHECK(runs[0].actions[0].ok);

  CycleOutcome third = f.cycle();
  CHECK(third.result == CycleResult::Success);
  CHECK(f.runs()[0].result == state::RunResult::NoOp);
  CHECK(f.hooks.calls().size() == 2);
}

TEST_CASE("a token whose sink cannot be read fails the cycle as an error - and is not rotated",
          "[daemon][cycle][delivery]") {
  CycleFixture f;
  f.set_specs({"a", "b"});
  REQUIRE(f.cycle().result == CycleResult::Success);
  f.sink.fail_reads("/sinks/a.token", true);
  f.sink.set_content("/sinks/b.token", "lost");  // b rotates as usual
  f.fake.reset_calls();
  const double io_errors = f.metrics.value(daemon::metric::kErrors, {{"kind", "Io"}});
  CycleOutcome outcome = f.cycle();
  CHECK(outcome.result == CycleResult::Failure);
  CHECK(outcome.held_back == 1);
  CHECK(outcome.applied.rotate == 1);
  CHECK(outcome.error == "1 token held back (sink unreadable)");
  CHECK(f.fake.calls(Operation::RotateApiToken) == 1);
  CHECK(f.metrics.value(daemon::metric::kErrors, {{"kind", "Io"}}) == io_errors + 1);
  std::vector<state::RunRecord> runs = f.runs();
  CHECK(runs[0].result == state::RunResult::Failed);
  bool held = false;
  for (const state::ActionRecord& action : runs[0].actions) {
    if (action.action != "hold") continue;
    held = true;
    CHECK(action.address == "astro_api_token.a");
    CHECK_FALSE(action.ok);
    CHECK(action.message ==
          "cannot read sink /sinks/a.token: Permission denied; the token was held back, not "
          "rotated");
  }
  CHECK(held);
}

TEST_CASE("a cycle that changed no state leaves its rows to the next - a moved serial reads again",
          "[daemon][cycle]") {
  CycleFixture f;
  std::optional<state::StateSnapshot> known;
  f.context.known_state = &known;
  f.set_specs({"a", "b"});
  REQUIRE(f.cycle().applied.add == 2);
  CHECK_FALSE(known.has_value());  // that cycle wrote state: nothing kept

  REQUIRE(f.cycle().pending == 0);
  REQUIRE(known.has_value());
  auto rows = f.store->resources();
  REQUIRE(rows.ok());
  CHECK(known->lineage == f.store->lineage());
  CHECK(known->serial == f.store->serial());
  CHECK(known->resources == *rows);

  // While the serial is theirs, the kept rows are what the cycle plans from:
  // a row altered in them alone shows as drift, and they are kept again.
  known->resources[0].attrs.name = "renamed in memory only";
  CHECK(f.cycle().drift == 1);
  CHECK(known->serial == f.store->serial());
  CHECK(known->resources[0].attrs.name == "renamed in memory only");

  SECTION("a write to state moves the serial: the next cycle reads the rows again") {
    REQUIRE(f.store->record_outcome(state::Outcome{(*rows)[1].key, (*rows)[1], std::nullopt}).ok());
    CHECK(f.cycle().drift == 0);
    CHECK(known->resources == *rows);
  }
  SECTION("rows of another state are never used") {
    known->lineage = "another lineage";
    CHECK(f.cycle().drift == 0);
  }
}
