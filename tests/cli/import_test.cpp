// `astro-tokend import ADDR TOKEN_ID` through the real binary against
// astro-api-sim: messages, exit codes, the recorded row and the API calls.
#include <catch2/catch.hpp>

#include <string>

#include "cli/fixture.h"
#include "state/sqlite_store.h"

using tokend::testing::CliWorkspace;
using tokend::testing::create_out_of_band;
using tokend::testing::ProcessResult;
using tokend::testing::workspace_spec;
using tokend::testing::workspace_token;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// API requests other than reads.
uint64_t writes(const tokend::testing::RequestStats& stats) {
  uint64_t n = 0;
  for (const char* op : {"CreateApiToken", "UpdateApiToken", "UpdateApiTokenRoles",
                         "RotateApiToken", "DeleteApiToken"})
    n += stats.count(op);
  return n;
}

}  // namespace

TEST_CASE("import records an existing token with one GET and no API write", "[cli][import]") {
  CliWorkspace ws;
  ws.write_spec("a.toml", workspace_spec("alpha", "alpha token"));
  auto token = create_out_of_band(ws.control(), workspace_token("alpha", "alpha token"));
  ws.control().reset_requests();

  ProcessResult result = ws.tokend({"import", "astro_api_token.alpha", token.id});
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  CHECK(contains(result.out, "astro_api_token.alpha: Importing from ID \"" + token.id +
                                 "\"...\n"
                                 "astro_api_token.alpha: Import prepared!\n"));
  CHECK(contains(result.out, "\nImport successful!\n"));
  CHECK(contains(result.out, "nothing was written to " + ws.sink_for("alpha")));
  auto stats = ws.control().requests();
  CHECK(stats.count("GetApiToken") == 1);
  CHECK(stats.total == 1);

  auto store = ws.open_state();
  auto row = store->resource("alpha");
  REQUIRE(row.ok());
  REQUIRE(row->has_value());
  CHECK((*row)->id == token.id);
  CHECK((*row)->attrs == token.attrs());
  CHECK((*row)->sink_path == ws.sink_for("alpha"));
  CHECK((*row)->sink_sha256.empty());

  // A following plan shows only real differences: none.
  ProcessResult plan = ws.tokend({"plan", "--detailed-exitcode"});
  CHECK(plan.exit_code == 0);
  CHECK(plan.out == "No changes. Your tokens match the configuration.\n");
}

TEST_CASE("import refuses an address that no spec names", "[cli][import]") {
  CliWorkspace ws;
  ws.write_spec("a.toml", workspace_spec("alpha", "alpha token"));
  auto token = create_out_of_band(ws.control(), workspace_token("alpha", "alpha token"));
  ws.control().reset_requests();

  for (const char* address : {"astro_api_token.other", "alpha"}) {
    ProcessResult result = ws.tokend({"import", address, token.id});
    CHECK(result.exit_code == 1);
    CHECK(result.out.empty());
    CHECK(contains(result.err, "Error: resource address \"" + std::string(address) +
                                   "\" does not exist in the configuration.\n"));
  }
  CHECK(ws.control().requests().total == 0);
  CHECK(ws.open_state()->resources()->empty());
}

TEST_CASE("import refuses an address already managed and a token managed elsewhere",
          "[cli][import]") {
  CliWorkspace ws;
  ws.write_spec("a.toml",
                workspace_spec("alpha", "alpha token") + workspace_spec("beta", "beta token"));
  auto alpha = create_out_of_band(ws.control(), workspace_token("alpha", "alpha token"));
  auto other = create_out_of_band(ws.control(), workspace_token("beta", "beta token"));
  auto store = ws.open_state();
  ws.record(*store, "alpha", alpha);
  const int64_t serial = store->serial();
  ws.control().reset_requests();

  ProcessResult managed = ws.tokend({"import", "astro_api_token.alpha", other.id});
  CHECK(managed.exit_code == 1);
  CHECK(contains(managed.err, "Error: Resource already managed by astro-tokend\n"));
  CHECK(contains(managed.err, "astro-tokend state rm astro_api_token.alpha"));

  ProcessResult taken = ws.tokend({"import", "astro_api_token.beta", alpha.id});
  CHECK(taken.exit_code == 1);
  CHECK(contains(taken.err,
                 "Error: token \"" + alpha.id + "\" is already managed as astro_api_token.alpha"));

  CHECK(ws.control().requests().total == 0);
  CHECK(store->serial() == serial);
}

TEST_CASE("import of a token id that does not exist records nothing", "[cli][import]") {
  CliWorkspace ws;
  ws.write_spec("a.toml", workspace_spec("alpha", "alpha token"));
  ws.control().reset_requests();
  ProcessResult result =
      ws.tokend({"import", "astro_api_token.alpha", "cnosuchtoken0000000000000"});
  CHECK(result.exit_code == 1);
  CHECK(contains(result.err, "Error: Cannot import non-existent remote object\n"));
  auto stats = ws.control().requests();
  CHECK(stats.count("GetApiToken") == 1);
  CHECK(writes(stats) == 0);
  CHECK(ws.open_state()->resources()->empty());
}

TEST_CASE("import with a bad spec set reports it and touches nothing", "[cli][import]") {
  CliWorkspace ws;
  ws.write_spec("a.toml", "[api_token.alpha]\nname = 1\n");
  ProcessResult result = ws.tokend({"import", "astro_api_token.alpha", "cm0000000000000000000000"});
  CHECK(result.exit_code == 1);
  CHECK(result.out.empty());
  CHECK(contains(result.err, "error:"));
  CHECK(ws.control().requests().total == 0);
  CHECK_FALSE(std::filesystem::exists(ws.state_path()));
}

TEST_CASE("import fails at once while another process holds the writer lock", "[cli][import]") {
  CliWorkspace ws;
  ws.write_spec("a.toml", workspace_spec("alpha", "alpha token"));
  auto token = create_out_of_band(ws.control(), workspace_token("alpha", "alpha token"));
  auto store = ws.open_state();
  auto lock = tokend::state::WriterLock::acquire(ws.state_path(), "run");
  REQUIRE(lock.ok());
  ws.control().reset_requests();
  ProcessResult result = ws.tokend({"import", "astro_api_token.alpha", token.id});
  CHECK(result.exit_code == 1);
  CHECK(contains(result.err, "state is locked by pid"));
  CHECK(ws.control().requests().total == 0);
  CHECK(store->resources()->empty());
}
