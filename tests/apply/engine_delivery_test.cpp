// The engine's deliveries in-process (FakeClient, ":memory:" store,
// MemorySink, FakeHookRunner): sink mode and group, delivery hooks after
// create and rotate, failed hooks handed over again without a new create or
// rotate, and sinks that cannot be read holding their token back.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <map>

#include "apply/engine.h"
#include "astro/fake_client.h"
#include "util/hash.h"

using namespace tokend;
using astro::Operation;
using std::chrono::days;

namespace {

const Timestamp kNow = *parse_rfc3339("2026-11-28T12:00:00Z");

spec::TokenSpec hooked_spec(const std::string& key) {
  spec::TokenSpec s;
  s.key = key;
  s.attrs.name = "token " + key;
  s.attrs.type = EntityType::Workspace;
  s.attrs.role = "WORKSPACE_OWNER";
  s.attrs.roles = {
      {"WORKSPACE_OWNER", astro::FakeClient::kDefaultWorkspace, EntityType::Workspace}};
  s.sink = "/sinks/" + key + ".token";
  s.sink_mode = 0640;
  s.sink_group = "daemon";
  s.on_delivery = {"/usr/local/bin/reload", "--for", key};
  return s;
}

std::map<std::string, std::string> env_of(const apply::FakeHookRunner::Call& call) {
  return {call.command.environment.begin(), call.command.environment.end()};
}

struct Fixture {
  FixedClock clock{kNow};
  astro::FakeClient client{astro::FakeClient::kDefaultOrganization, &clock};
  std::unique_ptr<state::StateStore> store = std::move(state::StateStore::open(":memory:").value());
  apply::MemorySink sink;
  apply::FakeHookRunner hooks;
  apply::Dependencies deps{client, *store, sink, clock, null_logger(), hooks};
  spec::DesiredState desired;
  apply::ApplyOptions options;

  Fixture() {
    desired.config.organization_id = astro::FakeClient::kDefaultOrganization;
    desired.tokens = {hooked_spec("ci")};
    options.hook_timeout = std::chrono::seconds(7);
  }

  apply::PreparedPlan prepare() {
    auto prepared = apply::prepare_plan(deps, desired, {});
    REQUIRE(prepared.ok());
    return std::move(prepared).value();
  }
  apply::ApplyReport apply() {
    apply::PreparedPlan prepared = prepare();
    client.reset_calls();
    return apply::apply_plan(deps, prepared, options);
  }
  state::ResourceRecord row(const std::string& key) {
    auto r = store->resource(key);
    REQUIRE(r.ok());
    REQUIRE(r->has_value());
    return **r;
  }
  int writes() const {
    return client.calls(Operation::CreateApiToken) + client.calls(Operation::RotateApiToken) +
           client.calls(Operation::UpdateApiToken) + client.calls(Operation::UpdateApiTokenRoles) +
           client.calls(Operation::DeleteApiToken);
  }
};

}  // namespace

TEST_CASE(
    "a created value goes to its sink with its mode and group - then the hook gets it on "
    "stdin",
    "[apply][delivery]") {
  Fixture f;
  apply::ApplyReport report = f.apply();
  REQUIRE(report.ok());
  const state::ResourceRecord row = f.row("ci");
  const std::string value = f.client.current_value(row.id).reveal();
  CHECK(f.sink.content("/sinks/ci.token") == value);
  CHECK(f.sink.target("/sinks/ci.token") == apply::SinkTarget{"/sinks/ci.token", 0640, "daemon"});

  auto calls = f.hooks.calls();
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].input == value);
  CHECK(calls[0].command.argv == std::vector<std::string>{"/usr/local/bin/reload", "--for", "ci"});
  CHECK(calls[0].command.timeout == std::chrono::seconds(7));
  auto env = env_of(calls[0]);
  CHECK(env["ASTRO_TOKEND_ADDRESS"] == "astro_api_token.ci");
  CHECK(env["ASTRO_TOKEND_TOKEN_ID"] == row.id);
  CHECK(env["ASTRO_TOKEND_SINK"] == "/sinks/ci.token");
  CHECK(env["ASTRO_TOKEND_ACTION"] == "create");
  for (const auto& [name, text] : env) CHECK(text.find(value) == std::string::npos);

  CHECK_FALSE(row.delivery_pending);
  REQUIRE(report.hooks.size() == 1);
  CHECK(report.hooks[0].ok);
  CHECK(report.hooks[0].action == apply::DeliveryAction::Create);
  REQUIRE(report.results.size() == 1);
  REQUIRE(report.results[0].hook);
  CHECK(report.results[0].hook->ok);
}

