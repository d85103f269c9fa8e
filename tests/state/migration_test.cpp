#include <SQLiteCpp/SQLiteCpp.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "state/migrations.h"
#include "state/store.h"
#include "support/process.h"

using tokend::EntityType;
using tokend::ErrorKind;
using tokend::Timestamp;
using tokend::state::Migration;
using tokend::state::ResourceRecord;
using tokend::state::schema_migrations;
using tokend::state::StateStore;
using tokend::testing::TempDir;

namespace {

Timestamp at(int64_t seconds) { return Timestamp{std::chrono::seconds{seconds}}; }

// A database at schema version `version`, made with the raw migrations only.
void create_database_at_version(const std::string& path, int version) {
  SQLite::Database raw(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  for (const Migration& migration : schema_migrations()) {
    if (migration.version > version) break;
    SQLite::Transaction tx(raw);
    raw.exec(std::string(migration.sql));
    raw.exec("PRAGMA user_version = " + std::to_string(migration.version));
    tx.commit();
  }
}

}  // namespace

TEST_CASE("the embedded migrations are exactly the files in schema/", "[state]") {
  std::vector<std::filesystem::path> files;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(TOKEND_SOURCE_DIR) + "/schema")) {
    if (entry.path().extension() == ".sql") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  auto migrations = schema_migrations();
  REQUIRE(migrations.size() == files.size());
  REQUIRE(migrations.size() >= 2);
  for (size_t i = 0; i < files.size(); ++i) {
    INFO(files[i]);
    CHECK(migrations[i].version == static_cast<int>(i) + 1);
    CHECK(migrations[i].file_name == files[i].filename().string());
    CHECK(migrations[i].sql == tokend::testing::read_file(files[i].string()));
  }
}

