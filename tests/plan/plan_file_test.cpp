#include <catch2/catch.hpp>

#include "plan/fixtures.h"
#include "plan/golden.h"
#include "plan/plan.h"
#include "plan/plan_file.h"
#include "version.h"

using namespace tokend;
using namespace tokend::plan;
using namespace tokend::plan::testing;

namespace {

void check_same_token(const astro::ApiToken& a, const astro::ApiToken& b) {
  CHECK(a.id == b.id);
  CHECK(a.name == b.name);
  CHECK(a.description == b.description);
  CHECK(a.type == b.type);
  CHECK(a.roles == b.roles);
  CHECK(a.expiry_period_in_days == b.expiry_period_in_days);
  CHECK(a.short_token == b.short_token);
  CHECK(a.created_at == b.created_at);
  CHECK(a.updated_at == b.updated_at);
  CHECK(a.start_at == b.start_at);
  CHECK(a.end_at == b.end_at);
  CHECK(a.last_used_at == b.last_used_at);
  CHECK(a.kind == b.kind);
  CHECK(a.last_rotated_at == b.last_rotated_at);
}

void check_same_plan(const Plan& a, const Plan& b) {
  CHECK(a.lineage == b.lineage);
  CHECK(a.serial == b.serial);
  CHECK(a.spec_hash == b.spec_hash);
  CHECK(a.refreshed == b.refreshed);
  CHECK(a.created_at == b.created_at);
  CHECK(a.targets == b.targets);
  CHECK(a.errors == b.errors);
  REQUIRE(a.changes.size() == b.changes.size());
  for (size_t i = 0; i < a.changes.size(); ++i) {
    const Change& x = a.changes[i];
    const Change& y = b.changes[i];
    INFO("change " << x.key);
    CHECK(x.key == y.key);
    CHECK(x.action == y.action);
    CHECK(x.before == y.before);
    REQUIRE(x.after.has_value() == y.after.has_value());
    if (x.after) CHECK(same_spec(*x.after, *y.after));
    CHECK(x.update_name_description == y.update_name_description);
    CHECK(x.update_roles == y.update_roles);
    CHECK(x.rotate == y.rotate);
    CHECK(x.rotate_reason == y.rotate_reason);
    CHECK(x.replace_paths == y.replace_paths);
    CHECK(x.create_before_destroy == y.create_before_destroy);
    CHECK(x.action_reason == y.action_reason);
    CHECK(x.recreate_after_remote_delete == y.recreate_after_remote_delete);
  }
  REQUIRE(a.drift.size() == b.drift.size());
  for (size_t i = 0; i < a.drift.size(); ++i) {
    INFO("drift " << a.drift[i].key);
    CHECK(a.drift[i].key == b.drift[i].key);
    CHECK(a.drift[i].kind == b.drift[i].kind);
    CHECK(a.drift[i].recorded == b.drift[i].recorded);
    REQUIRE(a.drift[i].observed.has_value() == b.drift[i].observed.has_value());
    if (a.drift[i].observed) check_same_token(*a.drift[i].observed, *b.drift[i].observed);
  }
  CHECK(a.unchanged == b.unchanged);
}

// A plan that uses every field: every action, drift, errors, targets, a
// token that never expires, lifecycle settings, odd characters.
Plan rich_plan() {
  Input input = all_actions_input();
  input.observed.tokens[id_for("k_drift")].last_used_at = days_from_now(-1);
  input.observed.tokens[id_for("k_drift")].token = SecretValue("never-saved");
  for (spec::TokenSpec& spec : input.desired) {
    if (spec.key == "a_create") {
      spec.attrs.expiry_period_in_days.reset();
      spec.attrs.description = "quote \" backslash \\ newline \n tab \t é";
      spec.lifecycle.ignore_changes = {"description", "roles"};
      spec.lifecycle.prevent_destroy = true;
      spec.rotate_before_expiry_days = 7;
      spec.rotate_every_days = 30;
      spec.pos = {"/etc/astro-tokend/tokens.d/a.toml", 12, 3};
    }
  }
  for (state::ResourceRecord& row : input.prior)
    if (row.key == "g_rotate") row.rotate_pending = true;
  Plan plan = compute(input);
  plan.errors = {"first problem", "second \"problem\""};
  plan.targets = {"astro_api_token.a_create", "astro_api_token.b_import"};
  plan.refreshed = false;
  return plan;
}

std::string error_of(const std::string& text) {
  Result<Plan> loaded = load_plan(text);
  REQUIRE_FALSE(loaded.ok());
  CHECK(loaded.error().kind == ErrorKind::Invalid);
  return loaded.error().message;
}

// The saved form of rich_plan() with `from` replaced by `to` (must occur).
std::string tampered(const std::string& from, const std::string& to) {
  std::string text = save_plan(rich_plan());
  size_t at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

}  // namespace

TEST_CASE("plan files round-trip: save - load - save again", "[plan]") {
  for (const Plan& plan : {rich_plan(), compute(all_actions_input()), compute(make_input())}) {
    std::string saved = save_plan(plan);
    Result<Plan> loaded = load_plan(saved);
    REQUIRE(loaded.ok());
    check_same_plan(plan, *loaded);
    CHECK(save_plan(*loaded) == saved);
  }
}

TEST_CASE("plan files keep the unchanged tokens, and older files without them load", "[plan]") {
  Plan plan = compute(all_actions_input());
  REQUIRE(plan.unchanged.size() == 1);
  CHECK(plan.unchanged[0].key == "l_noop");
  std::string saved = save_plan(plan);
  const std::string field = "\"unchanged\": [";
  const size_t start = saved.find(field);
  REQUIRE(start != std::string::npos);
  const size_t end = saved.find("\n  ],\n", start);
  REQUIRE(end != std::string::npos);
  std::string older = saved.substr(0, start) + saved.substr(end + 6);
  Result<Plan> loaded = load_plan(older);
  REQUIRE(loaded.ok());
  CHECK(loaded->unchanged.empty());
  CHECK(loaded->changes.size() == plan.changes.size());
}

TEST_CASE("plan file format matches the golden file", "[plan]") {
  std::string saved = save_plan(compute(all_actions_input()));
  CHECK(saved.find("\"astro_tokend_plan\": 1,") != std::string::npos);
  check_golden("all_actions.plan.json",
               replace_all(saved, "\"astro_tokend_version\": \"" + std::string(kVersion) + "\"",
                           "\"astro_tokend_version\": \"VERSION\""));
}

TEST_CASE("plan files never hold a secret value", "[plan]") {
  std::string saved = save_plan(rich_plan());
  CHECK(saved.find("never-saved") == std::string::npos);
  CHECK(saved.find("\"token\"") == std::string::npos);
}

TEST_CASE("malformed plan files are refused with a clear message", "[plan]") {
  CHECK(error_of("").rfind("not an astro-tokend plan file: invalid JSON: ", 0) == 0);
  CHECK(error_of("{\"astro_tokend_plan\": 1,")
            .rfind("not an astro-tokend plan file: invalid JSON: ", 0) == 0);
  CHECK(error_of("[1, 2]") == "not an astro-tokend plan file: expected a JSON object");
  CHECK(error_of("{\"format_version\": \"1.2\"}") ==
        "not an astro-tokend plan file: no \"astro_tokend_plan\" version field");
  CHECK(error_of(tampered("\"astro_tokend_plan\": 1", "\"astro_tokend_plan\": 2")) ==
        "unsupported plan file version 2 (this astro-tokend reads version 1); create the plan "
        "again with this version");
  CHECK(error_of(tampered("\"astro_tokend_plan\": 1", "\"astro_tokend_plan\": \"1\"")) ==
        "plan file: astro_tokend_plan: expected an integer");
  CHECK(error_of(tampered("\"lineage\": ", "\"lineage_\": ")) == "plan file: lineage: missing");
  CHECK(error_of(tampered("\"serial\": 7", "\"serial\": \"7\"")) ==
        "plan file: serial: expected an integer");
  CHECK(error_of(tampered("\"created_at\": \"2026-03-01T12:00:00Z\"",
                          "\"created_at\": \"yesterday\"")) ==
        "plan file: created_at: expected an RFC 3339 time, got \"yesterday\"");
  CHECK(error_of(tampered("\"action\": \"create\"", "\"action\": \"explode\"")) ==
        "plan file: changes[0].action: unknown action \"explode\"");
  CHECK(error_of(tampered("\"action\": \"create\"", "\"action\": \"delete\"")) ==
        "plan file: changes[0].before: required for delete");
  CHECK(error_of(tampered("\"rotate_reason\": \"none\"", "\"rotate_reason\": \"boredom\"")) ==
        "plan file: changes[0].rotate_reason: unknown rotate reason \"boredom\"");
  CHECK(error_of(tampered("\"entity_type\": \"DEPLOYMENT\"", "\"entity_type\": \"TAG\"")) ==
        "plan file: changes[0].after.attrs.roles[0].entity_type: unknown entity type \"TAG\"");
  CHECK(error_of(tampered("\"entity_type\": \"DEPLOYMENT\"", "\"entity_type\": \"DAG\"")) ==
        "plan file: changes[0].after.attrs.roles[0].deployment_id: missing for a DAG role");
  CHECK(error_of(tampered("\"type\": \"WORKSPACE\"", "\"type\": \"DAG\"")) ==
        "plan file: changes[0].after.attrs.type: unknown token type \"DAG\"");
  CHECK(error_of(tampered("\"kind\": \"STANDARD\"", "\"kind\": \"OTHER\"")) ==
        "plan file: changes[0].after.attrs.kind: unknown token kind \"OTHER\"");
  CHECK(error_of(tampered("\"prevent_destroy\": true", "\"prevent_destroy\": 1")) ==
        "plan file: changes[0].after.lifecycle.prevent_destroy: expected true or false");
  CHECK(error_of(tampered("\"kind\": \"deleted\"", "\"kind\": \"vanished\"")) ==
        "plan file: drift[0].kind: expected \"changed\" or \"deleted\", got \"vanished\"");
  CHECK(error_of(tampered("\"changes\": [", "\"changes\": [7, ")) ==
        "plan file: changes[0]: expected an object");
  CHECK(error_of(tampered("\"targets\": [", "\"targets\": [false, ")) ==
        "plan file: targets[0]: expected a string");
  CHECK(error_of(tampered("\"line\": 12", "\"line\": 99999999999")) ==
        "plan file: changes[0].after.pos.line: integer out of range");
}

TEST_CASE("a saved plan is current only for the same lineage - serial and specs", "[plan]") {
  Plan plan = compute(make_input());
  const std::string lineage = plan.lineage;
  const std::string hash = plan.spec_hash;
  CHECK(check_plan_current(plan, lineage, 7, hash).ok());

  Status serial = check_plan_current(plan, lineage, 9, hash);
  REQUIRE_FALSE(serial.ok());
  CHECK(serial.error().kind == ErrorKind::Conflict);
  CHECK(serial.error().message ==
        "Saved plan is stale: the state has changed since the plan was created (serial 7, now 9).");

  Status other_lineage = check_plan_current(plan, "another-lineage", 9, hash);
  REQUIRE_FALSE(other_lineage.ok());
  CHECK(other_lineage.error().kind == ErrorKind::Conflict);
  CHECK(other_lineage.error().message ==
        "Saved plan is stale: it was created for a different state lineage.");

  Status specs = check_plan_current(plan, lineage, 7, std::string(64, 'd'));
  REQUIRE_FALSE(specs.ok());
  CHECK(specs.error().kind == ErrorKind::Conflict);
  CHECK(specs.error().message ==
        "Saved plan is stale: the token specs have changed since the plan was created.");
}

TEST_CASE("a plan file with two changes for one address is refused naming both", "[plan]") {
  const std::string path =
      std::string(TOKEND_SOURCE_DIR) + "/tests/data/plan/invalid/duplicate_address.plan.json";
  Result<Plan> loaded = load_plan_file(path);
  REQUIRE_FALSE(loaded.ok());
  CHECK(loaded.error().kind == ErrorKind::Invalid);
  CHECK(loaded.error().message == path +
                                      ": plan file: changes[1]: a second change for "
                                      "astro_api_token.a_create (changes[0] is the first); a plan "
                                      "changes each token once");
}

TEST_CASE("a saved plan may not create an address the state already manages", "[plan]") {
  Plan plan = rich_plan();
  const Input input = all_actions_input();
  // As computed: every create is for an address without a state row, or
  // re-creates one the plan found deleted outside (i_recreate).
  CHECK(check_plan_creates(plan, input.prior).ok());
  Plan without_drift = plan;
  std::erase_if(without_drift.drift, [](const Drift& d) { return d.key == "i_recreate"; });
  Status undeclared = check_plan_creates(without_drift, input.prior);
  REQUIRE_FALSE(undeclared.ok());
  CHECK_THAT(
      undeclared.error().message,
      Catch::Contains("creates astro_api_token.i_recreate, which the state already manages"));

  std::vector<state::ResourceRecord> rows = input.prior;
  state::ResourceRecord managed = rows.front();
  managed.key = "a_create";
  rows.push_back(managed);
  Status refused = check_plan_creates(plan, rows);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().kind == ErrorKind::Invalid);
  CHECK(refused.error().message ==
        "plan file: changes[0]: creates astro_api_token.a_create, which the state already "
        "manages");
}
