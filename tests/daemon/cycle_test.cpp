// One reconcile cycle in-process: FakeClient, a ":memory:" store, a
// MemorySink, a fixed wall clock and a manual monotonic clock.
#include "daemon/cycle.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <memory>
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

  Result<std::vector<astro::ApiToken>> list_tokens() override { return inner_.list_tokens(); }
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
  daemon::CycleContext context{apply::Dependencies{client, *store, sink, clock, null_logger()},
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