TEST_CASE("a version 1 database is upgraded and keeps its data", "[state]") {
  TempDir dir;
  const std::string path = dir.file("state.db");
  std::string lineage;
  {
    create_database_at_version(path, 1);
    SQLite::Database raw(path, SQLite::OPEN_READWRITE);
    REQUIRE(raw.execAndGet("PRAGMA user_version").getInt() == 1);
    SQLite::Transaction tx(raw);
    raw.exec("UPDATE meta SET serial = 41");
    raw.exec(
        "INSERT INTO resources (key, id, name, description, type, role, expiry_period_in_days, "
        "short_token, created_at, updated_at, start_at, end_at, sink_path, sink_sha256) VALUES "
        "('ci', 'cltoken1', 'CI — 東京', 'deploys', 'WORKSPACE', 'WORKSPACE_OPERATOR', 90, "
        "'abc', 1669091832, 1669091900, 1669091833, 1676867833, '/run/tokens/ci', 'f00d'), "
        "('forever', 'cltoken2', 'forever', '', 'ORGANIZATION', 'ORGANIZATION_MEMBER', NULL, "
        "'def', 10, 20, 30, NULL, '', '')");
    raw.exec(
        "INSERT INTO resource_roles VALUES "
        "('ci', 'WORKSPACE_OPERATOR', 'clx42sxw501gl01o0gjenthnh', 'WORKSPACE'), "
        "('ci', 'DEPLOYMENT_ADMIN', 'clyn6kxud003x01mtxmccegnh', 'DEPLOYMENT')");
    raw.exec(
        "INSERT INTO intents (key, kind, token_id, name, description, type, role, "
        "expiry_period_in_days, sink_path, started_at) VALUES "
        "('new', 'create', '', 'new', 'd', 'ORGANIZATION', 'ORGANIZATION_MEMBER', 30, '/run/n', "
        "5)");
    raw.exec("INSERT INTO intent_roles VALUES (1, 'ORGANIZATION_MEMBER', 'org1', 'ORGANIZATION')");
    raw.exec(
        "INSERT INTO runs (trigger, command, started_at, finished_at, to_add, to_change, "
        "to_destroy, to_rotate, failed, api_calls, duration_seconds, result, message) VALUES "
        "('timer', 'run', 100, 102, 1, 0, 0, 0, 0, 3, 1.5, 'ok', '')");
    raw.exec("INSERT INTO run_actions VALUES (1, 1, 'astro_api_token.ci', 'create', 1, '', 0.5)");
    tx.commit();
    lineage = raw.execAndGet("SELECT lineage FROM meta").getString();
  }

  auto opened = StateStore::open(path);
  INFO((opened.ok() ? std::string() : opened.error().describe()));
  REQUIRE(opened.ok());
  auto& store = *opened;
  const int latest = schema_migrations().back().version;
  CHECK(store->schema_version() == latest);
  CHECK(store->lineage() == lineage);
  CHECK(store->serial() == 41);

  ResourceRecord ci;
  ci.key = "ci";
  ci.id = "cltoken1";
  ci.attrs.name = "CI — 東京";
  ci.attrs.description = "deploys";
  ci.attrs.type = EntityType::Workspace;
  ci.attrs.role = "WORKSPACE_OPERATOR";
  ci.attrs.roles = tokend::normalize_roles(
      {{"WORKSPACE_OPERATOR", "clx42sxw501gl01o0gjenthnh", EntityType::Workspace},
       {"DEPLOYMENT_ADMIN", "clyn6kxud003x01mtxmccegnh", EntityType::Deployment}});
  ci.attrs.expiry_period_in_days = 90;
  ci.short_token = "abc";
  ci.created_at = at(1669091832);
  ci.updated_at = at(1669091900);
  ci.start_at = at(1669091833);
  ci.end_at = at(1676867833);
  ci.sink_path = "/run/tokens/ci";
  ci.sink_sha256 = "f00d";
  ci.rotate_pending = false;    // added by 002 with its default
  ci.delivery_pending = false;  // added by 003 with its default

  ResourceRecord forever;
  forever.key = "forever";
  forever.id = "cltoken2";
  forever.attrs.name = "forever";
  forever.attrs.role = "ORGANIZATION_MEMBER";
  forever.short_token = "def";
  forever.created_at = at(10);
  forever.updated_at = at(20);
  forever.start_at = at(30);

  auto resources = store->resources();
  REQUIRE(resources.ok());
  CHECK(*resources == std::vector<ResourceRecord>{ci, forever});

  auto intents = store->pending_intents();
  REQUIRE(intents.ok());
  REQUIRE(intents->size() == 1);
  CHECK(intents->front().key == "new");
  CHECK(intents->front().attrs.roles ==
        tokend::RoleSet{{"ORGANIZATION_MEMBER", "org1", EntityType::Organization}});

  auto runs = store->runs(0);
  REQUIRE(runs.ok());
  REQUIRE(runs->size() == 1);
  CHECK(runs->front().api_calls == 3);
  REQUIRE(runs->front().actions.size() == 1);
  CHECK(runs->front().actions.front().address == "astro_api_token.ci");

  // The new columns are usable, and the upgrade is not applied twice.
  ci.rotate_pending = true;
  ci.delivery_pending = true;
  auto status = store->record_outcome({"ci", ci, std::nullopt});
  REQUIRE(status.ok());
  opened = StateStore::open(path);
  REQUIRE(opened.ok());
  auto again = (*opened)->resource("ci");
  REQUIRE(again.ok());
  REQUIRE(again->has_value());
  CHECK((*again)->rotate_pending);
  CHECK((*again)->delivery_pending);
  SQLite::Database raw(path, SQLite::OPEN_READONLY);
  CHECK(raw.execAndGet("PRAGMA user_version").getInt() == latest);
  CHECK(
      raw.execAndGet("SELECT count(*) FROM sqlite_master WHERE name = 'intents_by_key'").getInt() ==
      1);
}

// The version of the migration whose file name contains `words`.
int version_of(std::string_view words) {
  for (const Migration& migration : schema_migrations())
    if (migration.file_name.find(words) != std::string_view::npos) return migration.version;
  FAIL("no migration named like " << words);
  return 0;
}

