// Listings that do not show every token — pages shifting under a listing,
// an API misreporting totalCount — never make astro-tokend re-create a
// token: a managed token a listing leaves out is looked up by id, and only a
// 404 makes it "deleted outside". Runs the real binary against astro-api-sim
// behind the project's fault-injecting proxy.
#include <catch2/catch.hpp>
#include <map>

#include "cli/fixture.h"
#include "support/fault_proxy.h"

using namespace tokend;
using namespace tokend::testing;

namespace {

// Names held by more than one simulator token, or "".
std::string duplicate_names(const SimControl& control) {
  std::map<std::string, int> by_name;
  for (const auto& token : control.tokens()) ++by_name[token.name];
  std::string out;
  for (const auto& [name, count] : by_name)
    if (count > 1) out += name + " x" + std::to_string(count) + "\n";
  return out;
}

}  // namespace

TEST_CASE("tokens deleted out of band between listing pages make no duplicate and no drift",
          "[integration][listing]") {
  CliWorkspace ws;
  // Three unmanaged tokens, the oldest of the organization: the first page
  // of a listing sorted by createdAt holds them.
  std::vector<std::string> unmanaged;
  for (int i = 0; i < 3; ++i) {
    astro::ApiToken token =
        create_out_of_band(ws.control(), workspace_token("u", "unmanaged " + std::to_string(i)));
    sim::TokenPatch older;
    older.created_at = token.created_at - std::chrono::hours(24 + i);
    ws.control().patch_token(token.id, older);
    unmanaged.push_back(token.id);
  }
  seed_managed_fleet(ws, 1200, 4);
  REQUIRE(ws.control().tokens().size() == 1203);

  FaultProxy proxy(ws.sim().base_url());
  ws.use_api_url(proxy.url());
  // Once the first page was taken, the three unmanaged tokens are deleted:
  // the second page starts three tokens later than the client asks for.
  SimControl control = ws.control();
  proxy.set_rules({after_answer(token_listing(ws.sim().org_id(), 1), [control, unmanaged] {
    for (const std::string& id : unmanaged) control.delete_token(id);
  })});
  ws.control().reset_requests();

  ProcessResult applied = ws.tokend({"apply", "--auto-approve"});
  INFO(applied.out << applied.err);
  REQUIRE(applied.exit_code == 0);
  CHECK_THAT(applied.out, Catch::Contains("No changes. Your tokens match the configuration."));
  CHECK_THAT(applied.out, !Catch::Contains("has been deleted"));
  CHECK(ws.control().tokens().size() == 1200);
  CHECK(duplicate_names(ws.control()) == "");

  // The hook did run between the pages, and the three managed tokens the
  // second page skipped were each looked up once.
  REQUIRE(proxy.requests().size() >= 2);
  CHECK(proxy.requests()[0].faults == std::vector<ProxyFault>{ProxyFault::AfterAnswer});
  const RequestStats stats = ws.control().requests();
  CHECK(stats.count("ListApiTokens") == 2);
  CHECK(stats.count("GetApiToken") == 3);
  CHECK(stats.count("CreateApiToken") == 0);
  CHECK(stats.count("DeleteApiToken") == 0);
}

TEST_CASE("a listing that lies totalCount 1 with one token per page re-creates nothing",
          "[integration][listing]") {
  CliWorkspace ws;
  seed_managed_fleet(ws, 20, 2);
  FaultProxy proxy(ws.sim().base_url());
  ws.use_api_url(proxy.url());
  proxy.set_rules({short_pages(token_listing(ws.sim().org_id()), 1),
                   lie_total_count(token_listing(ws.sim().org_id()), 1)});
  ws.control().reset_requests();

  ProcessResult plan = ws.tokend({"plan", "--detailed-exitcode"});
  INFO(plan.out << plan.err);
  CHECK(plan.exit_code == 0);
  CHECK(plan.out == "No changes. Your tokens match the configuration.\n");

  ProcessResult applied = ws.tokend({"apply", "--auto-approve"});
  INFO(applied.out << applied.err);
  REQUIRE(applied.exit_code == 0);
  CHECK_THAT(applied.out, Catch::Contains("No changes."));
  CHECK(ws.control().tokens().size() == 20);
  CHECK(duplicate_names(ws.control()) == "");
  const RequestStats stats = ws.control().requests();
  CHECK(stats.count("ListApiTokens") == 2);  // one page each: the lie ends the listing
  CHECK(stats.count("GetApiToken") == 2 * 19);
  CHECK(stats.count("CreateApiToken") == 0);
}

TEST_CASE("a managed token deleted out of band is re-created once its GET answers 404",
          "[integration][listing]") {
  CliWorkspace ws;
  seed_managed_fleet(ws, 20, 2);
  FaultProxy proxy(ws.sim().base_url());
  ws.use_api_url(proxy.url());
  proxy.set_rules({short_pages(token_listing(ws.sim().org_id()), 1),
                   lie_total_count(token_listing(ws.sim().org_id()), 1)});
  const std::string gone = ws.open_state()->resource("t00007")->value().id;
  REQUIRE(ws.control().delete_token(gone));

  ProcessResult applied = ws.tokend({"apply", "--auto-approve"});
  INFO(applied.out << applied.err);
  REQUIRE(applied.exit_code == 0);
  CHECK_THAT(applied.out, Catch::Contains("# astro_api_token.t00007 has been deleted"));
  CHECK_THAT(applied.out, Catch::Contains("Plan: 1 to add, 0 to change, 0 to destroy"));
  CHECK(ws.control().tokens().size() == 20);
  CHECK(duplicate_names(ws.control()) == "");
}
