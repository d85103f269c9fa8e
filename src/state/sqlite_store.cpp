#include "state/sqlite_store.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "state/migrations.h"

namespace tokend::state {

namespace {

constexpr int kBusyTimeoutMs = 5000;
constexpr mode_t kPrivateMode = 0600;

// A stored row that cannot be turned back into a value.
class CorruptRow : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

Error from_sqlite(const SQLite::Exception& e, std::string_view doing) {
  ErrorKind kind = ErrorKind::Io;
  switch (e.getErrorCode()) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      kind = ErrorKind::Corrupt;
      break;
    case SQLITE_CONSTRAINT:
      // Two rows claiming one key or token id conflict; any other constraint
      // (CHECK, NOT NULL) means a value that may not be stored.
      kind = e.getExtendedErrorCode() == SQLITE_CONSTRAINT_UNIQUE ||
                     e.getExtendedErrorCode() == SQLITE_CONSTRAINT_PRIMARYKEY
                 ? ErrorKind::Conflict
                 : ErrorKind::Invalid;
      break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      kind = ErrorKind::Conflict;
      break;
    default:
      break;
  }
  return Error{kind, "state database: " + std::string(doing) + ": " + e.what()};
}

// Runs `body` (returning a Result) and turns whatever it throws into an Error.
template <typename Body>
auto guarded(std::string_view doing, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const SQLite::Exception& e) {
    return from_sqlite(e, doing);
  } catch (const CorruptRow& e) {
    return Error::corrupt("state database: " + std::string(doing) + ": " + e.what());
  } catch (const std::exception& e) {
    return Error::internal("state database: " + std::string(doing) + ": " + e.what());
  }
}

std::string errno_text(int err) { return std::strerror(err); }

int64_t to_seconds(Timestamp t) { return static_cast<int64_t>(t.time_since_epoch().count()); }
Timestamp from_seconds(int64_t s) { return Timestamp{std::chrono::seconds{s}}; }

void bind_optional_int(SQLite::Statement& stmt, int index, const std::optional<int>& value) {
  if (value) {
    stmt.bind(index, *value);
  } else {
    stmt.bind(index);
  }
}

void bind_optional_time(SQLite::Statement& stmt, int index, const std::optional<Timestamp>& value) {
  if (value) {
    stmt.bind(index, to_seconds(*value));
  } else {
    stmt.bind(index);
  }
}

std::optional<int> optional_int(const SQLite::Column& column) {
  if (column.isNull()) return std::nullopt;
  return column.getInt();
}

std::optional<Timestamp> optional_time(const SQLite::Column& column) {
  if (column.isNull()) return std::nullopt;
  return from_seconds(column.getInt64());
}

EntityType entity_type_column(const SQLite::Column& column) {
  std::string text = column.getString();
  auto type = parse_entity_type(text);
  if (!type) throw CorruptRow("unknown entity type '" + text + "' in column " + column.getName());
  return *type;
}

EntityType token_type_column(const SQLite::Column& column) {
  std::string text = column.getString();
  auto type = parse_token_type(text);
  if (!type) throw CorruptRow("unknown token type '" + text + "' in column " + column.getName());
  return *type;
}

TokenKind token_kind_column(const SQLite::Column& column) {
  std::string text = column.getString();
  auto kind = parse_token_kind(text);
  if (!kind) throw CorruptRow("unknown token kind '" + text + "' in column " + column.getName());
  return *kind;
}

Role role_row(SQLite::Statement& row) {
  return Role{row.getColumn(1).getString(), row.getColumn(2).getString(),
              entity_type_column(row.getColumn(3)), row.getColumn(4).getString()};
}

std::string_view intent_kind_text(IntentKind kind) {
  return kind == IntentKind::Create ? "create" : "rotate";
}

IntentKind intent_kind_column(const SQLite::Column& column) {
  std::string text = column.getString();
  if (text == "create") return IntentKind::Create;
  if (text == "rotate") return IntentKind::Rotate;
  throw CorruptRow("unknown intent kind '" + text + "'");
}

