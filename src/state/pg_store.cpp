#include "state/pg_store.h"

#include <unordered_map>
#include <utility>

#include "state/migrations.h"
#include "state/pg_connection.h"

namespace tokend::state {

namespace {

// Serializes migrations of one database across processes (a transaction-level
// advisory lock, released at commit).
constexpr const char* kMigrationLockKey = "7285011954301";

PgParam text(const std::string& value) { return value; }
PgParam number(int64_t value) { return std::to_string(value); }
PgParam optional_number(const std::optional<int>& value) {
  if (!value) return std::nullopt;
  return std::to_string(*value);
}
PgParam seconds(Timestamp t) { return std::to_string(t.time_since_epoch().count()); }
PgParam optional_seconds(const std::optional<Timestamp>& t) {
  if (!t) return std::nullopt;
  return seconds(*t);
}
PgParam real(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.17g", value);
  return std::string(buffer);
}

Timestamp time_at(const PgRows& rows, int row, int column) {
  return Timestamp{std::chrono::seconds{rows.int64(row, column)}};
}
std::optional<Timestamp> optional_time_at(const PgRows& rows, int row, int column) {
  if (rows.null(row, column)) return std::nullopt;
  return time_at(rows, row, column);
}
std::optional<int> optional_int_at(const PgRows& rows, int row, int column) {
  if (rows.null(row, column)) return std::nullopt;
  return rows.int32(row, column);
}

EntityType entity_type_at(const PgRows& rows, int row, int column) {
  std::string value = rows.text(row, column);
  auto type = parse_entity_type(value);
  if (!type) throw PgCorruptRow("unknown entity type '" + value + "'");
  return *type;
}

// A token's own type (ORGANIZATION, WORKSPACE, DEPLOYMENT), never a role's
// entity type such as DAG.
EntityType token_type_at(const PgRows& rows, int row, int column) {
  std::string value = rows.text(row, column);
  auto type = parse_token_type(value);
  if (!type) throw PgCorruptRow("unknown token type '" + value + "'");
  return *type;
}

TokenKind token_kind_at(const PgRows& rows, int row, int column) {
  std::string value = rows.text(row, column);
  auto kind = parse_token_kind(value);
  if (!kind) throw PgCorruptRow("unknown token kind '" + value + "'");
  return *kind;
}

// A row of (owner, role, entity_id, entity_type, deployment_id).
Role role_at(const PgRows& rows, int row) {
  return Role{rows.text(row, 1), rows.text(row, 2), entity_type_at(rows, row, 3),
              rows.text(row, 4)};
}

std::string intent_kind_text(IntentKind kind) {
  return kind == IntentKind::Create ? "create" : "rotate";
}

IntentKind intent_kind_at(const PgRows& rows, int row, int column) {
  std::string value = rows.text(row, column);
  if (value == "create") return IntentKind::Create;
  if (value == "rotate") return IntentKind::Rotate;
  throw PgCorruptRow("unknown intent kind '" + value + "'");
}

int64_t bump_serial(PgConnection& conn) {
  return conn.exec("UPDATE meta SET serial = serial + 1 WHERE id = 1 RETURNING serial").int64(0, 0);
}

// --- resources ----------------------------------------------------------------

constexpr const char* kResourceColumns =
    "key, id, name, description, type, role, expiry_period_in_days, short_token, created_at, "
    "updated_at, start_at, end_at, sink_path, sink_sha256, rotate_pending, delivery_pending, kind, "
    "last_rotated_at";

std::vector<ResourceRecord> read_resources(PgConnection& conn, const std::string* key) {
  std::vector<ResourceRecord> out;
  std::unordered_map<std::string, size_t> index;
  std::vector<PgParam> params;
  if (key) params.push_back(*key);
  PgRows rows = conn.exec(std::string("SELECT ") + kResourceColumns + " FROM resources" +
                              (key ? " WHERE key = $1" : "") + " ORDER BY key COLLATE \"C\"",
                          params);
  for (int i = 0; i < rows.size(); ++i) {
    ResourceRecord r;
    r.key = rows.text(i, 0);
    r.id = rows.text(i, 1);
    r.attrs.name = rows.text(i, 2);
    r.attrs.description = rows.text(i, 3);
    r.attrs.type = token_type_at(rows, i, 4);
    r.attrs.role = rows.text(i, 5);
    r.attrs.expiry_period_in_days = optional_int_at(rows, i, 6);
    r.short_token = rows.text(i, 7);
    r.created_at = time_at(rows, i, 8);
    r.updated_at = time_at(rows, i, 9);
    r.start_at = time_at(rows, i, 10);
    r.end_at = optional_time_at(rows, i, 11);
    r.sink_path = rows.text(i, 12);
    r.sink_sha256 = rows.text(i, 13);
    r.rotate_pending = rows.int64(i, 14) != 0;
    r.delivery_pending = rows.int64(i, 15) != 0;
    r.attrs.kind = token_kind_at(rows, i, 16);
    r.last_rotated_at = optional_time_at(rows, i, 17);
    out.push_back(std::move(r));
    index.emplace(out.back().key, out.size() - 1);
  }
  PgRows roles = conn.exec(std::string("SELECT resource_key, role, entity_id, entity_type, "
                                       "deployment_id FROM resource_roles") +
                               (key ? " WHERE resource_key = $1" : ""),
                           params);
  for (int i = 0; i < roles.size(); ++i) {
    auto found = index.find(roles.text(i, 0));
    if (found == index.end()) throw PgCorruptRow("a role names a resource that does not exist");
    out[found->second].attrs.roles.push_back(role_at(roles, i));
  }
  for (ResourceRecord& r : out) r.attrs.roles = normalize_roles(std::move(r.attrs.roles));
  return out;
}

void upsert_resource(PgConnection& conn, const ResourceRecord& r) {
  conn.exec(
      std::string("INSERT INTO resources (") + kResourceColumns +
          ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, "
          "$18) "
          "ON CONFLICT (key) DO UPDATE SET id = excluded.id, name = excluded.name, "
          "description = excluded.description, type = excluded.type, role = excluded.role, "
          "expiry_period_in_days = excluded.expiry_period_in_days, "
          "short_token = excluded.short_token, created_at = excluded.created_at, "
          "updated_at = excluded.updated_at, start_at = excluded.start_at, "
          "end_at = excluded.end_at, sink_path = excluded.sink_path, "
          "sink_sha256 = excluded.sink_sha256, rotate_pending = excluded.rotate_pending, "
          "delivery_pending = excluded.delivery_pending, kind = excluded.kind, "
          "last_rotated_at = excluded.last_rotated_at",
      {text(r.key), text(r.id), text(r.attrs.name), text(r.attrs.description),
       text(std::string(to_string(r.attrs.type))), text(r.attrs.role),
       optional_number(r.attrs.expiry_period_in_days), text(r.short_token), seconds(r.created_at),
       seconds(r.updated_at), seconds(r.start_at), optional_seconds(r.end_at), text(r.sink_path),
       text(r.sink_sha256), number(r.rotate_pending ? 1 : 0), number(r.delivery_pending ? 1 : 0),
       text(std::string(to_string(r.attrs.kind))), optional_seconds(r.last_rotated_at)});
  conn.exec("DELETE FROM resource_roles WHERE resource_key = $1", {text(r.key)});
  for (const Role& role : normalize_roles(r.attrs.roles)) {
    conn.exec(
        "INSERT INTO resource_roles (resource_key, role, entity_id, entity_type, deployment_id) "
        "VALUES ($1, $2, $3, $4, $5)",
        {text(r.key), text(role.role), text(role.entity_id),
         text(std::string(to_string(role.entity_type))), text(role.deployment_id)});
  }
}

// --- intents ----------------------------------------------------------------------

// Reads the pending intents, or the resolved ones, roles included, oldest first.
std::vector<Intent> read_intents(PgConnection& conn, bool resolved) {
  std::vector<Intent> out;
  std::unordered_map<int64_t, size_t> index;
  const std::vector<PgParam> which{number(resolved ? 1 : 0)};
  PgRows rows = conn.exec(
      "SELECT id, key, kind, token_id, name, description, type, role, "
      "expiry_period_in_days, sink_path, started_at, settle_after, resolved, made_token_id, "
      "token_kind FROM intents WHERE resolved = $1 ORDER BY id",
      which);
  for (int i = 0; i < rows.size(); ++i) {
    Intent intent;
    intent.id = rows.int64(i, 0);
    intent.key = rows.text(i, 1);
    intent.kind = intent_kind_at(rows, i, 2);
    intent.token_id = rows.text(i, 3);
    intent.attrs.name = rows.text(i, 4);
    intent.attrs.description = rows.text(i, 5);
    intent.attrs.type = token_type_at(rows, i, 6);
    intent.attrs.role = rows.text(i, 7);
    intent.attrs.expiry_period_in_days = optional_int_at(rows, i, 8);
    intent.sink_path = rows.text(i, 9);
    intent.started_at = time_at(rows, i, 10);
    intent.settle_after = time_at(rows, i, 11);
    intent.resolved = rows.int64(i, 12) != 0;
    intent.made_token_id = rows.text(i, 13);
    intent.attrs.kind = token_kind_at(rows, i, 14);
    out.push_back(std::move(intent));
    index.emplace(out.back().id, out.size() - 1);
  }
  PgRows roles = conn.exec(
      "SELECT intent_id, role, entity_id, entity_type, deployment_id FROM intent_roles "
      "WHERE intent_id IN (SELECT id FROM intents WHERE resolved = $1)",
      which);
  for (int i = 0; i < roles.size(); ++i) {
    auto found = index.find(roles.int64(i, 0));
    if (found == index.end()) throw PgCorruptRow("a role names an intent that does not exist");
    out[found->second].attrs.roles.push_back(role_at(roles, i));
  }
  for (Intent& intent : out) intent.attrs.roles = normalize_roles(std::move(intent.attrs.roles));
  return out;
}

// Resolves the pending intent `id`: deletes a rotate intent, marks a create
// intent resolved with the token it made. False when there is no such
// pending intent.
bool settle_intent(PgConnection& conn, int64_t id, const std::string& made_token_id) {
  PgRows kind =
      conn.exec("SELECT kind FROM intents WHERE id = $1 AND resolved = 0 FOR UPDATE", {number(id)});
  if (kind.size() == 0) return false;
  if (intent_kind_at(kind, 0, 0) == IntentKind::Rotate) {
    conn.exec("DELETE FROM intents WHERE id = $1", {number(id)});
    return true;
  }
  conn.exec("UPDATE intents SET resolved = 1, made_token_id = $1 WHERE id = $2",
            {text(made_token_id), number(id)});
  return true;
}

// --- runs ---------------------------------------------------------------------------

std::vector<PgParam> run_fields(const RunRecord& run) {
  return {text(run.trigger),          text(run.command),
          seconds(run.started_at),    optional_seconds(run.finished_at),
          number(run.to_add),         number(run.to_change),
          number(run.to_destroy),     number(run.to_rotate),
          number(run.failed),         number(run.api_calls),
          real(run.duration_seconds), text(std::string(to_string(run.result))),
          text(run.message)};
}

// --- opening ---------------------------------------------------------------------------

int read_version(PgConnection& conn) {
  PgRows exists = conn.exec("SELECT to_regclass('tokend_schema') IS NOT NULL");
  if (exists.text(0, 0) != "t") return 0;
  PgRows version = conn.exec("SELECT version FROM tokend_schema WHERE id = 1");
  return version.size() == 0 ? 0 : version.int32(0, 0);
}

// Applies each pending migration in its own transaction, which takes the
// migration lock and re-reads the version, so that two processes opening a
// new database at once do not both apply a migration.
Status migrate(PgConnection& conn) {
  for (const Migration& migration : postgres_migrations()) {
    Status applied = pg_guarded(
        "applying migration postgres/" + std::string(migration.file_name), [&]() -> Status {
          if (read_version(conn) >= migration.version) return ok_status();
          PgTransaction tx(conn);
          conn.exec(std::string("SELECT pg_advisory_xact_lock(") + kMigrationLockKey + ")");
          if (read_version(conn) >= migration.version) return ok_status();  // another did it
          if (migration.version == 1) {
            conn.exec(
                "CREATE TABLE tokend_schema (id INTEGER PRIMARY KEY CHECK (id = 1), "
                "version INTEGER NOT NULL)");
            conn.exec("INSERT INTO tokend_schema VALUES (1, 0)");
          }
          conn.exec(std::string(migration.sql));
          conn.exec("UPDATE tokend_schema SET version = $1 WHERE id = 1",
                    {number(migration.version)});
          tx.commit();
          return ok_status();
        });
    if (!applied) return applied;
  }
  return ok_status();
}

}  // namespace

// --- PgStore ------------------------------------------------------------------------------

PgStore::PgStore(std::unique_ptr<PgConnection> conn) : conn_(std::move(conn)) {}
PgStore::~PgStore() = default;

Result<std::unique_ptr<PgStore>> PgStore::open(const std::string& dsn) {
  auto conn = PgConnection::open(dsn);
  if (!conn.ok()) return conn.error();
  std::unique_ptr<PgStore> store(new PgStore(std::move(conn.value())));
  PgConnection& c = *store->conn_;
  const int latest = postgres_migrations().empty() ? 0 : postgres_migrations().back().version;
  Status opened = pg_guarded("opening the state", [&]() -> Status {
    const int version = read_version(c);
    if (version > latest) {
      return Error::invalid("state database has schema version " + std::to_string(version) +
                            ", newer than this astro-tokend knows (" + std::to_string(latest) +
                            "); use a newer astro-tokend");
    }
    if (version == 0) {
      PgRows tables =
          c.exec("SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema()");
      if (tables.int64(0, 0) > 0) {
        return Error::invalid(
            "state database holds tables that astro-tokend did not create; give astro-tokend a "
            "database of its own");
      }
    }
    if (Status migrated = migrate(c); !migrated) return migrated;
    PgRows meta = c.exec("SELECT lineage, serial FROM meta WHERE id = 1");
    if (meta.size() != 1) throw PgCorruptRow("the meta row is missing");
    store->lineage_ = meta.text(0, 0);
    store->last_serial_ = meta.int64(0, 1);
    store->schema_version_ = read_version(c);
    return ok_status();
  });
  if (!opened) return opened.error();
  return store;
}

void PgStore::check_fence() const {
  const int64_t epoch = fence_epoch_.load();
  if (epoch == 0) return;
  // FOR SHARE: a takeover (which updates the row) waits for this write to
  // commit, so no write of an old epoch lands after a new one began.
  PgRows held = conn_->exec(
      "SELECT 1 FROM writer_lease WHERE id = 1 AND epoch = $1 AND expires_at > now() FOR SHARE",
      {number(epoch)});
  if (held.size() == 0)
    throw PgLostLease("this writer lost the writer lease (epoch " + std::to_string(epoch) + ")");
}

std::string PgStore::lineage() const { return lineage_; }

int PgStore::schema_version() const { return schema_version_; }

int64_t PgStore::serial() const {
  std::lock_guard lock(mutex_);
  try {
    conn_->ensure();
    last_serial_ = conn_->exec("SELECT serial FROM meta WHERE id = 1").int64(0, 0);
  } catch (const std::exception&) {
    // Keep the last value seen; the next read or write reports the failure.
  }
  return last_serial_;
}

Result<std::string> PgStore::organization_id() const {
  std::lock_guard lock(mutex_);
  return pg_guarded("reading the organization of the state", [&]() -> Result<std::string> {
    conn_->ensure();
    return conn_->exec("SELECT organization_id FROM meta WHERE id = 1").text(0, 0);
  });
}

Result<bool> PgStore::bind_organization(const std::string& organization_id) {
  if (organization_id.empty()) return Error::invalid("an empty organization id");
  std::lock_guard lock(mutex_);
  return pg_guarded("recording the organization of the state", [&]() -> Result<bool> {
    PgTransaction tx(*conn_);
    check_fence();
    std::string recorded =
        conn_->exec("SELECT organization_id FROM meta WHERE id = 1 FOR UPDATE").text(0, 0);
    if (recorded == organization_id) return false;
    if (!recorded.empty()) return organization_conflict(recorded, organization_id);
    conn_->exec("UPDATE meta SET organization_id = $1 WHERE id = 1", {text(organization_id)});
    tx.commit();
    return true;
  });
}

Result<std::vector<ResourceRecord>> PgStore::resources() const {
  std::lock_guard lock(mutex_);
  return pg_guarded("reading resources", [&]() -> Result<std::vector<ResourceRecord>> {
    PgTransaction tx(*conn_, "ISOLATION LEVEL REPEATABLE READ READ ONLY");
    auto out = read_resources(*conn_, nullptr);
    tx.commit();
    return out;
  });
}

Result<std::optional<ResourceRecord>> PgStore::resource(const std::string& key) const {
  std::lock_guard lock(mutex_);
  return pg_guarded("reading resource " + key, [&]() -> Result<std::optional<ResourceRecord>> {
    PgTransaction tx(*conn_, "ISOLATION LEVEL REPEATABLE READ READ ONLY");
    auto found = read_resources(*conn_, &key);
    tx.commit();
    if (found.empty()) return std::optional<ResourceRecord>{};
    return std::optional<ResourceRecord>{std::move(found.front())};
  });
}

Result<StateSnapshot> PgStore::snapshot() const {
  std::lock_guard lock(mutex_);
  return pg_guarded("reading the state", [&]() -> Result<StateSnapshot> {
    PgTransaction tx(*conn_, "ISOLATION LEVEL REPEATABLE READ READ ONLY");
    StateSnapshot snap;
    snap.lineage = lineage_;
    snap.serial = conn_->exec("SELECT serial FROM meta WHERE id = 1").int64(0, 0);
    snap.resources = read_resources(*conn_, nullptr);
    tx.commit();
    last_serial_ = snap.serial;
    return snap;
  });
}

Status PgStore::record_outcomes(const std::vector<Outcome>& outcomes) {
  if (outcomes.empty()) return ok_status();
  std::string addresses;
  for (const Outcome& outcome : outcomes) {
    if (outcome.key.empty()) return Error::invalid("an outcome without a key");
    if (outcome.resource && outcome.resource->key != outcome.key) {
      return Error::invalid("outcome for " + outcome.key + " carries a resource keyed " +
                            outcome.resource->key);
    }
    addresses += (addresses.empty() ? "" : ", ") + address_for_key(outcome.key);
  }
  std::lock_guard lock(mutex_);
  return pg_guarded("recording the outcome for " + addresses, [&]() -> Status {
    PgTransaction tx(*conn_);
    check_fence();
    for (const Outcome& outcome : outcomes) {
      if (outcome.resource) {
        upsert_resource(*conn_, *outcome.resource);
      } else {
        conn_->exec("DELETE FROM resources WHERE key = $1", {text(outcome.key)});
      }
      if (outcome.resolved_intent) {
        if (!settle_intent(*conn_, *outcome.resolved_intent,
                           outcome.resource ? outcome.resource->id : std::string())) {
          return Error::not_found("intent " + std::to_string(*outcome.resolved_intent) +
                                  " does not exist");
        }
      }
    }
    int64_t serial = bump_serial(*conn_);
    tx.commit();
    last_serial_ = serial;
    return ok_status();
  });
}

Result<int64_t> PgStore::journal_intent(const Intent& intent) {
  if (intent.key.empty()) return Error::invalid("an intent without a key");
  std::lock_guard lock(mutex_);
  return pg_guarded(
      "journalling an intent for " + address_for_key(intent.key), [&]() -> Result<int64_t> {
        PgTransaction tx(*conn_);
        check_fence();
        const int64_t id =
            conn_
                ->exec(
                    "INSERT INTO intents (key, kind, token_id, name, description, "
                    "type, role, expiry_period_in_days, sink_path, started_at, settle_after, "
                    "token_kind) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
                    {text(intent.key), text(intent_kind_text(intent.kind)), text(intent.token_id),
                     text(intent.attrs.name), text(intent.attrs.description),
                     text(std::string(to_string(intent.attrs.type))), text(intent.attrs.role),
                     optional_number(intent.attrs.expiry_period_in_days), text(intent.sink_path),
                     seconds(intent.started_at), seconds(intent.settle_after),
                     text(std::string(to_string(intent.attrs.kind)))})
                .int64(0, 0);
        conn_->exec("DELETE FROM intents WHERE resolved = 1 AND started_at < $1",
                    {seconds(intent.started_at - StateStore::kResolvedCreateRetention)});
        for (const Role& role : normalize_roles(intent.attrs.roles)) {
          conn_->exec(
              "INSERT INTO intent_roles (intent_id, role, entity_id, entity_type, deployment_id) "
              "VALUES ($1, $2, $3, $4, $5)",
              {number(id), text(role.role), text(role.entity_id),
               text(std::string(to_string(role.entity_type))), text(role.deployment_id)});
        }
        int64_t serial = bump_serial(*conn_);
        tx.commit();
        last_serial_ = serial;
        return id;
      });
}

Status PgStore::resolve_intent(int64_t intent_id) {
  std::lock_guard lock(mutex_);
  return pg_guarded("resolving intent " + std::to_string(intent_id), [&]() -> Status {
    PgTransaction tx(*conn_);
    check_fence();
    if (!settle_intent(*conn_, intent_id, "")) {
      return Error::not_found("intent " + std::to_string(intent_id) + " does not exist");
    }
    int64_t serial = bump_serial(*conn_);
    tx.commit();
    last_serial_ = serial;
    return ok_status();
  });
}

Result<std::vector<Intent>> PgStore::pending_intents() const {
  std::lock_guard lock(mutex_);
  return pg_guarded("reading pending intents", [&]() -> Result<std::vector<Intent>> {
    PgTransaction tx(*conn_, "ISOLATION LEVEL REPEATABLE READ READ ONLY");
    auto out = read_intents(*conn_, false);
    tx.commit();
    return out;
  });
}

Result<std::vector<Intent>> PgStore::recent_creates() const {
  std::lock_guard lock(mutex_);
  return pg_guarded("reading resolved creates", [&]() -> Result<std::vector<Intent>> {
    PgTransaction tx(*conn_, "ISOLATION LEVEL REPEATABLE READ READ ONLY");
    auto out = read_intents(*conn_, true);
    tx.commit();
    return out;
  });
}

Result<int64_t> PgStore::begin_run(const RunRecord& run) {
  std::lock_guard lock(mutex_);
  return pg_guarded("recording the start of a run", [&]() -> Result<int64_t> {
    PgTransaction tx(*conn_);
    check_fence();
    const int64_t id = conn_
                           ->exec(
                               "INSERT INTO runs (trigger, command, started_at, finished_at, "
                               "to_add, to_change, to_destroy, to_rotate, failed, api_calls, "
                               "duration_seconds, result, message) "
                               "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) "
                               "RETURNING id",
                               run_fields(run))
                           .int64(0, 0);
    tx.commit();
    return id;
  });
}

Status PgStore::record_action(int64_t run_id, const ActionRecord& action) {
  std::lock_guard lock(mutex_);
  return pg_guarded("recording an action of run " + std::to_string(run_id), [&]() -> Status {
    PgTransaction tx(*conn_);
    check_fence();
    if (conn_->exec("SELECT 1 FROM runs WHERE id = $1 FOR UPDATE", {number(run_id)}).size() == 0) {
      return Error::not_found("run " + std::to_string(run_id) + " does not exist");
    }
    conn_->exec(
        "INSERT INTO run_actions (run_id, seq, address, action, ok, message, duration_seconds) "
        "VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM run_actions WHERE run_id = $1), "
        "$2, $3, $4, $5, $6)",
        {number(run_id), text(action.address), text(action.action), number(action.ok ? 1 : 0),
         text(action.message), real(action.duration_seconds)});
    tx.commit();
    return ok_status();
  });
}

Status PgStore::finish_run(const RunRecord& run) {
  std::lock_guard lock(mutex_);
  return pg_guarded("recording the end of run " + std::to_string(run.id), [&]() -> Status {
    PgTransaction tx(*conn_);
    check_fence();
    std::vector<PgParam> params = run_fields(run);
    params.push_back(number(run.id));
    PgRows updated = conn_->exec(
        "UPDATE runs SET trigger = $1, command = $2, started_at = $3, finished_at = $4, "
        "to_add = $5, to_change = $6, to_destroy = $7, to_rotate = $8, failed = $9, "
        "api_calls = $10, duration_seconds = $11, result = $12, message = $13 WHERE id = $14",
        params);
    if (updated.affected() == 0) {
      return Error::not_found("run " + std::to_string(run.id) + " does not exist");
    }
    conn_->exec("DELETE FROM runs WHERE id NOT IN (SELECT id FROM runs ORDER BY id DESC LIMIT $1)",
                {number(kRunHistoryLimit)});
    tx.commit();
    return ok_status();
  });
}

Result<std::vector<RunRecord>> PgStore::runs(int limit) const {
  std::lock_guard lock(mutex_);
  return pg_guarded("reading run history", [&]() -> Result<std::vector<RunRecord>> {
    PgTransaction tx(*conn_, "ISOLATION LEVEL REPEATABLE READ READ ONLY");
    const PgParam sql_limit = limit > 0 ? number(limit) : PgParam{};  // LIMIT NULL: no limit
    std::vector<RunRecord> out;
    std::unordered_map<int64_t, size_t> index;
    PgRows rows = conn_->exec(
        "SELECT id, trigger, command, started_at, finished_at, to_add, to_change, to_destroy, "
        "to_rotate, failed, api_calls, duration_seconds, result, message FROM runs "
        "ORDER BY id DESC LIMIT $1",
        {sql_limit});
    for (int i = 0; i < rows.size(); ++i) {
      RunRecord run;
      run.id = rows.int64(i, 0);
      run.trigger = rows.text(i, 1);
      run.command = rows.text(i, 2);
      run.started_at = time_at(rows, i, 3);
      run.finished_at = optional_time_at(rows, i, 4);
      run.to_add = rows.int32(i, 5);
      run.to_change = rows.int32(i, 6);
      run.to_destroy = rows.int32(i, 7);
      run.to_rotate = rows.int32(i, 8);
      run.failed = rows.int32(i, 9);
      run.api_calls = rows.int32(i, 10);
      run.duration_seconds = rows.real(i, 11);
      // Runs written before results were checked read as interrupted.
      run.result = parse_run_result(rows.text(i, 12)).value_or(RunResult::Interrupted);
      run.message = rows.text(i, 13);
      out.push_back(std::move(run));
      index.emplace(out.back().id, out.size() - 1);
    }
    PgRows actions = conn_->exec(
        "SELECT run_id, address, action, ok, message, duration_seconds FROM run_actions "
        "WHERE run_id IN (SELECT id FROM runs ORDER BY id DESC LIMIT $1) ORDER BY run_id, seq",
        {sql_limit});
    for (int i = 0; i < actions.size(); ++i) {
      auto found = index.find(actions.int64(i, 0));
      if (found == index.end()) continue;
      ActionRecord action;
      action.address = actions.text(i, 1);
      action.action = actions.text(i, 2);
      action.ok = actions.int64(i, 3) != 0;
      action.message = actions.text(i, 4);
      action.duration_seconds = actions.real(i, 5);
      out[found->second].actions.push_back(std::move(action));
    }
    tx.commit();
    return out;
  });
}

}  // namespace tokend::state