TEST_CASE("after a rotation the hook gets the new value", "[apply][delivery]") {
  Fixture f;
  REQUIRE(f.apply().ok());
  const std::string first = f.client.current_value(f.row("ci").id).reveal();
  f.desired.tokens[0].rotate_every_days = 7;
  f.clock.advance(days(8));
  apply::ApplyReport report = f.apply();
  REQUIRE(report.ok());
  CHECK(report.applied.rotate == 1);
  const std::string second = f.client.current_value(f.row("ci").id).reveal();
  CHECK(second != first);
  auto calls = f.hooks.calls();
  REQUIRE(calls.size() == 2);
  CHECK(calls[1].input == second);
  CHECK(env_of(calls[1])["ASTRO_TOKEND_ACTION"] == "rotate");
  CHECK_FALSE(f.row("ci").delivery_pending);
}

TEST_CASE(
    "a failed hook stays pending and the next run hands the value over again - no second "
    "create or rotate",
    "[apply][delivery]") {
  Fixture f;
  f.hooks.respond([](const apply::HookCommand&, const std::string& input) {
    return apply::exited(3, "consumer refused " + input + "\n");
  });
  apply::ApplyReport first = f.apply();
  CHECK_FALSE(first.ok());
  CHECK(first.failed == 0);  // the create itself is done
  CHECK(first.applied.add == 1);
  CHECK(first.hooks_failed == 1);
  REQUIRE(first.hooks.size() == 1);
  const std::string value = f.client.current_value(f.row("ci").id).reveal();
  CHECK(first.hooks[0].status == "exited with status 3");
  CHECK(first.hooks[0].output == "consumer refused (sensitive value)\n");
  CHECK(first.hooks[0].describe("/usr/local/bin/reload") ==
        "delivery hook /usr/local/bin/reload (after create) exited with status 3");
  CHECK(f.row("ci").delivery_pending);

  // The next plan has nothing to change but owes the hook its value.
  apply::PreparedPlan prepared = f.prepare();
  CHECK(prepared.plan.empty());
  REQUIRE(prepared.deliveries.size() == 1);
  CHECK(prepared.deliveries[0].key == "ci");

  f.hooks.respond({});
  f.client.reset_calls();
  apply::ApplyReport second = apply::apply_plan(f.deps, prepared, f.options);
  CHECK(second.ok());
  CHECK(f.writes() == 0);
  auto calls = f.hooks.calls();
  REQUIRE(calls.size() == 2);
  CHECK(calls[1].input == value);
  CHECK(env_of(calls[1])["ASTRO_TOKEND_ACTION"] == "deliver");
  CHECK(env_of(calls[1])["ASTRO_TOKEND_TOKEN_ID"] == f.row("ci").id);
  REQUIRE(second.hooks.size() == 1);
  CHECK(second.hooks[0].action == apply::DeliveryAction::Deliver);
  CHECK_FALSE(f.row("ci").delivery_pending);

  // Settled: nothing is owed any more.
  CHECK(f.prepare().deliveries.empty());
}

TEST_CASE("a pending hook whose token rotates is superseded by the rotation's own hook",
          "[apply][delivery]") {
  Fixture f;
  f.hooks.respond([](const apply::HookCommand&, const std::string&) { return apply::exited(1); });
  REQUIRE_FALSE(f.apply().ok());
  REQUIRE(f.row("ci").delivery_pending);
  f.hooks.respond({});
  f.sink.set_content("/sinks/ci.token", "changed by someone");  // the plan rotates
  apply::PreparedPlan prepared = f.prepare();
  REQUIRE(prepared.plan.changes.size() == 1);
  CHECK(prepared.plan.changes[0].rotate_reason == plan::RotateReason::SinkMismatch);
  CHECK(prepared.deliveries.empty());
  apply::ApplyReport report = apply::apply_plan(f.deps, prepared, f.options);
  CHECK(report.ok());
  auto calls = f.hooks.calls();
  REQUIRE(calls.size() == 2);
  CHECK(env_of(calls[1])["ASTRO_TOKEND_ACTION"] == "rotate");
  CHECK(calls[1].input == f.client.current_value(f.row("ci").id).reveal());
  CHECK_FALSE(f.row("ci").delivery_pending);
}

