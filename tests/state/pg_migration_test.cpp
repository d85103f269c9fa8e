// The PostgreSQL migrations (schema/postgres/): embedded exactly, one for
// each SQLite migration, and an older database upgrades keeping its data.
#include <catch2/catch.hpp>
#include <filesystem>

#include "state/migrations.h"
#include "state/pg_store.h"
#include "support/postgres.h"
#include "support/process.h"

using tokend::EntityType;
using tokend::ErrorKind;
using tokend::Timestamp;
using tokend::state::Migration;
using tokend::state::PgStore;
using tokend::state::postgres_migrations;
using tokend::state::ResourceRecord;
using tokend::state::schema_migrations;
using tokend::testing::database_of;
using tokend::testing::shared_postgres;

namespace {

Timestamp at(int64_t seconds) { return Timestamp{std::chrono::seconds{seconds}}; }

std::vector<std::filesystem::path> sql_files(const std::string& dir) {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".sql") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// A database at schema version `version`, made with the raw migrations only.
std::string database_at_version(int version) {
  const std::string dsn = shared_postgres().create_database();
  std::string script =
      "BEGIN; CREATE TABLE tokend_schema (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER "
      "NOT NULL); INSERT INTO tokend_schema VALUES (1, " +
      std::to_string(version) + ");";
  for (const Migration& migration : postgres_migrations()) {
    if (migration.version > version) break;
    script += std::string(migration.sql) + ";";
  }
  shared_postgres().query(database_of(dsn), script + "COMMIT;");
  return dsn;
}

}  // namespace

TEST_CASE(
    "the embedded PostgreSQL migrations are the files in schema/postgres - one per SQLite "
    "migration",
    "[state][postgres]") {
  const std::string source = TOKEND_SOURCE_DIR;
  auto files = sql_files(source + "/schema/postgres");
  auto sqlite_files = sql_files(source + "/schema");
  auto migrations = postgres_migrations();
  REQUIRE(migrations.size() == files.size());
  REQUIRE(files.size() == sqlite_files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    INFO(files[i]);
    CHECK(migrations[i].version == static_cast<int>(i) + 1);
    CHECK(migrations[i].file_name == files[i].filename().string());
    CHECK(files[i].filename() == sqlite_files[i].filename());
    CHECK(migrations[i].sql == tokend::testing::read_file(files[i].string()));
  }
  CHECK(schema_migrations().size() == migrations.size());
}

