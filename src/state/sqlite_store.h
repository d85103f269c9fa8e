// The SQLite backend of state/ (store.h states the module's contract): a
// file on local disk through SQLiteCpp, and its flock(2) writer lock.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "state/store.h"

namespace SQLite {
class Database;
}

namespace tokend::state {

// Opening applies pending migrations from schema/ in order (PRAGMA
// user_version), sets WAL mode, makes the file mode 0600, runs
// PRAGMA integrity_check (Error Corrupt on failure) and creates the lineage on
// first use. Every mutating call is one IMMEDIATE transaction; Conflict when
// the database stays busy beyond the busy timeout.
//
// Thread-safe: one connection guarded by a mutex. Several processes may open
// the same file; WriterLock decides which one writes.
class SqliteStore final : public StateStore {
 public:
  // `path` ":memory:" opens a private in-memory database (tests). Otherwise
  // the directory of `path` must exist (it is never created: Io error); the
  // file is created if missing. The file and its -wal/-shm files get mode
  // 0600 whatever the umask. A database whose schema version is newer than
  // this binary knows, or an SQLite database that astro-tokend did not
  // create, is refused (Invalid) and left untouched; one that fails
  // PRAGMA integrity_check, or is not SQLite at all, gives Corrupt.
  static Result<std::unique_ptr<SqliteStore>> open(const std::string& path);
  ~SqliteStore() override;

  std::string lineage() const override;
  int64_t serial() const override;
  int schema_version() const override;
  Result<std::string> organization_id() const override;
  Result<bool> bind_organization(const std::string& organization_id) override;

  Result<std::vector<ResourceRecord>> resources() const override;
  Result<std::optional<ResourceRecord>> resource(const std::string& key) const override;
  Result<StateSnapshot> snapshot() const override;

  Status record_outcomes(const std::vector<Outcome>& outcomes) override;
  Result<int64_t> journal_intent(const Intent& intent) override;
  Status resolve_intent(int64_t intent_id) override;
  Result<std::vector<Intent>> pending_intents() const override;
  Result<std::vector<Intent>> recent_creates() const override;

  Result<int64_t> begin_run(const RunRecord& run) override;
  Status record_action(int64_t run_id, const ActionRecord& action) override;
  Status finish_run(const RunRecord& run) override;
  Result<std::vector<RunRecord>> runs(int limit) const override;
  void fence_writes(int64_t) override {}

 private:
  explicit SqliteStore(std::unique_ptr<SQLite::Database> db);
  mutable std::mutex mutex_;
  std::unique_ptr<SQLite::Database> db_;
  std::string lineage_;
  int schema_version_ = 0;
  mutable int64_t last_serial_ = 0;
};

// The single-writer lock of an SQLite state: flock(2) on "<db path>.lock",
// holder details written into that file. Released on destruction or process
// death (so a killed process never leaves a stale lock), and never lost
// while held: check() is always ok. The lock belongs to the open file
// description: a child made by fork() without exec shares it; exec'd
// programs do not inherit it (close-on-exec).
class WriterLock final : public WriterLease {
 public:
  // Fails at once (never waits) with Error Conflict "state is locked by pid …
  // on host … (command) since …" when another holder has it — also another
  // WriterLock of the same process. Io when the lock file cannot be created
  // (e.g. the directory does not exist). The lock file is created with mode
  // 0600. `command` is recorded for the message (newlines become spaces).
  // Not thread-safe per instance; distinct instances are independent.
  static Result<std::unique_ptr<WriterLock>> acquire(const std::string& db_path,
                                                     const std::string& command);
  ~WriterLock() override;

  Status check() override { return ok_status(); }

 private:
  explicit WriterLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace tokend::state
