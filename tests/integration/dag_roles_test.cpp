// DAG and DAG_TAG roles and the token kind end to end: the real binary
// against astro-api-sim's v1 routes.
#include <catch2/catch.hpp>

#include "integration/apply_fixture.h"

using namespace tokend;
using namespace tokend::testing;

namespace {

const std::string kDagSpec = std::string(R"([api_token.dags]
name = "dag operator"
type = "DEPLOYMENT"
role = "DEPLOYMENT_ADMIN"
kind = "DIRECT_ACCESS"
roles = [
  { role = "DEPLOYMENT_ADMIN", entity_id = ")") +
                             kSimDeploymentId +
                             R"(", entity_type = "DEPLOYMENT" },
  { role = "DAG_AUTHOR", entity_id = "etl_daily", entity_type = "DAG", deployment_id = ")" +
                             kSimDeploymentId + R"(" },
  { role = "DAG_VIEWER", entity_id = "finance", entity_type = "DAG_TAG", deployment_id = ")" +
                             kSimDeploymentId + R"(" },
]
)";

RoleSet dag_roles() {
  return normalize_roles({{"DEPLOYMENT_ADMIN", kSimDeploymentId, EntityType::Deployment},
                          {"DAG_AUTHOR", "etl_daily", EntityType::Dag, kSimDeploymentId},
                          {"DAG_VIEWER", "finance", EntityType::DagTag, kSimDeploymentId}});
}

}  // namespace

TEST_CASE(
    "DAG and DAG_TAG roles of a DIRECT_ACCESS token apply - plan empty - drift is put back - a "
    "kind change replaces",
    "[integration][apply]") {
  ApplyWorkspace ws;
  ws.write_spec("dags.toml", kDagSpec);
  SimControl sim = ws.control();

  ProcessResult created = ws.apply();
  REQUIRE_EXIT(created, 0);
  CHECK_THAT(created.out, Catch::Contains("Plan: 1 to add, 0 to change, 0 to destroy"));
  const state::ResourceRecord row = ws.row("dags");
  CHECK(row.attrs.kind == TokenKind::DirectAccess);
  CHECK(row.attrs.roles == dag_roles());
  CHECK_FALSE(row.last_rotated_at.has_value());
  std::optional<astro::ApiToken> remote = sim.token(row.id);
  REQUIRE(remote);
  CHECK(remote->kind == TokenKind::DirectAccess);
  CHECK(remote->roles == dag_roles());

  ProcessResult noop = ws.tokend({"plan", "--detailed-exitcode", "--no-color"});
  REQUIRE_EXIT(noop, 0);
  CHECK_THAT(noop.out, Catch::Contains("No changes."));

  ProcessResult shown = ws.tokend({"state", "show", "astro_api_token.dags"});
  REQUIRE_EXIT(shown, 0);
  CHECK_THAT(shown.out, Catch::Contains("    kind            = \"DIRECT_ACCESS\"\n"));
  CHECK_THAT(shown.out,
             Catch::Contains("            deployment_id = \"" + std::string(kSimDeploymentId) +
                             "\"\n            entity_id     = \"etl_daily\"\n"));

  // A DAG role removed out of band: drift, and apply puts it back.
  sim::TokenPatch patch;
  patch.roles = normalize_roles({{"DEPLOYMENT_ADMIN", kSimDeploymentId, EntityType::Deployment},
                                 {"DAG_VIEWER", "finance", EntityType::DagTag, kSimDeploymentId}});
  sim.patch_token(row.id, patch);
  ProcessResult drift = ws.tokend({"plan", "--detailed-exitcode", "--no-color"});
  REQUIRE_EXIT(drift, 2);
  CHECK_THAT(drift.out, Catch::Contains("# astro_api_token.dags has changed"));
  CHECK_THAT(drift.out, Catch::Contains("# astro_api_token.dags will be updated in-place"));
  CHECK_THAT(drift.out, Catch::Contains("              + role          = \"DAG_AUTHOR\"\n"));
  CHECK_THAT(drift.out, Catch::Contains("Plan: 0 to add, 1 to change, 0 to destroy"));
  ProcessResult restored = ws.apply();
  REQUIRE_EXIT(restored, 0);
  remote = sim.token(row.id);
  REQUIRE(remote);
  CHECK(remote->roles == dag_roles());
  REQUIRE_EXIT(ws.tokend({"plan", "--detailed-exitcode", "--no-color"}), 0);

  // A rotation records when the API rotated the token.
  ProcessResult rotated = ws.apply({"--rotate", "astro_api_token.dags"});
  REQUIRE_EXIT(rotated, 0);
  remote = sim.token(row.id);
  REQUIRE(remote);
  REQUIRE(remote->last_rotated_at);
  CHECK(ws.row("dags").last_rotated_at == remote->last_rotated_at);

  // Changing kind plans a replace: the API cannot update it.
  ws.edit_spec("dags.toml", "kind = \"DIRECT_ACCESS\"", "kind = \"STANDARD\"");
  ProcessResult replace = ws.tokend({"plan", "--detailed-exitcode", "--no-color"});
  REQUIRE_EXIT(replace, 2);
  CHECK_THAT(replace.out, Catch::Contains("# astro_api_token.dags must be replaced"));
  CHECK_THAT(replace.out,
             Catch::Contains(
                 "~ kind            = \"DIRECT_ACCESS\" -> \"STANDARD\" # forces replacement"));
  CHECK_THAT(replace.out, Catch::Contains("Plan: 1 to add, 0 to change, 1 to destroy"));
  ProcessResult replaced = ws.apply();
  REQUIRE_EXIT(replaced, 0);
  const state::ResourceRecord now = ws.row("dags");
  CHECK(now.id != row.id);
  CHECK(now.attrs.kind == TokenKind::Standard);
  CHECK_FALSE(sim.token(row.id).has_value());
  remote = sim.token(now.id);
  REQUIRE(remote);
  CHECK(remote->kind == TokenKind::Standard);
  CHECK(remote->roles == dag_roles());

  for (const std::string& value : sim.issued_values())
    CHECK(ws.transcript().find(value) == std::string::npos);
}

TEST_CASE("validate --remote and plan name a DAG role's deployment that does not exist",
          "[integration][apply]") {
  ApplyWorkspace ws;
  std::string spec = kDagSpec;
  const std::string missing = "cnosuchdeployment000000000";
  const std::string dag =
      "entity_type = \"DAG\", deployment_id = \"" + std::string(kSimDeploymentId) + "\"";
  spec.replace(spec.find(dag), dag.size(),
               "entity_type = \"DAG\", deployment_id = \"" + missing + "\"");
  ws.write_spec("dags.toml", spec);
  ws.control().reset_requests();
  ProcessResult validated = ws.tokend({"validate", "--remote"});
  REQUIRE_EXIT(validated, 1);
  CHECK_THAT(validated.err, Catch::Contains("astro_api_token.dags: deployment \"" + missing +
                                            "\" (the deployment_id of its DAG role on "
                                            "\"etl_daily\") does not exist in organization"));
  CHECK(ws.control().requests().count("ListDeployments") == 1);
  ProcessResult planned = ws.tokend({"plan", "--no-color"});
  REQUIRE_EXIT(planned, 1);
  CHECK_THAT(planned.err, Catch::Contains("\"" + missing + "\" (the deployment_id of its DAG"));
  CHECK(ws.control().tokens().empty());
}