TEST_CASE("a version 1 PostgreSQL database is upgraded and keeps its data", "[state][postgres]") {
  const std::string dsn = database_at_version(1);
  const std::string db = database_of(dsn);
  shared_postgres().query(
      db,
      "UPDATE meta SET serial = 41;"
      "INSERT INTO resources (key, id, name, description, type, role, expiry_period_in_days, "
      "short_token, created_at, updated_at, start_at, end_at, sink_path, sink_sha256) VALUES "
      "('ci', 'cltoken1', 'CI — 東京', 'deploys', 'WORKSPACE', 'WORKSPACE_OPERATOR', 90, "
      "'abc', 1669091832, 1669091900, 1669091833, 1676867833, '/run/tokens/ci', 'f00d'), "
      "('forever', 'cltoken2', 'forever', '', 'ORGANIZATION', 'ORGANIZATION_MEMBER', NULL, "
      "'def', 10, 20, 30, NULL, '', '');"
      "INSERT INTO resource_roles VALUES "
      "('ci', 'WORKSPACE_OPERATOR', 'clx42sxw501gl01o0gjenthnh', 'WORKSPACE'), "
      "('ci', 'DEPLOYMENT_ADMIN', 'clyn6kxud003x01mtxmccegnh', 'DEPLOYMENT');"
      "INSERT INTO intents (key, kind, token_id, name, description, type, role, "
      "expiry_period_in_days, sink_path, started_at) VALUES "
      "('new', 'create', '', 'new', 'd', 'ORGANIZATION', 'ORGANIZATION_MEMBER', 30, '/run/n', 5);"
      "INSERT INTO intent_roles VALUES (1, 'ORGANIZATION_MEMBER', 'org1', 'ORGANIZATION');"
      "INSERT INTO runs (trigger, command, started_at, finished_at, to_add, to_change, "
      "to_destroy, to_rotate, failed, api_calls, duration_seconds, result, message) VALUES "
      "('timer', 'run', 100, 102, 1, 0, 0, 0, 0, 3, 1.5, 'ok', '');"
      "INSERT INTO run_actions VALUES (1, 1, 'astro_api_token.ci', 'create', 1, '', 0.5);");
  const std::string lineage = shared_postgres().query(db, "SELECT lineage FROM meta");

  auto opened = PgStore::open(dsn);
  INFO((opened.ok() ? std::string() : opened.error().describe()));
  REQUIRE(opened.ok());
  auto& store = *opened;
  const int latest = postgres_migrations().back().version;
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
  ci.rotate_pending = false;  // added by 002 with its default

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
  CHECK(intents->front().attrs.roles ==
        tokend::RoleSet{{"ORGANIZATION_MEMBER", "org1", EntityType::Organization}});
  auto runs = store->runs(0);
  REQUIRE(runs.ok());
  REQUIRE(runs->size() == 1);
  CHECK(runs->front().duration_seconds == 1.5);
  REQUIRE(runs->front().actions.size() == 1);

  // The new column is usable, and the upgrade is not applied twice.
  ci.rotate_pending = true;
  REQUIRE(store->record_outcome({"ci", ci, std::nullopt}).ok());
  auto reopened = PgStore::open(dsn);
  REQUIRE(reopened.ok());
  auto again = (*reopened)->resource("ci");
  REQUIRE(again.ok());
  REQUIRE(again->has_value());
  CHECK((*again)->rotate_pending);
  CHECK(shared_postgres().query(db, "SELECT version FROM tokend_schema") == std::to_string(latest));
  CHECK(shared_postgres().query(db,
                                "SELECT count(*) FROM pg_indexes WHERE indexname = "
                                "'intents_by_key'") == "1");
}

TEST_CASE(
    "a PostgreSQL database from before the organization binding is upgraded - keeps its data - "
    "and records no organization until bound",
    "[state][postgres]") {
  int binding = 0;
  for (const Migration& migration : postgres_migrations())
    if (migration.file_name.find("_organization") != std::string_view::npos)
      binding = migration.version;
  REQUIRE(binding > 1);
  const std::string dsn = database_at_version(binding - 1);
  const std::string db = database_of(dsn);
  shared_postgres().query(
      db,
      "UPDATE meta SET serial = 7;"
      "INSERT INTO resources (key, id, name, description, type, role, expiry_period_in_days, "
      "short_token, created_at, updated_at, start_at, end_at, sink_path, sink_sha256, "
      "rotate_pending, delivery_pending) VALUES "
      "('ci', 'cltoken1', 'ci', 'deploys', 'ORGANIZATION', 'ORGANIZATION_MEMBER', 30, "
      "'abc', 100, 200, 100, 2592100, '/run/tokens/ci', 'f00d', 0, 1);"
      "INSERT INTO resource_roles VALUES ('ci', 'ORGANIZATION_MEMBER', 'clorg1', "
      "'ORGANIZATION');");
  const std::string lineage = shared_postgres().query(db, "SELECT lineage FROM meta");

  auto opened = PgStore::open(dsn);
  INFO((opened.ok() ? std::string() : opened.error().describe()));
  REQUIRE(opened.ok());
  auto& store = *opened;
  CHECK(store->schema_version() == postgres_migrations().back().version);
  CHECK(store->lineage() == lineage);
  CHECK(store->serial() == 7);
  auto rows = store->resources();
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == 1);
  CHECK(rows->front().id == "cltoken1");
  CHECK(rows->front().delivery_pending);
  CHECK(rows->front().attrs.roles ==
        tokend::RoleSet{{"ORGANIZATION_MEMBER", "clorg1", EntityType::Organization}});
  auto none = store->organization_id();
  REQUIRE(none.ok());
  CHECK(none->empty());

  auto bound = store->bind_organization("clorg1");
  REQUIRE(bound.ok());
  CHECK(*bound);
  auto reopened = PgStore::open(dsn);
  REQUIRE(reopened.ok());
  auto kept = (*reopened)->organization_id();
  REQUIRE(kept.ok());
  CHECK(*kept == "clorg1");
  CHECK((*reopened)->serial() == 7);
}