int64_t bump_serial(SQLite::Database& db) {
  db.exec("UPDATE meta SET serial = serial + 1 WHERE id = 1");
  return db.execAndGet("SELECT serial FROM meta WHERE id = 1").getInt64();
}

// --- resources ---------------------------------------------------------------

constexpr const char* kResourceColumns =
    "key, id, name, description, type, role, expiry_period_in_days, short_token, created_at, "
    "updated_at, start_at, end_at, sink_path, sink_sha256, rotate_pending, delivery_pending, kind, "
    "last_rotated_at";

ResourceRecord resource_row(SQLite::Statement& row) {
  ResourceRecord r;
  r.key = row.getColumn(0).getString();
  r.id = row.getColumn(1).getString();
  r.attrs.name = row.getColumn(2).getString();
  r.attrs.description = row.getColumn(3).getString();
  r.attrs.type = token_type_column(row.getColumn(4));
  r.attrs.role = row.getColumn(5).getString();
  r.attrs.expiry_period_in_days = optional_int(row.getColumn(6));
  r.short_token = row.getColumn(7).getString();
  r.created_at = from_seconds(row.getColumn(8).getInt64());
  r.updated_at = from_seconds(row.getColumn(9).getInt64());
  r.start_at = from_seconds(row.getColumn(10).getInt64());
  r.end_at = optional_time(row.getColumn(11));
  r.sink_path = row.getColumn(12).getString();
  r.sink_sha256 = row.getColumn(13).getString();
  r.rotate_pending = row.getColumn(14).getInt() != 0;
  r.delivery_pending = row.getColumn(15).getInt() != 0;
  r.attrs.kind = token_kind_column(row.getColumn(16));
  r.last_rotated_at = optional_time(row.getColumn(17));
  return r;
}

// Reads resources (all, or the one with `key`), roles included, sorted by key.
std::vector<ResourceRecord> read_resources(SQLite::Database& db, const std::string* key) {
  std::vector<ResourceRecord> out;
  if (!key)
    out.reserve(static_cast<size_t>(db.execAndGet("SELECT count(*) FROM resources").getInt64()));
  std::unordered_map<std::string, size_t> index;
  index.reserve(out.capacity());
  {
    SQLite::Statement rows(db, std::string("SELECT ") + kResourceColumns + " FROM resources" +
                                   (key ? " WHERE key = ?" : "") + " ORDER BY key");
    if (key) rows.bind(1, *key);
    while (rows.executeStep()) {
      out.push_back(resource_row(rows));
      index.emplace(out.back().key, out.size() - 1);
    }
  }
  SQLite::Statement roles(db, std::string("SELECT resource_key, role, entity_id, entity_type, "
                                          "deployment_id FROM resource_roles") +
                                  (key ? " WHERE resource_key = ?" : ""));
  if (key) roles.bind(1, *key);
  while (roles.executeStep()) {
    auto found = index.find(roles.getColumn(0).getString());
    if (found == index.end()) throw CorruptRow("a role names a resource that does not exist");
    out[found->second].attrs.roles.push_back(role_row(roles));
  }
  for (ResourceRecord& r : out) r.attrs.roles = normalize_roles(std::move(r.attrs.roles));
  return out;
}

