// The lifecycle of the four organization and workspace example tokens against astro-api-sim,
// through the real astro-tokend binary: create, no-op, update, replace (both create_before_destroy
// settings, request order from the simulator's log), rotation when due and when a sink is deleted,
// drift put back, delete — and afterwards, no token value anywhere but in its sink.
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <regex>
#include <sstream>

#include "integration/apply_fixture.h"
#include "util/hash.h"

using namespace tokend;
using namespace tokend::testing;

namespace {

// Every state row's sink holds a value the simulator issued, whose SHA-256
// the row records, in a file of mode 0600.
void check_sinks(const ApplyWorkspace& ws, const std::vector<std::string>& issued) {
  for (const auto& row : ws.rows()) {
    INFO(row.address());
    CHECK(row.sink_path == ws.sink_for(row.key));
    REQUIRE(std::filesystem::exists(row.sink_path));
    CHECK(file_mode(row.sink_path) == 0600);
    const std::string value = read_file(row.sink_path);
    CHECK(std::find(issued.begin(), issued.end(), value) != issued.end());
    CHECK(row.sink_sha256 == sha256_hex(value));
    CHECK_FALSE(row.rotate_pending);
  }
  CHECK(file_mode(ws.secrets_dir()) == 0700);
}

const char* kOrganizationTokenAsWorkspaceToken = R"(# Organization API tokens.

# Now a workspace token (a type change forces a replacement).
[api_token.organization_token]
name        = "organization api token"
description = "organization api token description"
type        = "WORKSPACE"
role        = "WORKSPACE_OWNER"
roles = [
  { role = "WORKSPACE_OWNER", entity_id = "clx42sxw501gl01o0gjenthnh", entity_type = "WORKSPACE" },
]
expiry_period_in_days = 30
rotate_before_expiry_days = 7

[api_token.organization_token_with_multiple_roles]
name        = "organization api token with multiple roles"
description = "organization api token description"
type        = "ORGANIZATION"
role        = "ORGANIZATION_OWNER"
roles = [
  { role = "ORGANIZATION_OWNER", entity_id = "clx42kkcm01fo01o06agtmshg", entity_type = "ORGANIZATION" },
  { role = "WORKSPACE_OWNER",    entity_id = "clx42sxw501gl01o0gjenthnh", entity_type = "WORKSPACE" },
]
)";

}  // namespace

namespace {

// Every change's start line and its completion line carry the same "[i/N] "
// number; the numbers are 1..N, each used by one address.
void check_progress_numbers(const std::string& out, size_t total) {
  const std::regex line(R"(^\[(\d+)/(\d+)\] (astro_api_token\.\w+): (.*)$)");
  std::map<std::string, std::string> started;    // number -> address
  std::map<std::string, std::string> completed;  // number -> address
  std::istringstream lines(out);
  for (std::string text; std::getline(lines, text);) {
    std::smatch match;
    if (!std::regex_match(text, match, line)) continue;
    INFO(text);
    CHECK(match[2] == std::to_string(total));
    auto& side = match[4].str().find("...") != std::string::npos ? started : completed;
    CHECK(side.emplace(match[1], match[3]).second);
  }
  CHECK(started.size() == total);
  CHECK(started == completed);
  for (size_t i = 1; i <= total; ++i) CHECK(started.count(std::to_string(i)) == 1);
}

}  // namespace

