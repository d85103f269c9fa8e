#include "state/store.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sys/stat.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <thread>

#include "state/store_target.h"
#include "support/process.h"

using tokend::EntityType;
using tokend::ErrorKind;
using tokend::Role;
using tokend::Timestamp;
using tokend::state::ActionRecord;
using tokend::state::Intent;
using tokend::state::IntentKind;
using tokend::state::Outcome;
using tokend::state::ResourceRecord;
using tokend::state::RunRecord;
using tokend::state::RunResult;
using tokend::state::StateStore;
using tokend::testing::fresh_store;
using tokend::testing::store_backends;
using tokend::testing::StoreTarget;
using tokend::testing::TempDir;

namespace {

Timestamp at(int64_t seconds) { return Timestamp{std::chrono::seconds{seconds}}; }

std::unique_ptr<StateStore> open_store(const std::string& path) {
  auto store = StateStore::open(path);
  INFO((store.ok() ? std::string() : store.error().describe()));
  REQUIRE(store.ok());
  return std::move(store).value();
}

ResourceRecord full_record(const std::string& key, const std::string& id) {
  ResourceRecord r;
  r.key = key;
  r.id = id;
  r.attrs.name = "ci " + key;
  r.attrs.description = "deploys from CI";
  r.attrs.type = EntityType::Workspace;
  r.attrs.role = "WORKSPACE_OPERATOR";
  r.attrs.roles = tokend::normalize_roles({
      {"WORKSPACE_OPERATOR", "clx42sxw501gl01o0gjenthnh", EntityType::Workspace},
      {"DEPLOYMENT_ADMIN", "clyn6kxud003x01mtxmccegnh", EntityType::Deployment},
      {"ORGANIZATION_MEMBER", "clm8t5u4q000008jq4qoc3036", EntityType::Organization},
  });
  r.attrs.expiry_period_in_days = 90;
  r.short_token = "abc123";
  r.created_at = at(1669091832);
  r.updated_at = at(1669091900);
  r.start_at = at(1669091832);
  r.end_at = at(1669091832 + 90 * 86400);
  r.sink_path = "/run/tokens/" + key;
  r.sink_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
  r.rotate_pending = false;
  return r;
}

Outcome upsert(const ResourceRecord& r) { return Outcome{r.key, r, std::nullopt}; }

void require_ok(const tokend::Status& status) {
  INFO((status.ok() ? std::string() : status.error().describe()));
  REQUIRE(status.ok());
}

RunRecord sample_run(const std::string& trigger) {
  RunRecord run;
  run.trigger = trigger;
  run.command = "apply";
  run.started_at = at(1700000000);
  return run;
}

Intent sample_intent(const std::string& key, IntentKind kind) {
  Intent i;
  i.key = key;
  i.kind = kind;
  i.token_id = kind == IntentKind::Rotate ? "cltoken" + key : "";
  i.attrs = full_record(key, "unused").attrs;
  i.sink_path = "/run/tokens/" + key;
  i.started_at = at(1700000123);
  return i;
}

mode_t file_mode(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

// Sets the process umask for the life of the object.
class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t mask) : previous_(::umask(mask)) {}
  ~ScopedUmask() { ::umask(previous_); }

 private:
  mode_t previous_;
};

}  // namespace

