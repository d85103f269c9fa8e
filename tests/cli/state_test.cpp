// `astro-tokend state list | show | rm`: output, exit codes and the effect on
// the state, through the real binary.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include "cli/fixture.h"
#include "state/sqlite_store.h"

using tokend::testing::CliWorkspace;
using tokend::testing::ProcessResult;

namespace {

const std::string kGoldenDir = std::string(TOKEND_SOURCE_DIR) + "/tests/data/cli";

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A row with fixed values, as apply would have recorded it.
tokend::state::ResourceRecord sample_row(const std::string& key, bool delivered) {
  using tokend::EntityType;
  tokend::state::ResourceRecord row;
  row.key = key;
  row.id = "clm8q7f6q000008lcgyou" + key;
  row.attrs.name = key + " token";
  row.attrs.description = "used by " + key;
  row.attrs.type = EntityType::Workspace;
  row.attrs.role = "WORKSPACE_OWNER";
  row.attrs.roles = tokend::normalize_roles(
      {{"WORKSPACE_OWNER", "clx42sxw501gl01o0gjenthnh", EntityType::Workspace},
       {"DEPLOYMENT_ADMIN", "clyn6kxud003x01mtxmccegnh", EntityType::Deployment}});
  row.attrs.expiry_period_in_days = 90;
  row.short_token = "short-" + key;
  row.created_at = *tokend::parse_rfc3339("2026-02-19T12:00:00Z");
  row.updated_at = *tokend::parse_rfc3339("2026-02-20T08:30:00Z");
  row.start_at = *tokend::parse_rfc3339("2026-02-19T12:00:00Z");
  row.end_at = *tokend::parse_rfc3339("2026-05-20T12:00:00Z");
  row.sink_path = "/var/lib/astro-tokend/tokens/" + key + ".token";
  if (delivered) row.sink_sha256 = tokend::sha256_hex("value-of-" + key);
  return row;
}

void put(tokend::state::StateStore& store, const tokend::state::ResourceRecord& row) {
  REQUIRE(store.record_outcome({row.key, row, std::nullopt}).ok());
}

}  // namespace

TEST_CASE("state list prints every address - sorted - one per line", "[cli][state]") {
  CliWorkspace ws;
  {
    auto store = ws.open_state();
    for (const char* key : {"zeta", "alpha", "mid_one"}) put(*store, sample_row(key, true));
  }
  ProcessResult result = ws.tokend({"state", "list"});
  INFO(result.err);
  CHECK(result.exit_code == 0);
  CHECK(result.out == "astro_api_token.alpha\nastro_api_token.mid_one\nastro_api_token.zeta\n");
  CHECK(result.err.empty());
}

TEST_CASE("state list and show never create a state database", "[cli][state]") {
  CliWorkspace ws;
  ProcessResult list = ws.tokend({"state", "list"});
  CHECK(list.exit_code == 0);
  CHECK(list.out.empty());
  ProcessResult show = ws.tokend({"state", "show", "astro_api_token.alpha"});
  CHECK(show.exit_code == 1);
  CHECK(contains(show.err, "Error: no token astro_api_token.alpha in the state"));
  CHECK_FALSE(std::filesystem::exists(ws.state_path()));
}