TEST_CASE(
    "a PostgreSQL database from before intent windows keeps its pending intents - settled "
    "by any listing",
    "[state][postgres]") {
  int windows = 0;
  for (const Migration& migration : postgres_migrations())
    if (migration.file_name.find("_intent_windows") != std::string_view::npos)
      windows = migration.version;
  REQUIRE(windows > 1);
  const std::string dsn = database_at_version(windows - 1);
  shared_postgres().query(
      database_of(dsn),
      "INSERT INTO intents (key, kind, token_id, name, description, type, role, "
      "expiry_period_in_days, sink_path, started_at) VALUES "
      "('new', 'create', '', 'new', 'd', 'ORGANIZATION', 'ORGANIZATION_MEMBER', 30, '/run/n', 5);"
      "INSERT INTO intent_roles VALUES (1, 'ORGANIZATION_MEMBER', 'org1', 'ORGANIZATION');");
  auto opened = PgStore::open(dsn);
  INFO((opened.ok() ? std::string() : opened.error().describe()));
  REQUIRE(opened.ok());
  auto& store = *opened;
  auto pending = store->pending_intents();
  REQUIRE(pending.ok());
  REQUIRE(pending->size() == 1);
  CHECK(pending->front().settle_after == Timestamp{});
  CHECK(pending->front().attrs.roles ==
        tokend::RoleSet{{"ORGANIZATION_MEMBER", "org1", EntityType::Organization}});
  REQUIRE(store->resolve_intent(pending->front().id).ok());
  CHECK(store->pending_intents().value().empty());
  auto recent = store->recent_creates();
  REQUIRE(recent.ok());
  REQUIRE(recent->size() == 1);
  CHECK(recent->front().key == "new");
  CHECK(recent->front().made_token_id.empty());
}

TEST_CASE("a PostgreSQL database newer than this binary knows is refused and left alone",
          "[state][postgres]") {
  const int future = postgres_migrations().back().version + 1;
  const std::string dsn = database_at_version(future - 1);
  shared_postgres().query(database_of(dsn),
                          "UPDATE tokend_schema SET version = " + std::to_string(future));
  auto store = PgStore::open(dsn);
  REQUIRE_FALSE(store.ok());
  CHECK(store.error().kind == ErrorKind::Invalid);
  CHECK(store.error().message == "state database has schema version " + std::to_string(future) +
                                     ", newer than this astro-tokend knows (" +
                                     std::to_string(future - 1) + "); use a newer astro-tokend");
}

TEST_CASE("a PostgreSQL migration that fails is rolled back whole", "[state][postgres]") {
  const std::string dsn = database_at_version(1);
  // An object in the way of 002's index: its ALTER TABLE succeeds, its
  // CREATE INDEX fails.
  shared_postgres().query(database_of(dsn), "CREATE TABLE intents_by_key (x INTEGER)");
  auto store = PgStore::open(dsn);
  REQUIRE_FALSE(store.ok());
  CHECK_THAT(
      store.error().message,
      Catch::StartsWith("state database: applying migration postgres/002_rotate_pending.sql: "));
  CHECK(shared_postgres().query(database_of(dsn), "SELECT version FROM tokend_schema") == "1");
  CHECK(shared_postgres().query(database_of(dsn),
                                "SELECT count(*) FROM information_schema.columns WHERE "
                                "table_name = 'resources' AND column_name = 'rotate_pending'") ==
        "0");
}