TEST_CASE(
    "a database from before the organization binding is upgraded - keeps its data - and "
    "records no organization until bound",
    "[state]") {
  TempDir dir;
  const std::string path = dir.file("state.db");
  const int before = version_of("_organization") - 1;
  std::string lineage;
  {
    create_database_at_version(path, before);
    SQLite::Database raw(path, SQLite::OPEN_READWRITE);
    REQUIRE(raw.execAndGet("PRAGMA user_version").getInt() == before);
    SQLite::Transaction tx(raw);
    raw.exec("UPDATE meta SET serial = 7");
    raw.exec(
        "INSERT INTO resources (key, id, name, description, type, role, expiry_period_in_days, "
        "short_token, created_at, updated_at, start_at, end_at, sink_path, sink_sha256, "
        "rotate_pending, delivery_pending) VALUES "
        "('ci', 'cltoken1', 'ci', 'deploys', 'ORGANIZATION', 'ORGANIZATION_MEMBER', 30, "
        "'abc', 100, 200, 100, 2592100, '/run/tokens/ci', 'f00d', 0, 1)");
    raw.exec(
        "INSERT INTO resource_roles VALUES ('ci', 'ORGANIZATION_MEMBER', 'clorg1', "
        "'ORGANIZATION')");
    tx.commit();
    lineage = raw.execAndGet("SELECT lineage FROM meta").getString();
  }

  auto opened = StateStore::open(path);
  INFO((opened.ok() ? std::string() : opened.error().describe()));
  REQUIRE(opened.ok());
  auto& store = *opened;
  CHECK(store->schema_version() == schema_migrations().back().version);
  CHECK(store->lineage() == lineage);
  CHECK(store->serial() == 7);
  auto rows = store->resources();
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == 1);
  CHECK(rows->front().id == "cltoken1");
  CHECK(rows->front().sink_sha256 == "f00d");
  CHECK(rows->front().delivery_pending);
  CHECK(rows->front().attrs.roles ==
        tokend::RoleSet{{"ORGANIZATION_MEMBER", "clorg1", EntityType::Organization}});
  auto none = store->organization_id();
  REQUIRE(none.ok());
  CHECK(none->empty());

  auto bound = store->bind_organization("clorg1");
  REQUIRE(bound.ok());
  CHECK(*bound);
  auto reopened = StateStore::open(path);
  REQUIRE(reopened.ok());
  auto kept = (*reopened)->organization_id();
  REQUIRE(kept.ok());
  CHECK(*kept == "clorg1");
  CHECK((*reopened)->serial() == 7);
}

TEST_CASE(
    "a database from before intent windows keeps its pending intents - settled by any "
    "listing",
    "[state]") {
  TempDir dir;
  const std::string path = dir.file("state.db");
  const int before = version_of("_intent_windows") - 1;
  {
    create_database_at_version(path, before);
    SQLite::Database raw(path, SQLite::OPEN_READWRITE);
    raw.exec(
        "INSERT INTO intents (key, kind, token_id, name, description, type, role, "
        "expiry_period_in_days, sink_path, started_at) VALUES "
        "('new', 'create', '', 'new', 'd', 'ORGANIZATION', 'ORGANIZATION_MEMBER', 30, '/run/n', "
        "5), ('old', 'rotate', 'cltoken9', 'old', '', 'ORGANIZATION', 'ORGANIZATION_MEMBER', "
        "NULL, '/run/o', 6)");
    raw.exec("INSERT INTO intent_roles VALUES (1, 'ORGANIZATION_MEMBER', 'org1', 'ORGANIZATION')");
  }
  auto opened = StateStore::open(path);
  INFO((opened.ok() ? std::string() : opened.error().describe()));
  REQUIRE(opened.ok());
  auto& store = *opened;
  auto pending = store->pending_intents();
  REQUIRE(pending.ok());
  REQUIRE(pending->size() == 2);
  CHECK(pending->at(0).key == "new");
  CHECK(pending->at(0).settle_after == Timestamp{});
  CHECK_FALSE(pending->at(0).resolved);
  CHECK(pending->at(0).attrs.roles ==
        tokend::RoleSet{{"ORGANIZATION_MEMBER", "org1", EntityType::Organization}});
  CHECK(pending->at(1).token_id == "cltoken9");
  CHECK(store->recent_creates().value().empty());

  // Resolving the create keeps it, with the token it made; the rotation goes.
  ResourceRecord made;
  made.key = "new";
  made.id = "cltoken1";
  made.attrs.name = "new";
  made.attrs.role = "ORGANIZATION_MEMBER";
  REQUIRE(store->record_outcome({"new", made, pending->at(0).id}).ok());
  REQUIRE(store->resolve_intent(pending->at(1).id).ok());
  CHECK(store->pending_intents().value().empty());
  auto recent = store->recent_creates();
  REQUIRE(recent.ok());
  REQUIRE(recent->size() == 1);
  CHECK(recent->front().made_token_id == "cltoken1");
  CHECK(recent->front().resolved);
}