TEST_CASE("resource records round-trip every field", "[state]") {
  const std::string backend = GENERATE(store_backends());
  ResourceRecord full = full_record("ci", "cltoken1");

  ResourceRecord never_expires = full_record("forever", "cltoken2");
  never_expires.attrs.expiry_period_in_days = std::nullopt;
  never_expires.end_at = std::nullopt;

  ResourceRecord no_roles = full_record("bare", "cltoken3");
  no_roles.attrs.roles.clear();
  no_roles.attrs.type = EntityType::Organization;
  no_roles.attrs.role = "";

  ResourceRecord unicode = full_record("données_東京", "cltoken4");
  unicode.attrs.name = "Jeton d'accès — 東京 🚀 \"quoted\"";
  unicode.attrs.description = "line one\nline two\ttab; DROP TABLE resources; --";
  unicode.sink_path = "/run/tökens/ünïcode";

  ResourceRecord imported = full_record("imported", "cltoken5");
  imported.sink_path = "";
  imported.sink_sha256 = "";
  imported.rotate_pending = true;
  unicode.delivery_pending = true;
  imported.attrs.type = EntityType::Deployment;
  imported.attrs.expiry_period_in_days = 0;
  imported.created_at = at(0);
  imported.updated_at = at(-86400);      // before the epoch
  imported.start_at = at(253402300799);  // 9999-12-31T23:59:59Z
  imported.end_at = at(0);

  const std::vector<ResourceRecord> records{full, never_expires, no_roles, unicode, imported};

  StoreTarget target(backend);
  {
    auto store = target.open();
    for (const ResourceRecord& r : records) require_ok(store->record_outcome(upsert(r)));

    for (const ResourceRecord& r : records) {
      auto read = store->resource(r.key);
      REQUIRE(read.ok());
      REQUIRE(read->has_value());
      CHECK(**read == r);
    }
    auto missing = store->resource("absent");
    REQUIRE(missing.ok());
    CHECK_FALSE(missing->has_value());
  }

  // The same values after closing and reopening the file, sorted by key.
  auto store = target.open();
  std::vector<ResourceRecord> expected = records;
  std::sort(expected.begin(), expected.end(),
            [](const ResourceRecord& a, const ResourceRecord& b) { return a.key < b.key; });
  auto all = store->resources();
  REQUIRE(all.ok());
  CHECK(*all == expected);
}

TEST_CASE("roles are stored as a set", "[state]") {
  const std::string backend = GENERATE(store_backends());
  auto store = fresh_store(backend);
  ResourceRecord r = full_record("ci", "cltoken1");
  const tokend::RoleSet normalized = r.attrs.roles;
  r.attrs.roles = {normalized[2], normalized[0], normalized[1],
                   normalized[0]};  // unordered, duplicate
  require_ok(store->record_outcome(upsert(r)));
  auto read = store->resource("ci");
  REQUIRE(read.ok());
  REQUIRE(read->has_value());
  CHECK((*read)->attrs.roles == normalized);
}

TEST_CASE("an upsert replaces every field and the whole role set", "[state]") {
  const std::string backend = GENERATE(store_backends());
  auto store = fresh_store(backend);
  require_ok(store->record_outcome(upsert(full_record("ci", "cltoken1"))));

  ResourceRecord replaced = full_record("ci", "cltoken9");
  replaced.attrs.name = "renamed";
  replaced.attrs.description = "";
  replaced.attrs.type = EntityType::Organization;
  replaced.attrs.role = "ORGANIZATION_MEMBER";
  replaced.attrs.roles = {
      {"ORGANIZATION_MEMBER", "clm8t5u4q000008jq4qoc3036", EntityType::Organization}};
  replaced.attrs.expiry_period_in_days = std::nullopt;
  replaced.short_token = "zzz";
  replaced.created_at = at(1);
  replaced.updated_at = at(2);
  replaced.start_at = at(3);
  replaced.end_at = std::nullopt;
  replaced.sink_path = "/elsewhere";
  replaced.sink_sha256 = "";
  replaced.rotate_pending = true;
  require_ok(store->record_outcome(upsert(replaced)));

  auto all = store->resources();
  REQUIRE(all.ok());
  REQUIRE(all->size() == 1);
  CHECK(all->front() == replaced);
}

TEST_CASE("an outcome without a resource deletes the row and its roles", "[state]") {
  const std::string backend = GENERATE(store_backends());
  StoreTarget target(backend);
  {
    auto store = target.open();
    require_ok(store->record_outcome(upsert(full_record("ci", "cltoken1"))));
    require_ok(store->record_outcome(upsert(full_record("keep", "cltoken2"))));
    require_ok(store->record_outcome(Outcome{"ci", std::nullopt, std::nullopt}));
    // Deleting what is already gone succeeds (the token is gone either way).
    require_ok(store->record_outcome(Outcome{"ci", std::nullopt, std::nullopt}));
    auto all = store->resources();
    REQUIRE(all.ok());
    REQUIRE(all->size() == 1);
    CHECK(all->front().key == "keep");
  }
  CHECK(target.query_int("SELECT count(*) FROM resource_roles WHERE resource_key = 'ci'") == 0);
  CHECK(target.query_int("SELECT count(*) FROM resource_roles WHERE resource_key = 'keep'") == 3);
}

