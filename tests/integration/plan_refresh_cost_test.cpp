// What a refresh costs: a plan over 2,500 managed tokens lists them in pages
// of 1,000 (3 ListApiTokens) and never reads a token on its own.
#include <catch2/catch.hpp>

#include "cli/fixture.h"

TEST_CASE("a plan over 2500 managed tokens sends 3 ListApiTokens and no GetApiToken",
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
  for (const auto& request : stats.requests)
    if (request.operation == "ListApiTokens")
      CHECK(request.query.find("limit=1000") != std::string::npos);
  CHECK(store->serial() == serial);
}