void upsert_resource(SQLite::Database& db, const ResourceRecord& r) {
  SQLite::Statement upsert(
      db, std::string("INSERT INTO resources (") + kResourceColumns +
              ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
              "ON CONFLICT (key) DO UPDATE SET id = excluded.id, name = excluded.name, "
              "description = excluded.description, type = excluded.type, role = excluded.role, "
              "expiry_period_in_days = excluded.expiry_period_in_days, "
              "short_token = excluded.short_token, created_at = excluded.created_at, "
              "updated_at = excluded.updated_at, start_at = excluded.start_at, "
              "end_at = excluded.end_at, sink_path = excluded.sink_path, "
              "sink_sha256 = excluded.sink_sha256, rotate_pending = excluded.rotate_pending, "
              "delivery_pending = excluded.delivery_pending, kind = excluded.kind, "
              "last_rotated_at = excluded.last_rotated_at");
  upsert.bind(1, r.key);
  upsert.bind(2, r.id);
  upsert.bind(3, r.attrs.name);
  upsert.bind(4, r.attrs.description);
  upsert.bind(5, std::string(to_string(r.attrs.type)));
  upsert.bind(6, r.attrs.role);
  bind_optional_int(upsert, 7, r.attrs.expiry_period_in_days);
  upsert.bind(8, r.short_token);
  upsert.bind(9, to_seconds(r.created_at));
  upsert.bind(10, to_seconds(r.updated_at));
  upsert.bind(11, to_seconds(r.start_at));
  bind_optional_time(upsert, 12, r.end_at);
  upsert.bind(13, r.sink_path);
  upsert.bind(14, r.sink_sha256);
  upsert.bind(15, r.rotate_pending ? 1 : 0);
  upsert.bind(16, r.delivery_pending ? 1 : 0);
  upsert.bind(17, std::string(to_string(r.attrs.kind)));
  bind_optional_time(upsert, 18, r.last_rotated_at);
  upsert.exec();

  SQLite::Statement clear(db, "DELETE FROM resource_roles WHERE resource_key = ?");
  clear.bind(1, r.key);
  clear.exec();
  SQLite::Statement insert(
      db,
      "INSERT INTO resource_roles (resource_key, role, entity_id, entity_type, deployment_id) "
      "VALUES (?, ?, ?, ?, ?)");
  for (const Role& role : normalize_roles(r.attrs.roles)) {
    insert.bind(1, r.key);
    insert.bind(2, role.role);
    insert.bind(3, role.entity_id);
    insert.bind(4, std::string(to_string(role.entity_type)));
    insert.bind(5, role.deployment_id);
    insert.exec();
    insert.reset();
  }
}

// --- intents -------------------------------------------------------------------

// Reads the pending intents, or the resolved ones, roles included, oldest first.
std::vector<Intent> read_intents(SQLite::Database& db, bool resolved) {
  std::vector<Intent> out;
  std::unordered_map<int64_t, size_t> index;
  {
    SQLite::Statement rows(db,
                           "SELECT id, key, kind, token_id, name, description, type, role, "
                           "expiry_period_in_days, sink_path, started_at, settle_after, resolved, "
                           "made_token_id, token_kind FROM intents WHERE resolved = ? ORDER BY id");
    rows.bind(1, resolved ? 1 : 0);
    while (rows.executeStep()) {
      Intent i;
      i.id = rows.getColumn(0).getInt64();
      i.key = rows.getColumn(1).getString();
      i.kind = intent_kind_column(rows.getColumn(2));
      i.token_id = rows.getColumn(3).getString();
      i.attrs.name = rows.getColumn(4).getString();
      i.attrs.description = rows.getColumn(5).getString();
      i.attrs.type = token_type_column(rows.getColumn(6));
      i.attrs.role = rows.getColumn(7).getString();
      i.attrs.expiry_period_in_days = optional_int(rows.getColumn(8));
      i.sink_path = rows.getColumn(9).getString();
      i.started_at = from_seconds(rows.getColumn(10).getInt64());
      i.settle_after = from_seconds(rows.getColumn(11).getInt64());
      i.resolved = rows.getColumn(12).getInt() != 0;
      i.made_token_id = rows.getColumn(13).getString();
      i.attrs.kind = token_kind_column(rows.getColumn(14));
      out.push_back(std::move(i));
      index.emplace(out.back().id, out.size() - 1);
    }
  }
  SQLite::Statement roles(db,
                          "SELECT intent_id, role, entity_id, entity_type, deployment_id "
                          "FROM intent_roles "
                          "WHERE intent_id IN (SELECT id FROM intents WHERE resolved = ?)");
  roles.bind(1, resolved ? 1 : 0);
  while (roles.executeStep()) {
    auto found = index.find(roles.getColumn(0).getInt64());
    if (found == index.end()) throw CorruptRow("a role names an intent that does not exist");
    out[found->second].attrs.roles.push_back(role_row(roles));
  }
  for (Intent& i : out) i.attrs.roles = normalize_roles(std::move(i.attrs.roles));
  return out;
}