TEST_CASE("record_outcome rejects a resource filed under another key", "[state]") {
  const std::string backend = GENERATE(store_backends());
  auto store = fresh_store(backend);
  auto status =
      store->record_outcome(Outcome{"other", full_record("ci", "cltoken1"), std::nullopt});
  REQUIRE_FALSE(status.ok());
  CHECK(status.error().kind == ErrorKind::Invalid);
  CHECK(store->serial() == 0);
}

TEST_CASE("record_outcomes commits a move to a deposed key atomically - bumping the serial once",
          "[state]") {
  const std::string backend = GENERATE(store_backends());
  auto store = fresh_store(backend);
  require_ok(store->record_outcome(upsert(full_record("ci", "cold"))));
  Intent create = sample_intent("ci", IntentKind::Create);
  auto intent_id = store->journal_intent(create);
  REQUIRE(intent_id.ok());
  const int64_t serial = store->serial();

  // The old token may not sit under two keys, not even inside the transaction:
  // depositing it first fails and commits nothing.
  ResourceRecord deposed = full_record("ci~cold", "cold");
  auto refused = store->record_outcomes(
      {upsert(deposed), Outcome{"ci", full_record("ci", "cnew"), *intent_id}});
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().kind == ErrorKind::Conflict);
  CHECK(store->serial() == serial);
  CHECK(store->pending_intents()->size() == 1);

  require_ok(store->record_outcomes(
      {Outcome{"ci", full_record("ci", "cnew"), *intent_id}, upsert(deposed)}));
  CHECK(store->serial() == serial + 1);
  auto all = store->resources();
  REQUIRE(all.ok());
  REQUIRE(all->size() == 2);
  CHECK(all->at(0).id == "cnew");
  CHECK(all->at(1).key == "ci~cold");
  CHECK(store->pending_intents()->empty());
  require_ok(store->record_outcomes({}));
  CHECK(store->serial() == serial + 1);
}

TEST_CASE("intents round-trip and resolve", "[state]") {
  const std::string backend = GENERATE(store_backends());
  auto store = fresh_store(backend);
  Intent create = sample_intent("ci", IntentKind::Create);
  Intent rotate = sample_intent("deploy", IntentKind::Rotate);
  rotate.attrs.roles.clear();
  rotate.attrs.expiry_period_in_days = std::nullopt;
  rotate.attrs.name = "déploiement 🚀";

  auto create_id = store->journal_intent(create);
  auto rotate_id = store->journal_intent(rotate);
  REQUIRE(create_id.ok());
  REQUIRE(rotate_id.ok());
  CHECK(*create_id != *rotate_id);
  create.id = *create_id;
  rotate.id = *rotate_id;

  auto pending = store->pending_intents();
  REQUIRE(pending.ok());
  CHECK(*pending == std::vector<Intent>{create, rotate});

  SECTION("resolve_intent drops it and nothing else") {
    require_ok(store->resolve_intent(*create_id));
    pending = store->pending_intents();
    REQUIRE(pending.ok());
    CHECK(*pending == std::vector<Intent>{rotate});
    auto again = store->resolve_intent(*create_id);
    REQUIRE_FALSE(again.ok());
    CHECK(again.error().kind == ErrorKind::NotFound);
  }

  SECTION("record_outcome resolves it together with the resource") {
    require_ok(store->record_outcome(Outcome{"ci", full_record("ci", "cltoken1"), *create_id}));
    pending = store->pending_intents();
    REQUIRE(pending.ok());
    CHECK(*pending == std::vector<Intent>{rotate});
    auto read = store->resource("ci");
    REQUIRE(read.ok());
    CHECK(read->has_value());
  }

  SECTION("ids are never reused") {
    require_ok(store->resolve_intent(*rotate_id));
    auto next = store->journal_intent(create);
    REQUIRE(next.ok());
    CHECK(*next > *rotate_id);
  }
}