TEST_CASE("a database newer than this binary knows is refused and left alone", "[state]") {
  TempDir dir;
  const std::string path = dir.file("state.db");
  const int future = schema_migrations().back().version + 1;
  {
    create_database_at_version(path, future);
    SQLite::Database raw(path, SQLite::OPEN_READWRITE);
    raw.exec("PRAGMA user_version = " + std::to_string(future));
  }
  auto store = StateStore::open(path);
  REQUIRE_FALSE(store.ok());
  CHECK(store.error().kind == ErrorKind::Invalid);
  CHECK(store.error().message == "state database " + path + " has schema version " +
                                     std::to_string(future) +
                                     ", newer than this astro-tokend knows (" +
                                     std::to_string(future - 1) + "); use a newer astro-tokend");
  SQLite::Database raw(path, SQLite::OPEN_READONLY);
  CHECK(raw.execAndGet("PRAGMA user_version").getInt() == future);
  CHECK(raw.execAndGet("PRAGMA journal_mode").getString() == "delete");
}

TEST_CASE("a migration that fails is rolled back whole", "[state]") {
  TempDir dir;
  const std::string path = dir.file("state.db");
  create_database_at_version(path, 1);
  {
    // An object in the way of 002's index: its ALTER TABLE succeeds, its
    // CREATE INDEX fails.
    SQLite::Database raw(path, SQLite::OPEN_READWRITE);
    raw.exec("CREATE TABLE intents_by_key (x INTEGER)");
  }
  auto store = StateStore::open(path);
  REQUIRE_FALSE(store.ok());
  CHECK_THAT(
      store.error().message,
      Catch::StartsWith("state database: applying migration 002_rotate_pending.sql to " + path));
  SQLite::Database raw(path, SQLite::OPEN_READONLY);
  CHECK(raw.execAndGet("PRAGMA user_version").getInt() == 1);
  CHECK(raw.execAndGet("SELECT count(*) FROM pragma_table_info('resources') "
                       "WHERE name = 'rotate_pending'")
            .getInt() == 0);
}

