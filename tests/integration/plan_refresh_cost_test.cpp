// What a refresh costs: a plan over 2,500 managed tokens lists them in pages
// of 1,000 (3 ListApiTokens, oldest first) and reads a token on its own only
// when the listing does not show it (one GetApiToken each).
#include <catch2/catch.hpp>

#include "cli/fixture.h"

TEST_CASE("a plan over 2500 managed tokens sends 3 ListApiTokens and a GetApiToken per missing one",
          "[integration][plan]") {
  tokend::testing::CliWorkspace ws;
  tokend::testing::seed_managed_fleet(ws, 2500, 5);
  auto store = ws.open_state();
  REQUIRE(store->resources()->size() == 2500);
  const int64_t serial = store->serial();
  ws.control().reset_requests();

  tokend::testing::ProcessResult result = ws.tokend({"plan", "--detailed-exitcode"});
  INFO(result.err);
  CHECK(result.exit_code == 0);
  CHECK(result.out == "No changes. Your tokens match the configuration.\n");

  const tokend::testing::RequestStats stats = ws.control().requests();
  CHECK(stats.count("ListApiTokens") == 3);
  CHECK(stats.count("GetApiToken") == 0);
  // Every workspace and deployment the specs use is held by a listed token.
  CHECK(stats.count("ListWorkspaces") == 0);
  CHECK(stats.count("ListDeployments") == 0);
  CHECK(stats.total == 3);
  for (const auto& request : stats.requests) {
    if (request.operation != "ListApiTokens") continue;
    CHECK(request.query.find("limit=1000") != std::string::npos);
    CHECK(request.query.find("sorts=createdAt:asc") != std::string::npos);
  }
  CHECK(store->serial() == serial);

  // Tokens deleted out of band cost one GetApiToken each, which finds them gone.
  for (const char* key : {"t00010", "t01234", "t02500"})
    REQUIRE(ws.control().delete_token(store->resource(key)->value().id));
  ws.control().reset_requests();
  result = ws.tokend({"plan", "--detailed-exitcode"});
  INFO(result.err);
  CHECK(result.exit_code == 2);
  CHECK_THAT(result.out, Catch::Contains("Plan: 3 to add, 0 to change, 0 to destroy"));
  const tokend::testing::RequestStats after = ws.control().requests();
  CHECK(after.count("ListApiTokens") == 3);
  CHECK(after.count("GetApiToken", 404) == 3);
  CHECK(after.total == 6);
}