TEST_CASE("the serial counts each state change exactly once", "[state]") {
  const std::string backend = GENERATE(store_backends());
  auto store = fresh_store(backend);
  auto intent = store->journal_intent(sample_intent("x", IntentKind::Create));
  REQUIRE(intent.ok());
  auto second_intent = store->journal_intent(sample_intent("y", IntentKind::Rotate));
  REQUIRE(second_intent.ok());
  auto run = store->begin_run(sample_run("cli"));
  REQUIRE(run.ok());

  struct Step {
    std::string name;
    std::function<bool()> call;  // true when the call succeeded
    int64_t expected_bump;
  };
  const std::vector<Step> steps{
      {"record_outcome upsert",
       [&] { return store->record_outcome(upsert(full_record("a", "cltoken1"))).ok(); }, 1},
      {"record_outcome upsert with intent",
       [&] {
         return store->record_outcome(Outcome{"x", full_record("x", "cltoken2"), *intent}).ok();
       },
       1},
      {"record_outcome delete",
       [&] {
         return store->record_outcome(Outcome{"a", std::nullopt, std::nullopt}).ok();
       },
       1},
      {"journal_intent",
       [&] { return store->journal_intent(sample_intent("z", IntentKind::Create)).ok(); }, 1},
      {"resolve_intent", [&] { return store->resolve_intent(*second_intent).ok(); }, 1},
      {"begin_run", [&] { return store->begin_run(sample_run("timer")).ok(); }, 0},
      {"record_action",
       [&] {
         return store
             ->record_action(*run, ActionRecord{"astro_api_token.a", "create", true, "", 0.5})
             .ok();
       },
       0},
      {"finish_run",
       [&] {
         RunRecord finished = sample_run("cli");
         finished.id = *run;
         return store->finish_run(finished).ok();
       },
       0},
      {"failed record_outcome (duplicate id)",
       [&] { return !store->record_outcome(upsert(full_record("dup", "cltoken2"))).ok(); }, 0},
      {"failed resolve_intent", [&] { return !store->resolve_intent(999).ok(); }, 0},
  };
  for (const Step& step : steps) {
    INFO(step.name);
    const int64_t before = store->serial();
    REQUIRE(step.call());
    CHECK(store->serial() == before + step.expected_bump);
  }
  auto snapshot = store->snapshot();
  REQUIRE(snapshot.ok());
  CHECK(snapshot->serial == 7);  // two intents journalled before the steps, five bumps in them
  CHECK(snapshot->lineage == store->lineage());
  REQUIRE(snapshot->resources.size() == 1);
  CHECK(snapshot->resources.front().key == "x");
}

TEST_CASE("a failed transaction leaves nothing behind", "[state]") {
  const std::string backend = GENERATE(store_backends());
  auto store = fresh_store(backend);
  const ResourceRecord original = full_record("ci", "cltoken1");
  const ResourceRecord other = full_record("other", "cltoken2");
  require_ok(store->record_outcome(upsert(original)));
  require_ok(store->record_outcome(upsert(other)));
  auto intent = store->journal_intent(sample_intent("new", IntentKind::Create));
  REQUIRE(intent.ok());
  const int64_t serial = store->serial();

  SECTION("a new key with a token id already recorded is a Conflict") {
    auto status = store->record_outcome(Outcome{"new", full_record("new", "cltoken1"), *intent});
    REQUIRE_FALSE(status.ok());
    CHECK(status.error().kind == ErrorKind::Conflict);
    CHECK_THAT(
        status.error().message,
        Catch::Contains(backend == "sqlite" ? "UNIQUE constraint failed: resources.id"
                                            : "duplicate key value violates unique constraint "
                                              "\"resources_id_key\""));
  }
  SECTION("an unknown intent rolls back the upsert before it") {
    auto status =
        store->record_outcome(Outcome{"new", full_record("new", "cltoken3"), *intent + 100});
    REQUIRE_FALSE(status.ok());
    CHECK(status.error().kind == ErrorKind::NotFound);
  }
  SECTION("a clashing update keeps the old row and its roles") {
    ResourceRecord changed = original;
    changed.id = "cltoken2";
    changed.attrs.name = "changed";
    changed.attrs.roles.clear();
    auto status = store->record_outcome(upsert(changed));
    REQUIRE_FALSE(status.ok());
    CHECK(status.error().kind == ErrorKind::Conflict);
  }

  CHECK(store->serial() == serial);
  auto all = store->resources();
  REQUIRE(all.ok());
  CHECK(*all == std::vector<ResourceRecord>{original, other});
  auto pending = store->pending_intents();
  REQUIRE(pending.ok());
  REQUIRE(pending->size() == 1);
  CHECK(pending->front().id == *intent);
}

