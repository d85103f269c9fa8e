// [astro] api_version end to end against astro-api-sim, which serves v1 and
// v1beta1 over one organization: the default config speaks only v1, v1beta1
// still runs the same flows with its deprecation warning, and state written
// under either version is valid under the other.
#include <catch2/catch.hpp>

#include "integration/apply_fixture.h"

using namespace tokend;
using namespace tokend::testing;

namespace {

constexpr const char* kDeprecation = "v1beta1 support ends in January 2027";

// Tokens both versions can express: STANDARD, no DAG roles.
std::string specs_both_versions_express() {
  return std::string(
             "[api_token.ci]\nname = \"ci deployer\"\ntype = \"WORKSPACE\"\n"
             "role = \"WORKSPACE_OPERATOR\"\nroles = [\n"
             "  { role = \"WORKSPACE_OPERATOR\", entity_id = \"") +
         kSimWorkspaceId +
         "\", entity_type = \"WORKSPACE\" },\n"
         "  { role = \"DEPLOYMENT_ADMIN\", entity_id = \"" +
         kSimDeploymentId +
         "\", entity_type = \"DEPLOYMENT\" },\n]\nexpiry_period_in_days = 30\n\n"
         "[api_token.deploy]\nname = \"deployment admin\"\ntype = \"DEPLOYMENT\"\n"
         "role = \"DEPLOYMENT_ADMIN\"\nroles = [\n"
         "  { role = \"DEPLOYMENT_ADMIN\", entity_id = \"" +
         kSimDeploymentId + "\", entity_type = \"DEPLOYMENT\" },\n]\n";
}

size_t occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The paths of every API request the simulator answered that are not under `prefix`.
std::vector<std::string> paths_outside(const RequestStats& stats, const std::string& prefix) {
  std::vector<std::string> out;
  for (const sim::LoggedRequest& r : stats.requests)
    if (!r.path.starts_with(prefix)) out.push_back(r.method + " " + r.path);
  return out;
}

}  // namespace

TEST_CASE("with the default config every command talks to the v1 routes only",
          "[integration][api_version]") {
  ApplyWorkspace ws;
  ws.copy_example_specs();
  ws.write_spec("both.toml", specs_both_versions_express());
  ws.control().reset_requests();

  REQUIRE_EXIT(ws.tokend({"validate", "--remote"}), 0);
  REQUIRE_EXIT(ws.apply(), 0);
  ProcessResult planned = ws.tokend({"plan", "--detailed-exitcode"});
  CHECK(planned.exit_code == 0);
  REQUIRE_EXIT(ws.tokend({"run", "--once"}), 0);

  RequestStats stats = ws.control().requests();
  CHECK(stats.count("ListApiTokens") >= 3);
  CHECK(stats.count("CreateApiToken") >= 2);
  CHECK(stats.count("ListDeployments") >= 1);
  CHECK(paths_outside(stats, "/v1/organizations/" + ws.sim().org_id() + "/") ==
        std::vector<std::string>{});
  // Nothing warns about the API version.
  CHECK(ws.transcript().find("v1beta1") == std::string::npos);
}

TEST_CASE("with api_version v1beta1 every command runs the same flows and warns once",
          "[integration][api_version]") {
  ApplyWorkspaceOptions options;
  options.api_version = "v1beta1";
  options.sim.serve_v1beta1 = true;
  ApplyWorkspace ws(options);
  ws.write_spec("both.toml", specs_both_versions_express());
  ws.control().reset_requests();

  ProcessResult validated = ws.tokend({"validate"});
  REQUIRE_EXIT(validated, 0);
  CHECK(occurrences(validated.err, kDeprecation) == 1);
  ProcessResult remote = ws.tokend({"validate", "--remote"});
  REQUIRE_EXIT(remote, 0);
  CHECK(occurrences(remote.err, kDeprecation) == 1);
  ProcessResult applied = ws.apply();
  REQUIRE_EXIT(applied, 0);
  CHECK(occurrences(applied.err, kDeprecation) == 1);
  ProcessResult planned = ws.tokend({"plan", "--detailed-exitcode"});
  CHECK(planned.exit_code == 0);
  CHECK_THAT(planned.out, Catch::Contains("No changes."));
  CHECK(occurrences(planned.err, kDeprecation) == 1);
  // The daemon logs it as a typed (logfmt) line, once.
  ProcessResult cycle = ws.tokend({"run", "--once"});
  REQUIRE_EXIT(cycle, 0);
  CHECK(occurrences(cycle.err, "msg=\"astro api v1beta1 is deprecated\"") == 1);
  CHECK(occurrences(cycle.err, "support_ends=2027-01") == 1);

  RequestStats stats = ws.control().requests();
  CHECK(stats.count("CreateApiToken") == 2);
  CHECK(stats.count("ListDeployments") >= 1);
  for (const sim::LoggedRequest& r : stats.requests) {
    INFO(r.method << " " << r.path);
    CHECK((r.path.starts_with("/iam/v1beta1/organizations/") ||
           r.path.starts_with("/platform/v1beta1/organizations/")));
  }
}

TEST_CASE("state written under either API version plans no changes under the other",
          "[integration][api_version]") {
  ApplyWorkspaceOptions options;
  options.sim.serve_v1beta1 = true;
  ApplyWorkspace ws(options);
  ws.write_spec("both.toml", specs_both_versions_express());

  SECTION("applied with v1beta1, planned with v1") {
    ws.set_api_version("v1beta1");
    REQUIRE_EXIT(ws.apply(), 0);
    ws.set_api_version("");
  }
  SECTION("applied with v1, planned with v1beta1") {
    REQUIRE_EXIT(ws.apply(), 0);
    ws.set_api_version("v1beta1");
  }
  const auto ids_before = ws.rows();
  REQUIRE(ids_before.size() == 2);
  ws.control().reset_requests();
  ProcessResult planned = ws.tokend({"plan", "--detailed-exitcode"});
  INFO(planned.out << planned.err);
  CHECK(planned.exit_code == 0);
  CHECK_THAT(planned.out, Catch::Contains("No changes."));
  REQUIRE_EXIT(ws.apply(), 0);
  const auto ids_after = ws.rows();
  REQUIRE(ids_after.size() == 2);
  for (size_t i = 0; i < ids_after.size(); ++i) CHECK(ids_after[i].id == ids_before[i].id);
  CHECK(ws.control().requests().count("CreateApiToken") == 0);
  CHECK(ws.control().requests().count("UpdateApiToken") == 0);
}