TEST_CASE("apply takes the example tokens through their whole lifecycle", "[integration][apply]") {
  ApplyWorkspace ws;
  ws.copy_example_specs();
  ws.remove_spec("deployment.toml");  // DAG roles have their own test (dag_roles_test.cpp)
  ws.edit_spec("organization.toml", "expiry_period_in_days = 30\n",
               "expiry_period_in_days = 30\nrotate_before_expiry_days = 7\n");
  SimControl sim = ws.control();

  // --- create ---------------------------------------------------------------
  ProcessResult created = ws.apply();
  REQUIRE_EXIT(created, 0);
  CHECK_THAT(created.out,
             Catch::Contains("Plan: 4 to add, 0 to change, 0 to destroy, 0 to rotate."));
  CHECK_THAT(created.out, Catch::Contains("astro_api_token.workspace_token: Creating..."));
  CHECK_THAT(created.out,
             Catch::Contains("astro_api_token.workspace_token: Creation complete after "));
  check_progress_numbers(created.out, 4);
  CHECK_THAT(
      created.out,
      Catch::Contains("Apply complete! Resources: 4 added, 0 changed, 0 destroyed, 0 rotated."));
  RequestStats stats = sim.requests();
  CHECK(stats.count("CreateApiToken", 200) == 4);
  // Only the tokens with more than one role need the second call.
  CHECK(stats.count("UpdateApiTokenRoles", 200) == 2);
  CHECK(stats.count("GetApiToken") == 0);
  auto tokens = ws.tokens_by_name();
  REQUIRE(tokens.size() == 4);
  CHECK(tokens.at("organization api token with multiple roles").roles.size() == 3);
  CHECK(tokens.at("workspace api token with deployment role").roles.size() == 2);
  CHECK(ws.rows().size() == 4);
  check_sinks(ws, sim.issued_values());

  // --- no-op ----------------------------------------------------------------
  sim.reset_requests();
  ProcessResult noop = ws.apply();
  REQUIRE_EXIT(noop, 0);
  CHECK_THAT(noop.out, Catch::Contains("No changes. Your tokens match the configuration."));
  CHECK(writes(sim.requests()).empty());

  // --- update in place: name and description, roles --------------------------
  ws.edit_spec("workspace.toml", "name        = \"workspace api token\"",
               "name        = \"workspace api token, renamed\"");
  ws.edit_spec("organization.toml",
               "  { role = \"DEPLOYMENT_ADMIN\",   entity_id = \"clyn6kxud003x01mtxmccegnh\", "
               "entity_type = \"DEPLOYMENT\" },\n",
               "");
  const std::string workspace_id = ws.row("workspace_token").id;
  const std::string multi_id = ws.row("organization_token_with_multiple_roles").id;
  const std::string workspace_value = read_file(ws.sink_for("workspace_token"));
  sim.reset_requests();
  ProcessResult updated = ws.apply();
  REQUIRE_EXIT(updated, 0);
  CHECK_THAT(updated.out,
             Catch::Contains("Plan: 0 to add, 2 to change, 0 to destroy, 0 to rotate."));
  CHECK_THAT(updated.out,
             Catch::Contains("astro_api_token.workspace_token: Modifications complete after "));
  std::vector<std::string> update_writes = writes(sim.requests());
  std::sort(update_writes.begin(), update_writes.end());  // the two changes run in parallel
  CHECK(update_writes == std::vector<std::string>{"UpdateApiToken " + workspace_id,
                                                  "UpdateApiTokenRoles " + multi_id});
  tokens = ws.tokens_by_name();
  CHECK(tokens.at("workspace api token, renamed").id == workspace_id);
  CHECK(tokens.at("organization api token with multiple roles").roles.size() == 2);
  CHECK(read_file(ws.sink_for("workspace_token")) == workspace_value);  // no rotation

  // --- replace, destroy first (a type change) --------------------------------
  const std::string org_old = ws.row("organization_token").id;
  ws.write_spec("organization.toml", kOrganizationTokenAsWorkspaceToken);
  sim.reset_requests();
  ProcessResult replaced = ws.apply();
  REQUIRE_EXIT(replaced, 0);
  CHECK_THAT(replaced.out,
             Catch::Contains("Plan: 1 to add, 0 to change, 1 to destroy, 0 to rotate."));
  const std::string org_new = ws.row("organization_token").id;
  CHECK(org_new != org_old);
  CHECK(writes(sim.requests()) ==
        std::vector<std::string>{"DeleteApiToken " + org_old, "CreateApiToken"});
  CHECK(ws.tokens_by_name().at("organization api token").type == EntityType::Workspace);
  CHECK_FALSE(sim.token(org_old));

  // --- replace, create first (an expiry change) ------------------------------
  ws.edit_spec("workspace.toml", "[api_token.workspace_token_with_deployment_role]\n",
               "[api_token.workspace_token_with_deployment_role]\nexpiry_period_in_days = 90\n");
  ws.write_spec("workspace.toml",
                ws.read_spec("workspace.toml") +
                    "\n[api_token.workspace_token_with_deployment_role.lifecycle]\n"
                    "create_before_destroy = true\n");
  const std::string wsd_old = ws.row("workspace_token_with_deployment_role").id;
  sim.reset_requests();
  ProcessResult replaced_cbd = ws.apply();
  REQUIRE_EXIT(replaced_cbd, 0);
  CHECK_THAT(replaced_cbd.out, Catch::Contains("create replacement and then destroy"));
  const std::string wsd_new = ws.row("workspace_token_with_deployment_role").id;
  CHECK(writes(sim.requests()) == std::vector<std::string>{"CreateApiToken",
                                                           "UpdateApiTokenRoles " + wsd_new,
                                                           "DeleteApiToken " + wsd_old});
  CHECK(ws.row("workspace_token_with_deployment_role").attrs.expiry_period_in_days == 90);
  CHECK(ws.rows().size() == 4);  // the deposed row is gone again
  check_sinks(ws, sim.issued_values());

  // --- rotation when due, after the simulator ages the token -----------------
  const auto now =
      std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  sim::TokenPatch age;
  age.start_at = now - std::chrono::days(28);
  age.created_at = now - std::chrono::days(28);
  age.end_at = std::optional<Timestamp>(now + std::chrono::days(2));
  sim.patch_token(org_new, age);
  const std::string org_value = read_file(ws.sink_for("organization_token"));
  sim.reset_requests();
  ProcessResult rotated = ws.apply();
  REQUIRE_EXIT(rotated, 0);
  CHECK_THAT(rotated.out,
             Catch::Contains("Plan: 0 to add, 0 to change, 0 to destroy, 1 to rotate."));
  CHECK_THAT(rotated.out,
             Catch::Contains("astro_api_token.organization_token: Rotation complete after "));
  CHECK_THAT(
      rotated.out,
      Catch::Contains("Apply complete! Resources: 0 added, 0 changed, 0 destroyed, 1 rotated."));
  CHECK(writes(sim.requests()) == std::vector<std::string>{"RotateApiToken " + org_new});
  CHECK(read_file(ws.sink_for("organization_token")) != org_value);
  CHECK(*ws.row("organization_token").end_at >= now + std::chrono::days(29));
  CHECK(sim.token(org_new)->start_at >= now);

  // --- rotation when a sink file is deleted -----------------------------------
  std::filesystem::remove(ws.sink_for("workspace_token"));
  sim.reset_requests();
  ProcessResult redelivered = ws.apply();
  REQUIRE_EXIT(redelivered, 0);
  CHECK(writes(sim.requests()) == std::vector<std::string>{"RotateApiToken " + workspace_id});
  REQUIRE(std::filesystem::exists(ws.sink_for("workspace_token")));
  CHECK(read_file(ws.sink_for("workspace_token")) != workspace_value);
  check_sinks(ws, sim.issued_values());

  // --- drift: renamed, roles changed and deleted outside, put back ------------
  sim::TokenPatch rename;
  rename.name = "renamed by hand";
  sim.patch_token(workspace_id, rename);
  sim::TokenPatch roles;
  roles.roles = RoleSet{{"ORGANIZATION_MEMBER", ws.sim().org_id(), EntityType::Organization}};
  sim.patch_token(multi_id, roles);
  REQUIRE(sim.delete_token(wsd_new));
  sim.reset_requests();
  ProcessResult drift = ws.apply();
  REQUIRE_EXIT(drift, 0);
  CHECK_THAT(drift.out, Catch::Contains("Note: Objects have changed outside of astro-tokend"));
  CHECK_THAT(
      drift.out,
      Catch::Contains("Apply complete! Resources: 1 added, 2 changed, 0 destroyed, 0 rotated."));
  std::vector<std::string> drift_writes = writes(sim.requests());
  std::sort(drift_writes.begin(), drift_writes.end());
  const std::string wsd_recreated = ws.row("workspace_token_with_deployment_role").id;
  std::vector<std::string> expected{"CreateApiToken", "UpdateApiToken " + workspace_id,
                                    "UpdateApiTokenRoles " + multi_id,
                                    "UpdateApiTokenRoles " + wsd_recreated};
  std::sort(expected.begin(), expected.end());
  CHECK(drift_writes == expected);
  tokens = ws.tokens_by_name();
  CHECK(tokens.at("workspace api token, renamed").id == workspace_id);
  CHECK(tokens.at("organization api token with multiple roles").roles ==
        ws.row("organization_token_with_multiple_roles").attrs.roles);
  CHECK(tokens.at("organization api token with multiple roles").roles.size() == 2);
  CHECK(tokens.at("workspace api token with deployment role").id == wsd_recreated);
  sim.reset_requests();
  REQUIRE_EXIT(ws.apply(), 0);
  CHECK(writes(sim.requests()).empty());

  // --- delete ------------------------------------------------------------------
  ws.remove_spec("workspace.toml");
  sim.reset_requests();
  ProcessResult deleted = ws.apply();
  REQUIRE_EXIT(deleted, 0);
  CHECK_THAT(deleted.out,
             Catch::Contains("astro_api_token.workspace_token: Destruction complete after "));
  CHECK_THAT(
      deleted.out,
      Catch::Contains("Apply complete! Resources: 0 added, 0 changed, 2 destroyed, 0 rotated."));
  std::vector<std::string> deletes = writes(sim.requests());
  std::sort(deletes.begin(), deletes.end());
  CHECK(deletes ==
        std::vector<std::string>{"DeleteApiToken " + std::min(workspace_id, wsd_recreated),
                                 "DeleteApiToken " + std::max(workspace_id, wsd_recreated)});
  CHECK(ws.tokens_by_name().size() == 2);
  CHECK(ws.rows().size() == 2);
  CHECK_FALSE(std::filesystem::exists(ws.sink_for("workspace_token")));
  CHECK_FALSE(std::filesystem::exists(ws.sink_for("workspace_token_with_deployment_role")));

  // --- secrets: every value issued is in no output, log or state file ---------
  const std::vector<std::string> issued = sim.issued_values();
  CHECK(issued.size() == 9);  // 7 creates (4, 2 replacements, 1 re-creation) and 2 rotations
  check_sinks(ws, issued);
  for (const std::string& value : issued) {
    REQUIRE(value.size() >= 16);
    CHECK(ws.transcript().find(value) == std::string::npos);
    CHECK(find_in_files(ws.dir().path(), value, ws.secrets_dir()) == "");
  }
  for (const std::string suffix : {"", "-wal", "-shm"}) {
    if (!std::filesystem::exists(ws.state_path() + suffix)) continue;
    CHECK(file_mode(ws.state_path() + suffix) == 0600);
  }
}