TEST_CASE("run history round-trips - newest first", "[state]") {
  const std::string backend = GENERATE(store_backends());
  auto store = fresh_store(backend);
  auto first = store->begin_run(sample_run("startup"));
  REQUIRE(first.ok());

  RunRecord run = sample_run("cli");
  auto id = store->begin_run(run);
  REQUIRE(id.ok());
  CHECK(*id > *first);
  run.id = *id;
  const std::vector<ActionRecord> actions{
      {"astro_api_token.ci", "create", true, "", 0.25},
      {"astro_api_token.déploiement", "rotate", false, "HTTP 500 (requestId r-1) — ünïcode", 1.5},
      {"astro_api_token.old", "delete", true, "", 0.125},
  };
  for (const ActionRecord& action : actions) require_ok(store->record_action(*id, action));

  run.finished_at = at(1700000042);
  run.to_add = 1;
  run.to_change = 2;
  run.to_destroy = 3;
  run.to_rotate = 4;
  run.failed = 1;
  run.api_calls = 17;
  run.duration_seconds = 2.0625;
  run.result = RunResult::Failed;
  run.message = "1 of 3 actions failed";
  require_ok(store->finish_run(run));
  run.actions = actions;

  auto runs = store->runs(10);
  REQUIRE(runs.ok());
  REQUIRE(runs->size() == 2);
  CHECK(runs->at(0) == run);
  CHECK(runs->at(1).id == *first);
  CHECK_FALSE(runs->at(1).finished_at.has_value());
  CHECK(runs->at(1).actions.empty());

  auto newest = store->runs(1);
  REQUIRE(newest.ok());
  REQUIRE(newest->size() == 1);
  CHECK(newest->front() == run);

  auto missing_action = store->record_action(*id + 10, actions[0]);
  REQUIRE_FALSE(missing_action.ok());
  CHECK(missing_action.error().kind == ErrorKind::NotFound);
  RunRecord unknown = run;
  unknown.id = *id + 10;
  auto missing_finish = store->finish_run(unknown);
  REQUIRE_FALSE(missing_finish.ok());
  CHECK(missing_finish.error().kind == ErrorKind::NotFound);
}

TEST_CASE("run history keeps the newest runs and drops the actions of older ones", "[state]") {
  const std::string backend = GENERATE(store_backends());
  StoreTarget target(backend);
  const int limit = StateStore::kRunHistoryLimit;
  target.open();  // creates the schema
  {
    // Fill history to its limit quickly, in one transaction.
    std::string script = "BEGIN;";
    for (int i = 1; i <= limit; ++i) {
      script +=
          "INSERT INTO runs (trigger, command, started_at, finished_at, to_add, to_change, "
          "to_destroy, to_rotate, failed, api_calls, duration_seconds, result, message) "
          "VALUES ('timer', 'run', " +
          std::to_string(i) + ", NULL, 0, 0, 0, 0, 0, 1, 0.1, 'no-op', '');";
      script += "INSERT INTO run_actions VALUES (" + std::to_string(i) +
                ", 1, 'astro_api_token.a', 'update', 1, '', 0.1);";
    }
    target.exec(script + "COMMIT;");
  }
  {
    auto store = target.open();
    auto id = store->begin_run(sample_run("cli"));
    REQUIRE(id.ok());
    require_ok(store->record_action(*id, ActionRecord{"astro_api_token.b", "create", true, "", 1}));
    RunRecord finished = sample_run("cli");
    finished.id = *id;
    finished.result = RunResult::Ok;
    require_ok(store->finish_run(finished));

    auto runs = store->runs(0);
    REQUIRE(runs.ok());
    REQUIRE(runs->size() == static_cast<size_t>(limit));
    CHECK(runs->front().id == *id);
    CHECK(runs->back().id == 2);
  }
  CHECK(target.query_int("SELECT count(*) FROM run_actions WHERE run_id = 1") == 0);
  CHECK(target.query_int("SELECT count(*) FROM run_actions") == limit);
}