// Resolves the pending intent `id`: deletes a rotate intent, marks a create
// intent resolved with the token it made. False when there is no such
// pending intent.
bool settle_intent(SQLite::Database& db, int64_t id, const std::string& made_token_id) {
  SQLite::Statement kind(db, "SELECT kind FROM intents WHERE id = ? AND resolved = 0");
  kind.bind(1, id);
  if (!kind.executeStep()) return false;
  if (intent_kind_column(kind.getColumn(0)) == IntentKind::Rotate) {
    SQLite::Statement remove(db, "DELETE FROM intents WHERE id = ?");
    remove.bind(1, id);
    remove.exec();
    return true;
  }
  SQLite::Statement mark(db, "UPDATE intents SET resolved = 1, made_token_id = ? WHERE id = ?");
  mark.bind(1, made_token_id);
  mark.bind(2, id);
  mark.exec();
  return true;
}

// --- runs ------------------------------------------------------------------------

void bind_run_fields(SQLite::Statement& stmt, const RunRecord& run) {
  stmt.bind(1, run.trigger);
  stmt.bind(2, run.command);
  stmt.bind(3, to_seconds(run.started_at));
  bind_optional_time(stmt, 4, run.finished_at);
  stmt.bind(5, run.to_add);
  stmt.bind(6, run.to_change);
  stmt.bind(7, run.to_destroy);
  stmt.bind(8, run.to_rotate);
  stmt.bind(9, run.failed);
  stmt.bind(10, run.api_calls);
  stmt.bind(11, run.duration_seconds);
  stmt.bind(12, std::string(to_string(run.result)));
  stmt.bind(13, run.message);
}

// --- opening -------------------------------------------------------------------------

// Checks that the directory exists and creates the database file with mode
// 0600 (whatever the umask) when it is missing. An existing file is left as
// it is until it has passed the checks of open() (see restrict_modes).
Status prepare_file(const std::string& path) {
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = ".";
  struct stat dir_stat {};
  if (::stat(dir.c_str(), &dir_stat) != 0) {
    return Error::io("state directory " + dir.string() +
                     " does not exist or is not accessible: " + errno_text(errno));
  }
  if (!S_ISDIR(dir_stat.st_mode)) {
    return Error::io("state directory " + dir.string() + " is not a directory");
  }

  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, kPrivateMode);
  if (fd >= 0) {
    const bool private_mode = ::fchmod(fd, kPrivateMode) == 0;
    const int err = errno;
    ::close(fd);
    if (!private_mode) {
      return Error::io("cannot make state database " + path + " mode 0600: " + errno_text(err));
    }
    return ok_status();
  }
  if (errno != EEXIST) {
    return Error::io("cannot create state database " + path + ": " + errno_text(errno));
  }
  struct stat file_stat {};
  if (::stat(path.c_str(), &file_stat) != 0) {
    return Error::io("cannot open state database " + path + ": " + errno_text(errno));
  }
  if (!S_ISREG(file_stat.st_mode)) {
    return Error::io("state database " + path + " is not a regular file");
  }
  return ok_status();
}

// Gives the database and its -wal/-shm files mode 0600 (an older file may
// have been made with another mode). SQLite creates -wal and -shm with the
// mode of the database file, whatever the umask.
Status restrict_modes(const std::string& path) {
  for (const std::string& file : {path, path + "-wal", path + "-shm"}) {
    struct stat file_stat {};
    if (::stat(file.c_str(), &file_stat) != 0) continue;  // absent: SQLite creates it later
    if ((file_stat.st_mode & 07777) != kPrivateMode && ::chmod(file.c_str(), kPrivateMode) != 0) {
      return Error::io("cannot make " + file + " mode 0600: " + errno_text(errno));
    }
  }
  return ok_status();
}

int user_version(SQLite::Database& db) { return db.execAndGet("PRAGMA user_version").getInt(); }

