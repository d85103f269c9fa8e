// What the Astro API v1 adds to a token, through the differ, the renderers
// and saved plans: DAG and DAG_TAG roles (with their deployment), the token
// kind (cannot be updated: a change replaces) and last_rotated_at (read-only).
#include <catch2/catch.hpp>

#include "plan/fixtures.h"
#include "plan/plan.h"
#include "plan/plan_file.h"
#include "plan/render_json.h"
#include "plan/render_text.h"

using namespace tokend;
using namespace tokend::plan;
using namespace tokend::plan::testing;

namespace {

const Role kDagAuthor{"DAG_AUTHOR", "etl_daily", EntityType::Dag, kDeployment};
const Role kTagViewer{"DAG_VIEWER", "finance", EntityType::DagTag, kDeployment};

// A DEPLOYMENT token with a DAG and a DAG_TAG role, DIRECT_ACCESS, rotated
// once: spec, state row and remote token agree.
TokenAttrs dag_attrs(const std::string& key) {
  TokenAttrs attrs;
  attrs.name = key + " token";
  attrs.type = EntityType::Deployment;
  attrs.role = "DEPLOYMENT_ADMIN";
  attrs.roles = normalize_roles(
      {{"DEPLOYMENT_ADMIN", kDeployment, EntityType::Deployment}, kDagAuthor, kTagViewer});
  attrs.expiry_period_in_days = 90;
  attrs.kind = TokenKind::DirectAccess;
  return attrs;
}

Input dag_input(const std::string& key = "dags") {
  Input input = make_input();
  spec::TokenSpec spec = make_spec(key);
  spec.attrs = dag_attrs(key);
  state::ResourceRecord row = make_row(key);
  row.attrs = dag_attrs(key);
  row.last_rotated_at = days_from_now(-10);
  input.observed.tokens[row.id] = token_for(row);
  input.desired.push_back(spec);
  input.prior.push_back(row);
  return input;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("differ: a token with DAG and DAG_TAG roles that matches its spec is a no-op", "[plan]") {
  Plan plan = compute(dag_input());
  CHECK(plan.changes.empty());
  CHECK(plan.drift.empty());
  REQUIRE(plan.unchanged.size() == 1);
  CHECK(plan.unchanged[0].attrs.kind == TokenKind::DirectAccess);
  CHECK(plan.unchanged[0].last_rotated_at == days_from_now(-10));
}

TEST_CASE("differ: a change of kind replaces the token - because it cannot be updated", "[plan]") {
  Input input = dag_input();
  input.desired[0].attrs.kind = TokenKind::Standard;
  Plan plan = compute(input);
  REQUIRE(plan.changes.size() == 1);
  const Change& change = plan.changes[0];
  CHECK(change.action == Action::Replace);
  CHECK(change.replace_paths == std::vector<std::string>{"kind"});
  CHECK(change.action_reason == "replace_because_cannot_update");

  std::string text = render_text(plan, RenderOptions::for_terminal(false));
  INFO(text);
  CHECK(contains(text, "  # astro_api_token.dags must be replaced\n-/+ resource"));
  CHECK(contains(text,
                 "      ~ kind            = \"DIRECT_ACCESS\" -> \"STANDARD\" # forces "
                 "replacement\n"));
  // The replacement is a new token: it has not been rotated.
  CHECK(contains(text, "      - last_rotated_at = \"2026-02-19T12:00:00Z\" -> null\n"));
  std::string json = render_json(plan);
  CHECK(contains(json, "\"replace_paths\": [\n          [\n            \"kind\"\n          ]"));
  CHECK(contains(json, "\"action_reason\": \"replace_because_cannot_update\""));

  // With kind among ignore_changes, the token keeps its kind: no change.
  input.desired[0].lifecycle.ignore_changes = {"kind"};
  CHECK(compute(input).changes.empty());

  // And lifecycle.prevent_destroy makes it an error, as for type and expiry.
  input.desired[0].lifecycle.ignore_changes.clear();
  input.desired[0].lifecycle.prevent_destroy = true;
  Plan refused = compute(input);
  CHECK(refused.changes.empty());
  REQUIRE(refused.errors.size() == 1);
  CHECK(contains(refused.errors[0], "prevent_destroy"));
}

TEST_CASE("differ: a DAG role removed outside astro-tokend is drift - and the update puts it back",
          "[plan]") {
  Input input = dag_input();
  astro::ApiToken& remote = input.observed.tokens[id_for("dags")];
  remote.roles =
      normalize_roles({{"DEPLOYMENT_ADMIN", kDeployment, EntityType::Deployment}, kTagViewer});
  Plan plan = compute(input);
  REQUIRE(plan.drift.size() == 1);
  CHECK(plan.drift[0].kind == Drift::Kind::Changed);
  CHECK(drifted_attributes(plan.drift[0]) == std::vector<std::string>{"roles"});
  REQUIRE(plan.changes.size() == 1);
  const Change& change = plan.changes[0];
  CHECK(change.action == Action::Update);
  CHECK(change.update_roles);
  CHECK_FALSE(change.update_name_description);
  CHECK(change.after->attrs.roles == dag_attrs("dags").roles);

  std::string text = render_text(plan, RenderOptions::for_terminal(false));
  INFO(text);
  // The role put back, with its deployment, in the change (and its removal
  // in the drift report).
  CHECK(contains(text,
                 "          + {\n"
                 "              + deployment_id = \"clyn6kxud003x01mtxmccegnh\"\n"
                 "              + entity_id     = \"etl_daily\"\n"
                 "              + entity_type   = \"DAG\"\n"
                 "              + role          = \"DAG_AUTHOR\"\n"
                 "            },\n"));
  CHECK(contains(text, "              - deployment_id = \"clyn6kxud003x01mtxmccegnh\" -> null\n"));
  std::string json = render_json(plan);
  CHECK(contains(json, "\"deployment_id\": \"clyn6kxud003x01mtxmccegnh\",\n"));
  CHECK(contains(json, "\"entity_type\": \"DAG_TAG\""));
}

TEST_CASE("differ: a role on the same DAG id in another deployment is a different role", "[plan]") {
  Input input = dag_input();
  Role moved = kDagAuthor;
  moved.deployment_id = "clz0000000000000000000002";
  input.desired[0].attrs.roles = normalize_roles(
      {{"DEPLOYMENT_ADMIN", kDeployment, EntityType::Deployment}, moved, kTagViewer});
  Plan plan = compute(input);
  REQUIRE(plan.changes.size() == 1);
  CHECK(plan.changes[0].action == Action::Update);
  CHECK(plan.changes[0].update_roles);
}

TEST_CASE("differ: a kind changed outside astro-tokend is drift - and plans a replace", "[plan]") {
  Input input = dag_input();
  input.observed.tokens[id_for("dags")].kind = TokenKind::Standard;
  Plan plan = compute(input);
  REQUIRE(plan.drift.size() == 1);
  CHECK(drifted_attributes(plan.drift[0]) == std::vector<std::string>{"kind"});
  REQUIRE(plan.changes.size() == 1);
  CHECK(plan.changes[0].action == Action::Replace);
  CHECK(plan.changes[0].replace_paths == std::vector<std::string>{"kind"});
}

TEST_CASE("differ: last_rotated_at is read-only - refreshed from the API, never drift or a change",
          "[plan]") {
  Input input = dag_input();
  input.observed.tokens[id_for("dags")].last_rotated_at = days_from_now(-1);
  Plan plan = compute(input);
  CHECK(plan.changes.empty());
  CHECK(plan.drift.empty());
  REQUIRE(plan.unchanged.size() == 1);
  CHECK(plan.unchanged[0].last_rotated_at == days_from_now(-1));

  // A rotation makes it known after apply; a create leaves it null.
  input.rotations = {"astro_api_token.dags"};
  Plan rotate = compute(input);
  REQUIRE(rotate.changes.size() == 1);
  REQUIRE(rotate.changes[0].action == Action::Rotate);
  std::string text = render_text(rotate, RenderOptions::for_terminal(false));
  INFO(text);
  CHECK(contains(text,
                 "      ~ last_rotated_at = \"2026-02-28T12:00:00Z\" -> (known after "
                 "apply)\n"));
  CHECK(contains(render_json(rotate), "\"last_rotated_at\": true"));

  Input create = make_input();
  create.desired.push_back(dag_input().desired[0]);
  std::string created = render_text(compute(create), RenderOptions::for_terminal(false));
  INFO(created);
  CHECK(contains(created, "      + kind                  = \"DIRECT_ACCESS\"\n"));
  CHECK_FALSE(contains(created, "last_rotated_at"));
}

TEST_CASE("differ: importing a token of another kind is an error - an import cannot replace",
          "[plan]") {
  Input input = make_input();
  spec::TokenSpec spec = make_spec("a");
  spec.attrs = dag_attrs("a");
  spec.import_id = "tok-x";
  input.desired.push_back(spec);
  state::ResourceRecord other = make_row("x");
  other.attrs = dag_attrs("a");
  other.attrs.kind = TokenKind::Standard;
  input.observed.tokens["tok-x"] = token_for(other);
  Plan plan = compute(input);
  CHECK(plan.changes.empty());
  REQUIRE(plan.errors.size() == 1);
  CHECK(plan.errors[0] ==
        "import_id \"tok-x\" for astro_api_token.a names a STANDARD token, but the spec asks for "
        "kind DIRECT_ACCESS; an imported token cannot be replaced");
}

TEST_CASE("plan files keep DAG roles - kind and last_rotated_at", "[plan]") {
  Input input = dag_input();
  input.observed.tokens[id_for("dags")].roles =
      normalize_roles({{"DEPLOYMENT_ADMIN", kDeployment, EntityType::Deployment}});
  input.observed.tokens[id_for("dags")].last_rotated_at = days_from_now(-2);
  Input more = dag_input("other");
  more.desired[0].attrs.kind = TokenKind::Standard;
  input.desired.push_back(more.desired[0]);
  input.prior.push_back(more.prior[0]);
  input.observed.tokens.insert(more.observed.tokens.begin(), more.observed.tokens.end());
  Plan plan = compute(input);
  REQUIRE(plan.changes.size() == 2);
  REQUIRE(plan.drift.size() == 1);

  std::string saved = save_plan(plan);
  Result<Plan> loaded = load_plan(saved);
  REQUIRE(loaded.ok());
  CHECK(save_plan(*loaded) == saved);
  REQUIRE(loaded->changes.size() == 2);
  CHECK(loaded->changes[0].before == plan.changes[0].before);
  CHECK(loaded->changes[0].before->last_rotated_at == days_from_now(-2));
  CHECK(loaded->changes[0].after->attrs == plan.changes[0].after->attrs);
  CHECK(loaded->changes[1].replace_paths == std::vector<std::string>{"kind"});
  CHECK(loaded->changes[1].after->attrs.kind == TokenKind::Standard);
  REQUIRE(loaded->drift[0].observed);
  CHECK(loaded->drift[0].observed->kind == TokenKind::DirectAccess);
  CHECK(loaded->drift[0].observed->last_rotated_at == days_from_now(-2));
  CHECK(loaded->drift[0].recorded.attrs.roles == dag_attrs("dags").roles);

  // A DAG role without its deployment is refused.
  std::string text = saved;
  const std::string dag = "\"deployment_id\": \"clyn6kxud003x01mtxmccegnh\"";
  const size_t at = text.find(dag);
  REQUIRE(at != std::string::npos);
  Result<Plan> broken = load_plan(text.replace(at, dag.size(), "\"deployment_id\": \"\""));
  REQUIRE_FALSE(broken.ok());
  CHECK(contains(broken.error().message, "deployment_id: missing for a DAG"));
}