TEST_CASE("a PostgreSQL database holding other tables is refused and left alone",
          "[state][postgres]") {
  const std::string dsn = shared_postgres().create_database();
  shared_postgres().query(database_of(dsn),
                          "CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('keep me')");
  auto store = PgStore::open(dsn);
  REQUIRE_FALSE(store.ok());
  CHECK(store.error().kind == ErrorKind::Invalid);
  CHECK(store.error().message ==
        "state database holds tables that astro-tokend did not create; give astro-tokend a "
        "database of its own");
  CHECK(shared_postgres().query(
            database_of(dsn), "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == "1");
}

TEST_CASE("a PostgreSQL server that cannot be reached is Unavailable - and a malformed dsn Invalid",
          "[state][postgres]") {
  tokend::testing::TempDir dir;
  auto away = PgStore::open("host=" + dir.path() + " dbname=none connect_timeout=2");
  REQUIRE_FALSE(away.ok());
  CHECK(away.error().kind == ErrorKind::Unavailable);
  CHECK_THAT(away.error().message, Catch::StartsWith("state database: connecting: cannot connect"));
  auto malformed = PgStore::open("host=x dbname");
  REQUIRE_FALSE(malformed.ok());
  CHECK(malformed.error().kind == ErrorKind::Invalid);
}

TEST_CASE(
    "a version 5 PostgreSQL database gains DAG roles - kind and last_rotated_at - keeping its "
    "data",
    "[state][postgres]") {
  const std::string dsn = database_at_version(5);
  const std::string db = database_of(dsn);
  shared_postgres().query(
      db,
      "INSERT INTO resources (key, id, name, description, type, role, expiry_period_in_days, "
      "short_token, created_at, updated_at, start_at, end_at, sink_path, sink_sha256, "
      "rotate_pending, delivery_pending) VALUES "
      "('dep', 'cltoken1', 'dep', 'd', 'DEPLOYMENT', 'DEPLOYMENT_ADMIN', 30, 'abc', 10, 20, 30, "
      "40, '/run/tokens/dep', 'f00d', 1, 1);"
      "INSERT INTO resource_roles VALUES "
      "('dep', 'DEPLOYMENT_ADMIN', 'clyn6kxud003x01mtxmccegnh', 'DEPLOYMENT');"
      "INSERT INTO intents (key, kind, token_id, name, description, type, role, "
      "expiry_period_in_days, sink_path, started_at) VALUES "
      "('dep', 'rotate', 'cltoken1', 'dep', 'd', 'DEPLOYMENT', 'DEPLOYMENT_ADMIN', 30, "
      "'/run/tokens/dep', 5);"
      "INSERT INTO intent_roles VALUES "
      "(1, 'DEPLOYMENT_ADMIN', 'clyn6kxud003x01mtxmccegnh', 'DEPLOYMENT');");

  auto opened = PgStore::open(dsn);
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
  auto intents = store->pending_intents();
  REQUIRE(intents.ok());
  REQUIRE(intents->size() == 1);
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
  REQUIRE(store->journal_intent(create).ok());

  auto reopened = PgStore::open(dsn);
  REQUIRE(reopened.ok());
  auto again = (*reopened)->resource("dep");
  REQUIRE(again.ok());
  REQUIRE(again->has_value());
  CHECK(**again == dep);
  auto pending = (*reopened)->pending_intents();
  REQUIRE(pending.ok());
  REQUIRE(pending->size() == 1);
  CHECK(pending->front().attrs == dep.attrs);

  // The schema itself refuses a DAG role without its deployment, and a
  // deployment_id on any other role.
  CHECK(shared_postgres().query(
            db,
            "SELECT count(*) FROM pg_constraint WHERE conname IN "
            "('resource_roles_deployment_id_check', 'intent_roles_deployment_id_check')") == "2");
  CHECK(shared_postgres().query(db,
                                "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE "
                                "conname = 'resource_roles_pkey'") ==
        "PRIMARY KEY (resource_key, role, entity_id, entity_type, deployment_id)");
  CHECK_THROWS(shared_postgres().query(
      db,
      "INSERT INTO resource_roles (resource_key, role, entity_id, entity_type) VALUES "
      "('dep', 'DAG_VIEWER', 'other', 'DAG')"));
  CHECK_THROWS(shared_postgres().query(
      db, "INSERT INTO resource_roles VALUES ('dep', 'WORKSPACE_OWNER', 'ws', 'WORKSPACE', 'd1')"));
}