// Applies each pending migration in its own IMMEDIATE transaction, which
// re-reads user_version so that two processes opening a new file at once do
// not both apply a migration.
Status migrate(SQLite::Database& db, const std::string& path) {
  for (const Migration& migration : schema_migrations()) {
    if (user_version(db) >= migration.version) continue;
    std::string doing = "applying migration " + std::string(migration.file_name) + " to " + path;
    Status applied = guarded(doing, [&]() -> Status {
      SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
      if (user_version(db) >= migration.version) return ok_status();
      db.exec(std::string(migration.sql));
      db.exec("PRAGMA user_version = " + std::to_string(migration.version));
      tx.commit();
      return ok_status();
    });
    if (!applied) return applied;
  }
  return ok_status();
}

}  // namespace

// --- SqliteStore ------------------------------------------------------------------------

SqliteStore::SqliteStore(std::unique_ptr<SQLite::Database> db) : db_(std::move(db)) {}
SqliteStore::~SqliteStore() = default;

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& path) {
  if (path.empty()) return Error::invalid("the state database path is empty");
  const bool in_memory = path == ":memory:";
  if (!in_memory) {
    Status prepared = prepare_file(path);
    if (!prepared) return prepared.error();
  }
  const int latest = schema_migrations().empty() ? 0 : schema_migrations().back().version;

  std::unique_ptr<SQLite::Database> db;
  Status opened = guarded("opening " + path, [&]() -> Status {
    // The file exists already (prepare_file), so SQLite never creates it with
    // its own mode; only :memory: needs OPEN_CREATE.
    db = std::make_unique<SQLite::Database>(
        path, SQLite::OPEN_READWRITE | (in_memory ? SQLite::OPEN_CREATE : 0), kBusyTimeoutMs);
    db->exec("PRAGMA foreign_keys = ON");
    const int version = user_version(*db);  // fails with SQLITE_NOTADB for a non-SQLite file
    if (version > latest) {
      return Error::invalid("state database " + path + " has schema version " +
                            std::to_string(version) + ", newer than this astro-tokend knows (" +
                            std::to_string(latest) + "); use a newer astro-tokend");
    }
    if (version == 0) {
      const int objects = db->execAndGet("SELECT count(*) FROM sqlite_schema").getInt();
      if (objects > 0) {
        return Error::invalid("state database " + path +
                              " is an SQLite database that astro-tokend did not create");
      }
    }
    // Only the first problem: enough to say what is wrong, cheap on a bad file.
    std::string first_problem = db->execAndGet("PRAGMA integrity_check(1)").getString();
    if (first_problem != "ok") {
      return Error::corrupt("state database " + path +
                            " failed its integrity check: " + first_problem);
    }
    if (!in_memory) {
      Status restricted = restrict_modes(path);
      if (!restricted) return restricted;
    }
    std::string mode = db->execAndGet("PRAGMA journal_mode = WAL").getString();
    if (mode != "wal" && !(in_memory && mode == "memory")) {
      return Error::io("state database " + path + " cannot use WAL mode (journal mode is " + mode +
                       ")");
    }
    db->exec("PRAGMA synchronous = FULL");
    return ok_status();
  });
  if (!opened) return opened.error();

  Status migrated = migrate(*db, path);
  if (!migrated) return migrated.error();

  std::unique_ptr<SqliteStore> store(new SqliteStore(std::move(db)));
  Status loaded = guarded("reading the lineage of " + path, [&]() -> Status {
    SQLite::Statement meta(*store->db_, "SELECT lineage, serial FROM meta WHERE id = 1");
    if (!meta.executeStep()) throw CorruptRow("the meta row is missing");
    store->lineage_ = meta.getColumn(0).getString();
    store->last_serial_ = meta.getColumn(1).getInt64();
    store->schema_version_ = user_version(*store->db_);
    return ok_status();
  });
  if (!loaded) return loaded.error();
  return store;
}

std::string SqliteStore::lineage() const { return lineage_; }

int SqliteStore::schema_version() const { return schema_version_; }

int64_t SqliteStore::serial() const {
  std::lock_guard lock(mutex_);
  try {
    last_serial_ = db_->execAndGet("SELECT serial FROM meta WHERE id = 1").getInt64();
  } catch (const std::exception&) {
    // Keep the last value seen; the next read or write reports the failure.
  }
  return last_serial_;
}