TEST_CASE("an SQLite database that astro-tokend did not create is refused", "[state]") {
  TempDir dir;
  const std::string path = dir.file("other.db");
  {
    SQLite::Database raw(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    raw.exec("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('keep me')");
  }
  auto store = StateStore::open(path);
  REQUIRE_FALSE(store.ok());
  CHECK(store.error().kind == ErrorKind::Invalid);
  CHECK(store.error().message ==
        "state database " + path + " is an SQLite database that astro-tokend did not create");
  SQLite::Database raw(path, SQLite::OPEN_READONLY);
  CHECK(raw.execAndGet("SELECT count(*) FROM sqlite_schema").getInt() == 1);
  CHECK(raw.execAndGet("PRAGMA journal_mode").getString() == "delete");
}

TEST_CASE("a version 5 database gains DAG roles - kind and last_rotated_at - keeping its data",
          "[state]") {
  TempDir dir;
  const std::string path = dir.file("state.db");
  {
    create_database_at_version(path, 5);
    SQLite::Database raw(path, SQLite::OPEN_READWRITE);
    SQLite::Transaction tx(raw);
    raw.exec(
        "INSERT INTO resources (key, id, name, description, type, role, expiry_period_in_days, "
        "short_token, created_at, updated_at, start_at, end_at, sink_path, sink_sha256, "
        "rotate_pending, delivery_pending) VALUES "
        "('dep', 'cltoken1', 'dep', 'd', 'DEPLOYMENT', 'DEPLOYMENT_ADMIN', 30, 'abc', 10, 20, 30, "
        "40, '/run/tokens/dep', 'f00d', 1, 1)");
    raw.exec(
        "INSERT INTO resource_roles VALUES "
        "('dep', 'DEPLOYMENT_ADMIN', 'clyn6kxud003x01mtxmccegnh', 'DEPLOYMENT')");
    raw.exec(
        "INSERT INTO intents (key, kind, token_id, name, description, type, role, "
        "expiry_period_in_days, sink_path, started_at) VALUES "
        "('dep', 'rotate', 'cltoken1', 'dep', 'd', 'DEPLOYMENT', 'DEPLOYMENT_ADMIN', 30, "
        "'/run/tokens/dep', 5)");
    raw.exec(
        "INSERT INTO intent_roles VALUES "
        "(1, 'DEPLOYMENT_ADMIN', 'clyn6kxud003x01mtxmccegnh', 'DEPLOYMENT')");
    tx.commit();
  }

  auto opened = StateStore::open(path);
  INFO((opened.ok() ? std::string() : opened.error().describe()));
  REQUIRE(opened.ok());
  auto& store = *opened;
  CHECK(store->schema_version() == 6);

  ResourceRecord dep;
  dep.key = "dep";
  dep.id = "cltoken1";
  dep.attrs.name = "dep";
  dep.attrs.description = "d";
  dep.attrs.type = EntityType::Deployment;
  dep.attrs.role = "DEPLOYMENT_ADMIN";
  dep.attrs.roles = {{"DEPLOYMENT_ADMIN", "clyn6kxud003x01mtxmccegnh", EntityType::Deployment}};
  dep.attrs.expiry_period_in_days = 30;
  dep.attrs.kind = tokend::TokenKind::Standard;  // added by 006 with its default
  dep.short_token = "abc";
  dep.created_at = at(10);
  dep.updated_at = at(20);
  dep.start_at = at(30);
  dep.end_at = at(40);
  dep.sink_path = "/run/tokens/dep";
  dep.sink_sha256 = "f00d";
  dep.rotate_pending = true;
  dep.delivery_pending = true;
  auto resources = store->resources();
  REQUIRE(resources.ok());
  CHECK(*resources == std::vector<ResourceRecord>{dep});
  CHECK_FALSE(resources->front().last_rotated_at.has_value());
  auto intents = store->pending_intents();
  REQUIRE(intents.ok());
  REQUIRE(intents->size() == 1);
  CHECK(intents->front().kind == tokend::state::IntentKind::Rotate);
  CHECK(intents->front().attrs.kind == tokend::TokenKind::Standard);
  CHECK(intents->front().attrs.roles == dep.attrs.roles);

  // DAG and DAG_TAG roles (one DAG id in two deployments), the kind and the
  // rotation time round-trip, in resources and in intents.
  dep.attrs.kind = tokend::TokenKind::DirectAccess;
  dep.last_rotated_at = at(35);
  dep.attrs.roles = tokend::normalize_roles(
      {{"DEPLOYMENT_ADMIN", "clyn6kxud003x01mtxmccegnh", EntityType::Deployment},
       {"DAG_VIEWER", "etl", EntityType::Dag, "clyn6kxud003x01mtxmccegnh"},
       {"DAG_AUTHOR", "etl", EntityType::Dag, "clyn6kxud003x01mtxmcceother"},
       {"DAG_VIEWER", "finance", EntityType::DagTag, "clyn6kxud003x01mtxmccegnh"}});
  REQUIRE(store->record_outcome({"dep", dep, intents->front().id}).ok());
  tokend::state::Intent create;
  create.key = "new";
  create.kind = tokend::state::IntentKind::Create;
  create.attrs = dep.attrs;
  create.sink_path = "/run/tokens/new";
  create.started_at = at(50);
  auto journalled = store->journal_intent(create);
  REQUIRE(journalled.ok());

  opened = StateStore::open(path);
  REQUIRE(opened.ok());
  auto again = (*opened)->resource("dep");
  REQUIRE(again.ok());
  REQUIRE(again->has_value());
  CHECK(**again == dep);
  auto pending = (*opened)->pending_intents();
  REQUIRE(pending.ok());
  REQUIRE(pending->size() == 1);
  CHECK(pending->front().attrs == dep.attrs);

  // The schema itself refuses a DAG role without its deployment, and a
  // deployment_id on any other role.
  SQLite::Database raw(path, SQLite::OPEN_READWRITE);
  CHECK_THROWS(
      raw.exec("INSERT INTO resource_roles (resource_key, role, entity_id, entity_type) VALUES "
               "('dep', 'DAG_VIEWER', 'other', 'DAG')"));
  CHECK_THROWS(raw.exec(
      "INSERT INTO resource_roles VALUES ('dep', 'WORKSPACE_OWNER', 'ws', 'WORKSPACE', 'dep1')"));
  CHECK_THROWS(raw.exec("UPDATE resources SET kind = 'OTHER'"));
  SQLite::Statement orphans(raw, "PRAGMA foreign_key_check");
  CHECK_FALSE(orphans.executeStep());
}