TEST_CASE("state show prints every recorded attribute in Terraform's layout", "[cli][state]") {
  CliWorkspace ws;
  {
    auto store = ws.open_state();
    put(*store, sample_row("delivered", true));
    auto imported = sample_row("imported", false);
    imported.end_at.reset();
    imported.attrs.expiry_period_in_days.reset();
    put(*store, imported);
    // A DIRECT_ACCESS deployment token with DAG and DAG_TAG roles, rotated once.
    auto dags = sample_row("dags", true);
    dags.attrs.type = tokend::EntityType::Deployment;
    dags.attrs.role = "DEPLOYMENT_ADMIN";
    dags.attrs.kind = tokend::TokenKind::DirectAccess;
    dags.attrs.roles = tokend::normalize_roles(
        {{"DEPLOYMENT_ADMIN", "clyn6kxud003x01mtxmccegnh", tokend::EntityType::Deployment},
         {"DAG_AUTHOR", "etl_daily", tokend::EntityType::Dag, "clyn6kxud003x01mtxmccegnh"},
         {"DAG_VIEWER", "finance", tokend::EntityType::DagTag, "clyn6kxud003x01mtxmccegnh"}});
    dags.last_rotated_at = *tokend::parse_rfc3339("2026-02-19T12:00:00Z");
    put(*store, dags);
  }
  ProcessResult delivered = ws.tokend({"state", "show", "astro_api_token.delivered"});
  INFO(delivered.err);
  CHECK(delivered.exit_code == 0);
  CHECK(delivered.out == tokend::testing::read_file(kGoldenDir + "/state_show_delivered.txt"));
  CHECK_FALSE(contains(delivered.out, "value-of-"));

  ProcessResult imported = ws.tokend({"state", "show", "astro_api_token.imported"});
  CHECK(imported.exit_code == 0);
  CHECK(imported.out == tokend::testing::read_file(kGoldenDir + "/state_show_imported.txt"));

  ProcessResult dags = ws.tokend({"state", "show", "astro_api_token.dags"});
  CHECK(dags.exit_code == 0);
  CHECK(dags.out == tokend::testing::read_file(kGoldenDir + "/state_show_dag_roles.txt"));

  ProcessResult unknown = ws.tokend({"state", "show", "astro_api_token.nope"});
  CHECK(unknown.exit_code == 1);
  CHECK(unknown.out.empty());
  CHECK(unknown.err ==
        "Error: no token astro_api_token.nope in the state; \"astro-tokend state list\" "
        "shows the addresses\n");

  ProcessResult malformed = ws.tokend({"state", "show", "delivered"});
  CHECK(malformed.exit_code == 1);
  CHECK(contains(malformed.err, "invalid address \"delivered\""));
}

TEST_CASE("state rm removes rows without any API call", "[cli][state]") {
  CliWorkspace ws;
  {
    auto store = ws.open_state();
    for (const char* key : {"a", "b", "c"}) put(*store, sample_row(key, true));
  }
  auto store = ws.open_state();
  const int64_t serial = store->serial();
  ProcessResult result = ws.tokend({"state", "rm", "astro_api_token.c", "astro_api_token.a"});
  INFO(result.err);
  CHECK(result.exit_code == 0);
  CHECK(result.out ==
        "Removed astro_api_token.c\nRemoved astro_api_token.a\n"
        "Successfully removed 2 resource instance(s).\n");
  auto rows = store->resources();
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == 1);
  CHECK(rows->at(0).key == "b");
  CHECK(store->serial() == serial + 1);  // one transaction
  CHECK(ws.control().requests().total == 0);
  CHECK(ws.control().tokens().empty());  // nothing was ever created or deleted remotely
}

TEST_CASE("state rm of an unknown address removes nothing and exits 1", "[cli][state]") {
  CliWorkspace ws;
  auto store = ws.open_state();
  put(*store, sample_row("a", true));
  const int64_t serial = store->serial();

  ProcessResult result = ws.tokend({"state", "rm", "astro_api_token.a", "astro_api_token.nope"});
  CHECK(result.exit_code == 1);
  CHECK(result.out.empty());
  CHECK(result.err ==
        "Error: no token astro_api_token.nope in the state; \"astro-tokend state list\" "
        "shows the addresses\n");
  CHECK(store->serial() == serial);
  CHECK(store->resources()->size() == 1);

  ProcessResult malformed = ws.tokend({"state", "rm", "a"});
  CHECK(malformed.exit_code == 1);
  CHECK(store->resources()->size() == 1);
}

TEST_CASE("state rm fails at once while another process holds the writer lock", "[cli][state]") {
  CliWorkspace ws;
  auto store = ws.open_state();
  put(*store, sample_row("a", true));
  auto lock = tokend::state::WriterLock::acquire(ws.state_path(), "apply");
  REQUIRE(lock.ok());

  ProcessResult result = ws.tokend({"state", "rm", "astro_api_token.a"});
  CHECK(result.exit_code == 1);
  CHECK(contains(result.err, "state is locked by pid"));
  CHECK(contains(result.err, "(apply)"));
  CHECK(store->resources()->size() == 1);
}