Result<std::string> SqliteStore::organization_id() const {
  std::lock_guard lock(mutex_);
  return guarded("reading the organization of the state", [&]() -> Result<std::string> {
    return db_->execAndGet("SELECT organization_id FROM meta WHERE id = 1").getString();
  });
}

Result<bool> SqliteStore::bind_organization(const std::string& organization_id) {
  if (organization_id.empty()) return Error::invalid("an empty organization id");
  std::lock_guard lock(mutex_);
  return guarded("recording the organization of the state", [&]() -> Result<bool> {
    SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    std::string recorded =
        db_->execAndGet("SELECT organization_id FROM meta WHERE id = 1").getString();
    if (recorded == organization_id) return false;
    if (!recorded.empty()) return organization_conflict(recorded, organization_id);
    SQLite::Statement bind(*db_, "UPDATE meta SET organization_id = ? WHERE id = 1");
    bind.bind(1, organization_id);
    bind.exec();
    tx.commit();
    return true;
  });
}

Result<std::vector<ResourceRecord>> SqliteStore::resources() const {
  std::lock_guard lock(mutex_);
  return guarded("reading resources", [&]() -> Result<std::vector<ResourceRecord>> {
    SQLite::Transaction tx(*db_);
    auto out = read_resources(*db_, nullptr);
    tx.commit();
    return out;
  });
}

Result<std::optional<ResourceRecord>> SqliteStore::resource(const std::string& key) const {
  std::lock_guard lock(mutex_);
  return guarded("reading resource " + key, [&]() -> Result<std::optional<ResourceRecord>> {
    SQLite::Transaction tx(*db_);
    auto found = read_resources(*db_, &key);
    tx.commit();
    if (found.empty()) return std::optional<ResourceRecord>{};
    return std::optional<ResourceRecord>{std::move(found.front())};
  });
}

Result<StateSnapshot> SqliteStore::snapshot() const {
  std::lock_guard lock(mutex_);
  return guarded("reading the state", [&]() -> Result<StateSnapshot> {
    SQLite::Transaction tx(*db_);
    StateSnapshot snap;
    snap.lineage = lineage_;
    snap.serial = db_->execAndGet("SELECT serial FROM meta WHERE id = 1").getInt64();
    snap.resources = read_resources(*db_, nullptr);
    tx.commit();
    last_serial_ = snap.serial;
    return snap;
  });
}

Status SqliteStore::record_outcomes(const std::vector<Outcome>& outcomes) {
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
  return guarded("recording the outcome for " + addresses, [&]() -> Status {
    SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    for (const Outcome& outcome : outcomes) {
      if (outcome.resource) {
        upsert_resource(*db_, *outcome.resource);
      } else {
        SQLite::Statement remove(*db_, "DELETE FROM resources WHERE key = ?");
        remove.bind(1, outcome.key);
        remove.exec();
      }
      if (outcome.resolved_intent) {
        if (!settle_intent(*db_, *outcome.resolved_intent,
                           outcome.resource ? outcome.resource->id : std::string())) {
          return Error::not_found("intent " + std::to_string(*outcome.resolved_intent) +
                                  " does not exist");
        }
      }
    }
    int64_t serial = bump_serial(*db_);
    tx.commit();
    last_serial_ = serial;
    return ok_status();
  });
}

