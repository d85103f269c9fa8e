// Apply under a hostile API: 20% 503s, 5% 429s and 2% dropped connections
// (half before the operation, half after it took effect) on every operation.
// Repeated applies converge within three runs and never duplicate a token.
#include <catch2/catch.hpp>

#include "integration/apply_fixture.h"

using namespace tokend;
using namespace tokend::testing;

namespace {

constexpr int kTokens = 24;

void make_hostile(const ApplyWorkspace& ws) {
  sim::FaultRule dropped_before;
  dropped_before.drop_rate = 0.01;
  dropped_before.drop_when = sim::DropWhen::Before;
  sim::FaultRule dropped_after = dropped_before;
  dropped_after.drop_when = sim::DropWhen::After;
  ws.control().set_faults(
      {fail_rate("*", 503, 0.20), fail_rate("*", 429, 0.05), dropped_before, dropped_after},
      uint64_t{20261128});
}

// Applies until a run succeeds; the number of runs it took (4: never).
int apply_until_converged(ApplyWorkspace& ws) {
  for (int run = 1; run <= 3; ++run) {
    ProcessResult result = ws.apply();
    UNSCOPED_INFO("run " << run << " exit " << result.exit_code << ":\n" << result.err);
    if (result.exit_code == 0) return run;
  }
  return 4;
}

}  // namespace

TEST_CASE("under 503s - 429s and dropped connections - repeated applies converge with no duplicate",
          "[integration][apply]") {
  ApplyWorkspace ws;
  ws.write_spec("many.toml", many_token_specs("fault", kTokens, ws.sim().org_id()));
  make_hostile(ws);

  // Create them all.
  CHECK(apply_until_converged(ws) <= 3);
  CHECK(convergence_problems(ws, "fault", kTokens) == "");
  const RequestStats stats = ws.control().requests();
  // The faults did happen.
  uint64_t failed = 0;
  for (const auto& [op, statuses] : stats.status_counts)
    for (const auto& [status, n] : statuses)
      if (status != 200 && status != 204) failed += n;
  CHECK(failed > 0);

  // Then change them all ways: renames and role changes, deletions,
  // replacements, rotations for lost sinks.
  std::string specs = many_token_specs("fault", kTokens, ws.sim().org_id());
  auto replace_all = [&specs](const std::string& from, const std::string& to) {
    for (size_t at = specs.find(from); at != std::string::npos;
         at = specs.find(from, at + to.size()))
      specs.replace(at, from.size(), to);
  };
  replace_all("name = \"fault token 001\"",
              "name = \"fault token 001\"\ndescription = \"changed\"");
  replace_all("name = \"fault token 004\"",
              "name = \"fault token 004\"\nexpiry_period_in_days = 30");
  replace_all("name = \"fault token 007\"",
              "name = \"fault token 007\"\nexpiry_period_in_days = 60\n"
              "lifecycle = { create_before_destroy = true }");
  replace_all("\"WORKSPACE_MEMBER\"", "\"WORKSPACE_AUTHOR\"");  // every organization token's roles
  const size_t cut = specs.find("[api_token.fault_021]");
  REQUIRE(cut != std::string::npos);
  specs.erase(cut);  // deletes 021, 022, 023
  ws.write_spec("many.toml", specs);
  std::filesystem::remove(ws.sink_for("fault_010"));
  std::filesystem::remove(ws.sink_for("fault_011"));
  const std::string replaced_id = ws.row("fault_004").id;

  CHECK(apply_until_converged(ws) <= 3);
  CHECK(convergence_problems(ws, "fault", kTokens - 3) == "");
  CHECK(ws.row("fault_004").id != replaced_id);
  CHECK(ws.row("fault_004").attrs.expiry_period_in_days == 30);
  CHECK(ws.row("fault_007").attrs.expiry_period_in_days == 60);
  auto tokens = ws.tokens_by_name();
  CHECK(tokens.at("fault token 001").description == "changed");
  CHECK(tokens.at("fault token 000").roles == ws.row("fault_000").attrs.roles);
  CHECK(ws.row("fault_000").attrs.roles[2].role == "WORKSPACE_AUTHOR");

  // Without faults, there is nothing left to do.
  ws.control().clear_faults();
  ProcessResult settled = ws.apply();
  INFO(settled.out << settled.err);
  REQUIRE(settled.exit_code == 0);
  CHECK_THAT(settled.out, Catch::Contains("No changes."));
  for (const std::string& value : ws.control().issued_values())
    CHECK(ws.transcript().find(value) == std::string::npos);
}