TEST_CASE("a pending hook the spec no longer has is dropped without running", "[apply][delivery]") {
  Fixture f;
  f.hooks.respond([](const apply::HookCommand&, const std::string&) { return apply::exited(1); });
  REQUIRE_FALSE(f.apply().ok());
  f.desired.tokens[0].on_delivery.clear();
  apply::ApplyReport report = f.apply();
  CHECK(report.ok());
  CHECK(report.hooks.empty());
  CHECK(f.hooks.calls().size() == 1);
  CHECK_FALSE(f.row("ci").delivery_pending);
}

TEST_CASE("no hook starts once stop is raised - it stays pending", "[apply][delivery]") {
  Fixture f;
  std::atomic<bool> stop{false};
  f.options.stop = &stop;
  f.hooks.respond([](const apply::HookCommand&, const std::string&) { return apply::exited(1); });
  REQUIRE_FALSE(f.apply().ok());
  apply::PreparedPlan prepared = f.prepare();
  REQUIRE(prepared.deliveries.size() == 1);
  stop.store(true);
  apply::ApplyReport report = apply::apply_plan(f.deps, prepared, f.options);
  CHECK(report.hooks.empty());
  CHECK(f.hooks.calls().size() == 1);
  CHECK(f.row("ci").delivery_pending);
}

TEST_CASE("a sink that cannot be read holds its token back - never a reason to rotate",
          "[apply][delivery]") {
  Fixture f;
  f.desired.tokens.push_back(hooked_spec("other"));
  REQUIRE(f.apply().ok());
  f.desired.tokens[0].attrs.description = "changed";  // would be an update
  f.sink.fail_reads("/sinks/ci.token", true);
  f.sink.set_content("/sinks/other.token", "mismatch");  // rotates as usual

  apply::PreparedPlan prepared = f.prepare();
  REQUIRE(prepared.held_back.size() == 1);
  CHECK(prepared.held_back[0].key == "ci");
  CHECK(prepared.held_back[0].error.kind == ErrorKind::Io);
  CHECK(prepared.held_back[0].error.message ==
        "cannot read sink /sinks/ci.token: Permission denied");
  REQUIRE(prepared.plan.changes.size() == 1);
  CHECK(prepared.plan.changes[0].key == "other");

  const std::string before = f.row("ci").sink_sha256;
  f.client.reset_calls();
  apply::ApplyReport report = apply::apply_plan(f.deps, prepared, f.options);
  CHECK(report.ok());
  CHECK(f.client.calls(Operation::RotateApiToken) == 1);  // "other" only
  CHECK(f.row("ci").sink_sha256 == before);

  // Readable again: the token is planned as usual (its update).
  f.sink.fail_reads("/sinks/ci.token", false);
  apply::PreparedPlan again = f.prepare();
  CHECK(again.held_back.empty());
  REQUIRE(again.plan.changes.size() == 1);
  CHECK(again.plan.changes[0].key == "ci");
  CHECK(again.plan.changes[0].action == plan::Action::Update);
  CHECK_FALSE(again.plan.changes[0].rotate);
}

TEST_CASE(
    "a hook runs again on the next run even when its sink was read back from a file that "
    "changed",
    "[apply][delivery]") {
  Fixture f;
  f.hooks.respond([](const apply::HookCommand&, const std::string&) { return apply::exited(1); });
  REQUIRE_FALSE(f.apply().ok());
  apply::PreparedPlan prepared = f.prepare();
  REQUIRE(prepared.deliveries.size() == 1);
  // Between plan and apply the file changes: the hook is not given it.
  f.sink.set_content("/sinks/ci.token", "not the value");
  f.hooks.respond({});
  apply::ApplyReport report = apply::apply_plan(f.deps, prepared, f.options);
  CHECK(report.hooks_failed == 1);
  REQUIRE(report.hooks.size() == 1);
  CHECK(report.hooks[0].status ==
        "was not run: its sink /sinks/ci.token no longer holds the delivered value");
  CHECK(f.hooks.calls().size() == 1);
  CHECK(f.row("ci").delivery_pending);
}