Result<int64_t> SqliteStore::journal_intent(const Intent& intent) {
  if (intent.key.empty()) return Error::invalid("an intent without a key");
  std::lock_guard lock(mutex_);
  return guarded(
      "journalling an intent for " + address_for_key(intent.key), [&]() -> Result<int64_t> {
        SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
        SQLite::Statement insert(
            *db_,
            "INSERT INTO intents (key, kind, token_id, name, description, type, role, "
            "expiry_period_in_days, sink_path, started_at, settle_after, token_kind) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
        insert.bind(1, intent.key);
        insert.bind(2, std::string(intent_kind_text(intent.kind)));
        insert.bind(3, intent.token_id);
        insert.bind(4, intent.attrs.name);
        insert.bind(5, intent.attrs.description);
        insert.bind(6, std::string(to_string(intent.attrs.type)));
        insert.bind(7, intent.attrs.role);
        bind_optional_int(insert, 8, intent.attrs.expiry_period_in_days);
        insert.bind(9, intent.sink_path);
        insert.bind(10, to_seconds(intent.started_at));
        insert.bind(11, to_seconds(intent.settle_after));
        insert.bind(12, std::string(to_string(intent.attrs.kind)));
        insert.exec();
        const int64_t id = db_->getLastInsertRowid();
        SQLite::Statement prune(*db_, "DELETE FROM intents WHERE resolved = 1 AND started_at < ?");
        prune.bind(1, to_seconds(intent.started_at - kResolvedCreateRetention));
        prune.exec();

        SQLite::Statement role_insert(
            *db_,
            "INSERT INTO intent_roles (intent_id, role, entity_id, entity_type, deployment_id) "
            "VALUES (?, ?, ?, ?, ?)");
        for (const Role& role : normalize_roles(intent.attrs.roles)) {
          role_insert.bind(1, id);
          role_insert.bind(2, role.role);
          role_insert.bind(3, role.entity_id);
          role_insert.bind(4, std::string(to_string(role.entity_type)));
          role_insert.bind(5, role.deployment_id);
          role_insert.exec();
          role_insert.reset();
        }
        int64_t serial = bump_serial(*db_);
        tx.commit();
        last_serial_ = serial;
        return id;
      });
}

Status SqliteStore::resolve_intent(int64_t intent_id) {
  std::lock_guard lock(mutex_);
  return guarded("resolving intent " + std::to_string(intent_id), [&]() -> Status {
    SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    if (!settle_intent(*db_, intent_id, "")) {
      return Error::not_found("intent " + std::to_string(intent_id) + " does not exist");
    }
    int64_t serial = bump_serial(*db_);
    tx.commit();
    last_serial_ = serial;
    return ok_status();
  });
}

Result<std::vector<Intent>> SqliteStore::pending_intents() const {
  std::lock_guard lock(mutex_);
  return guarded("reading pending intents", [&]() -> Result<std::vector<Intent>> {
    SQLite::Transaction tx(*db_);
    auto out = read_intents(*db_, false);
    tx.commit();
    return out;
  });
}

Result<std::vector<Intent>> SqliteStore::recent_creates() const {
  std::lock_guard lock(mutex_);
  return guarded("reading resolved creates", [&]() -> Result<std::vector<Intent>> {
    SQLite::Transaction tx(*db_);
    auto out = read_intents(*db_, true);
    tx.commit();
    return out;
  });
}

Result<int64_t> SqliteStore::begin_run(const RunRecord& run) {
  std::lock_guard lock(mutex_);
  return guarded("recording the start of a run", [&]() -> Result<int64_t> {
    SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    SQLite::Statement insert(*db_,
                             "INSERT INTO runs (trigger, command, started_at, finished_at, to_add, "
                             "to_change, to_destroy, to_rotate, failed, api_calls, "
                             "duration_seconds, result, message) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    bind_run_fields(insert, run);
    insert.exec();
    const int64_t id = db_->getLastInsertRowid();
    tx.commit();
    return id;
  });
}

Status SqliteStore::record_action(int64_t run_id, const ActionRecord& action) {
  std::lock_guard lock(mutex_);
  return guarded("recording an action of run " + std::to_string(run_id), [&]() -> Status {
    SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    SQLite::Statement exists(*db_, "SELECT 1 FROM runs WHERE id = ?");
    exists.bind(1, run_id);
    if (!exists.executeStep()) {
      return Error::not_found("run " + std::to_string(run_id) + " does not exist");
    }
    SQLite::Statement insert(
        *db_,
        "INSERT INTO run_actions (run_id, seq, address, action, ok, message, duration_seconds) "
        "VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM run_actions WHERE run_id = ?1), "
        "?2, ?3, ?4, ?5, ?6)");
    insert.bind(1, run_id);
    insert.bind(2, action.address);
    insert.bind(3, action.action);
    insert.bind(4, action.ok ? 1 : 0);
    insert.bind(5, action.message);
    insert.bind(6, action.duration_seconds);
    insert.exec();
    tx.commit();
    return ok_status();
  });
}

Status SqliteStore::finish_run(const RunRecord& run) {
  std::lock_guard lock(mutex_);
  return guarded("recording the end of run " + std::to_string(run.id), [&]() -> Status {
    SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    SQLite::Statement update(*db_,
                             "UPDATE runs SET trigger = ?, command = ?, started_at = ?, "
                             "finished_at = ?, to_add = ?, to_change = ?, to_destroy = ?, "
                             "to_rotate = ?, failed = ?, api_calls = ?, duration_seconds = ?, "
                             "result = ?, message = ? WHERE id = ?");
    bind_run_fields(update, run);
    update.bind(14, run.id);
    if (update.exec() == 0) {
      return Error::not_found("run " + std::to_string(run.id) + " does not exist");
    }
    SQLite::Statement prune(*db_,
                            "DELETE FROM runs WHERE id NOT IN "
                            "(SELECT id FROM runs ORDER BY id DESC LIMIT ?)");
    prune.bind(1, kRunHistoryLimit);
    prune.exec();
    tx.commit();
    return ok_status();
  });
}

Result<std::vector<RunRecord>> SqliteStore::runs(int limit) const {
  std::lock_guard lock(mutex_);
  return guarded("reading run history", [&]() -> Result<std::vector<RunRecord>> {
    SQLite::Transaction tx(*db_);
    const int64_t sql_limit = limit > 0 ? limit : -1;  // LIMIT -1: no limit
    std::vector<RunRecord> out;
    std::unordered_map<int64_t, size_t> index;
    {
      SQLite::Statement rows(
          *db_,
          "SELECT id, trigger, command, started_at, finished_at, to_add, "
          "to_change, to_destroy, to_rotate, failed, api_calls, "
          "duration_seconds, result, message FROM runs ORDER BY id DESC LIMIT ?");
      rows.bind(1, sql_limit);
      while (rows.executeStep()) {
        RunRecord run;
        run.id = rows.getColumn(0).getInt64();
        run.trigger = rows.getColumn(1).getString();
        run.command = rows.getColumn(2).getString();
        run.started_at = from_seconds(rows.getColumn(3).getInt64());
        run.finished_at = optional_time(rows.getColumn(4));
        run.to_add = rows.getColumn(5).getInt();
        run.to_change = rows.getColumn(6).getInt();
        run.to_destroy = rows.getColumn(7).getInt();
        run.to_rotate = rows.getColumn(8).getInt();
        run.failed = rows.getColumn(9).getInt();
        run.api_calls = rows.getColumn(10).getInt();
        run.duration_seconds = rows.getColumn(11).getDouble();
        // Runs written before results were checked ("" or "running" while in
        // progress) read back as what they are now: interrupted.
        run.result =
            parse_run_result(rows.getColumn(12).getString()).value_or(RunResult::Interrupted);
        run.message = rows.getColumn(13).getString();
        out.push_back(std::move(run));
        index.emplace(out.back().id, out.size() - 1);
      }
    }
    SQLite::Statement actions(
        *db_,
        "SELECT run_id, address, action, ok, message, duration_seconds "
        "FROM run_actions WHERE run_id IN "
        "(SELECT id FROM runs ORDER BY id DESC LIMIT ?) ORDER BY run_id, seq");
    actions.bind(1, sql_limit);
    while (actions.executeStep()) {
      auto found = index.find(actions.getColumn(0).getInt64());
      if (found == index.end()) continue;
      ActionRecord action;
      action.address = actions.getColumn(1).getString();
      action.action = actions.getColumn(2).getString();
      action.ok = actions.getColumn(3).getInt() != 0;
      action.message = actions.getColumn(4).getString();
      action.duration_seconds = actions.getColumn(5).getDouble();
      out[found->second].actions.push_back(std::move(action));
    }
    tx.commit();
    return out;
  });
}

}  // namespace tokend::state