TEST_CASE("lineage is a UUID set once and kept across reopen", "[state]") {
  const std::string backend = GENERATE(store_backends());
  StoreTarget target(backend);
  std::string lineage;
  {
    auto store = target.open();
    lineage = store->lineage();
    require_ok(store->record_outcome(upsert(full_record("ci", "cltoken1"))));
  }
  CHECK(std::regex_match(
      lineage, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")));
  auto reopened = target.open();
  CHECK(reopened->lineage() == lineage);
  CHECK(reopened->serial() == 1);
  auto other = StoreTarget(backend).open();
  CHECK(other->lineage() != lineage);
  CHECK(fresh_store(backend)->lineage() != fresh_store(backend)->lineage());
}

TEST_CASE("the database and its -wal and -shm files are mode 0600 whatever the umask", "[state]") {
  TempDir dir;
  const std::string path = dir.file("state.db");
  const mode_t mask = GENERATE(mode_t{0}, mode_t{022}, mode_t{0277});
  INFO("umask " << std::oct << mask);
  ScopedUmask scoped(mask);
  {
    auto store = open_store(path);
    require_ok(store->record_outcome(upsert(full_record("ci", "cltoken1"))));
    CHECK(file_mode(path) == 0600);
    CHECK(file_mode(path + "-wal") == 0600);
    CHECK(file_mode(path + "-shm") == 0600);

    SQLite::Database raw(path, SQLite::OPEN_READONLY);
    CHECK(raw.execAndGet("PRAGMA journal_mode").getString() == "wal");
  }

  SECTION("an existing file with a wider mode is narrowed") {
    REQUIRE(::chmod(path.c_str(), 0644) == 0);
    auto store = open_store(path);
    CHECK(file_mode(path) == 0600);
    CHECK(file_mode(path + "-shm") == 0600);
  }
}

TEST_CASE("open fails clearly when the state directory does not exist", "[state]") {
  TempDir dir;
  auto store = StateStore::open(dir.file("missing/state.db"));
  REQUIRE_FALSE(store.ok());
  CHECK(store.error().kind == ErrorKind::Io);
  CHECK_THAT(store.error().message,
             Catch::Contains("state directory " + dir.file("missing") + " does not exist"));
  CHECK_FALSE(std::filesystem::exists(dir.file("missing")));
}

TEST_CASE("a file that is not SQLite is refused as Corrupt and left untouched", "[state]") {
  TempDir dir;
  const std::string path = dir.file("state.db");
  std::string junk = "this is not a database\n";
  for (int i = 0; i < 8; ++i) junk += junk;  // several pages of text
  tokend::testing::write_file(path, junk);
  REQUIRE(::chmod(path.c_str(), 0644) == 0);

  auto store = StateStore::open(path);
  REQUIRE_FALSE(store.ok());
  CHECK(store.error().kind == ErrorKind::Corrupt);
  CHECK_THAT(store.error().message, Catch::Contains(path) && Catch::Contains("not a database"));
  CHECK(tokend::testing::read_file(path) == junk);
  CHECK(file_mode(path) == 0644);
}

TEST_CASE("a database that fails its integrity check is refused as Corrupt", "[state]") {
  TempDir dir;
  const std::string path = dir.file("state.db");
  {
    auto store = open_store(path);
    require_ok(store->record_outcome(upsert(full_record("seed", "cltoken0"))));
  }
  {
    SQLite::Database raw(path, SQLite::OPEN_READWRITE);
    SQLite::Transaction tx(raw);
    for (int i = 0; i < 400; ++i) {
      raw.exec(
          "INSERT INTO resources (key, id, name, description, type, role, short_token, "
          "created_at, updated_at, start_at, sink_path, sink_sha256) VALUES ('k" +
          std::to_string(i) + "', 'id" + std::to_string(i) +
          "', 'a name long enough to fill pages', 'and a description', 'ORGANIZATION', "
          "'ORGANIZATION_MEMBER', 'short', 1, 2, 3, '/run/x', '')");
    }
    tx.commit();
  }  // closing the last connection checkpoints the WAL into the file

  // Overwrite the cell pointer array of the last table-leaf page (type 0x0D).
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(file);
  std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  const size_t page_size =
      (static_cast<unsigned char>(bytes[16]) << 8) | static_cast<unsigned char>(bytes[17]);
  REQUIRE(page_size >= 512);
  REQUIRE(bytes.size() % page_size == 0);
  size_t leaf = 0;
  for (size_t page = bytes.size() / page_size - 1; page >= 1 && leaf == 0; --page) {
    if (bytes[page * page_size] == 0x0D) leaf = page;
  }
  REQUIRE(leaf != 0);
  file.seekp(static_cast<std::streamoff>(leaf * page_size + 8));
  file.write(std::string(32, '\xff').data(), 32);
  file.close();

  auto store = StateStore::open(path);
  REQUIRE_FALSE(store.ok());
  CHECK(store.error().kind == ErrorKind::Corrupt);
  CHECK_THAT(store.error().message, Catch::Contains("failed its integrity check") &&
                                        Catch::Contains("page " + std::to_string(leaf + 1)));
}

TEST_CASE("one store is safe to use from several threads", "[state]") {
  const std::string backend = GENERATE(store_backends());
  auto store = fresh_store(backend);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string key = "t" + std::to_string(t) + "_" + std::to_string(i);
        if (!store->record_outcome(upsert(full_record(key, "id_" + key))).ok()) ++failures;
        if (!store->resources().ok()) ++failures;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  CHECK(failures == 0);
  CHECK(store->serial() == kThreads * kPerThread);
  auto all = store->resources();
  REQUIRE(all.ok());
  CHECK(all->size() == static_cast<size_t>(kThreads * kPerThread));
}

TEST_CASE("values the schema refuses are Invalid and change nothing", "[state]") {
  const std::string backend = GENERATE(store_backends());
  auto store = fresh_store(backend);
  ResourceRecord no_id = full_record("ci", "");
  auto status = store->record_outcome(upsert(no_id));
  REQUIRE_FALSE(status.ok());
  CHECK(status.error().kind == ErrorKind::Invalid);
  CHECK_THAT(status.error().message,
             Catch::StartsWith("state database: recording the outcome for astro_api_token.ci: "));
  auto empty_key = store->record_outcome(Outcome{"", std::nullopt, std::nullopt});
  REQUIRE_FALSE(empty_key.ok());
  CHECK(empty_key.error().kind == ErrorKind::Invalid);
  auto intent = store->journal_intent(sample_intent("", IntentKind::Create));
  REQUIRE_FALSE(intent.ok());
  CHECK(intent.error().kind == ErrorKind::Invalid);
  CHECK(store->serial() == 0);
  auto all = store->resources();
  REQUIRE(all.ok());
  CHECK(all->empty());
}

TEST_CASE("two stores on one file see each other's writes", "[state]") {
  const std::string backend = GENERATE(store_backends());
  StoreTarget target(backend);
  auto writer = target.open();
  auto reader = target.open();
  CHECK(reader->lineage() == writer->lineage());
  require_ok(writer->record_outcome(upsert(full_record("ci", "cltoken1"))));
  CHECK(reader->serial() == 1);
  auto snapshot = reader->snapshot();
  REQUIRE(snapshot.ok());
  CHECK(snapshot->serial == 1);
  CHECK(snapshot->resources == std::vector<ResourceRecord>{full_record("ci", "cltoken1")});
}

TEST_CASE("a state records its organization once and refuses another", "[state]") {
  const std::string backend = GENERATE(store_backends());
  StoreTarget target(backend);
  auto store = target.open();
  auto none = store->organization_id();
  REQUIRE(none.ok());
  CHECK(none->empty());

  auto first = store->bind_organization("clorgfirst000000000000001");
  REQUIRE(first.ok());
  CHECK(*first);
  auto again = store->bind_organization("clorgfirst000000000000001");
  REQUIRE(again.ok());
  CHECK_FALSE(*again);
  CHECK(store->serial() == 0);  // binding is not a change a plan depends on

  auto other = store->bind_organization("clorgother000000000000002");
  REQUIRE_FALSE(other.ok());
  CHECK(other.error().kind == ErrorKind::Conflict);
  CHECK(other.error().message.find("clorgfirst000000000000001") != std::string::npos);
  CHECK(other.error().message.find("clorgother000000000000002") != std::string::npos);

  auto empty = store->bind_organization("");
  REQUIRE_FALSE(empty.ok());
  CHECK(empty.error().kind == ErrorKind::Invalid);

  // Another store on the same state sees it, and it survives a reopen.
  auto reader = target.open();
  auto seen = reader->organization_id();
  REQUIRE(seen.ok());
  CHECK(*seen == "clorgfirst000000000000001");
  CHECK_FALSE(reader->bind_organization("clorgother000000000000002").ok());
  auto kept = target.open()->organization_id();
  REQUIRE(kept.ok());
  CHECK(*kept == "clorgfirst000000000000001");
}

TEST_CASE(
    "a resolved create is kept with its window and the token it made - a resolved rotation "
    "is not - until a week after it began",
    "[state]") {
  const std::string backend = GENERATE(store_backends());
  auto store = fresh_store(backend);
  Intent made = sample_intent("ci", IntentKind::Create);
  made.settle_after = made.started_at + std::chrono::seconds(35);
  Intent dropped = sample_intent("etl", IntentKind::Create);
  dropped.settle_after = dropped.started_at + std::chrono::seconds(35);
  Intent rotate = sample_intent("deploy", IntentKind::Rotate);
  made.id = store->journal_intent(made).value();
  dropped.id = store->journal_intent(dropped).value();
  rotate.id = store->journal_intent(rotate).value();
  auto pending = store->pending_intents();
  REQUIRE(pending.ok());
  CHECK(*pending == std::vector<Intent>{made, dropped, rotate});
  CHECK(store->recent_creates().value().empty());

  require_ok(store->record_outcome(Outcome{"ci", full_record("ci", "cltoken1"), made.id}));
  require_ok(store->resolve_intent(dropped.id));
  require_ok(store->resolve_intent(rotate.id));
  CHECK(store->pending_intents().value().empty());
  made.resolved = true;
  made.made_token_id = "cltoken1";
  dropped.resolved = true;
  auto recent = store->recent_creates();
  REQUIRE(recent.ok());
  CHECK(*recent == std::vector<Intent>{made, dropped});
  // Resolved once: resolving again finds no pending intent.
  auto again = store->resolve_intent(made.id);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().kind == ErrorKind::NotFound);

  // A week after they began, the next journalled intent prunes them.
  Intent later = sample_intent("next", IntentKind::Create);
  later.started_at =
      made.started_at + StateStore::kResolvedCreateRetention - std::chrono::seconds(1);
  later.id = store->journal_intent(later).value();
  CHECK(store->recent_creates().value().size() == 2);
  require_ok(store->resolve_intent(later.id));
  Intent week = sample_intent("week", IntentKind::Create);
  week.started_at =
      made.started_at + StateStore::kResolvedCreateRetention + std::chrono::seconds(1);
  REQUIRE(store->journal_intent(week).ok());
  recent = store->recent_creates();
  REQUIRE(recent.ok());
  REQUIRE(recent->size() == 1);
  CHECK(recent->front().key == "next");
}
