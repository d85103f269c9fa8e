// state/ — what astro-tokend last knew, in SQLite (product.md §5): lineage and
// serial, one row per managed token, the intent journal, run history, and the
// single-writer lock.
//
// May not: call the API, read specs, or decide anything. SQLiteCpp exceptions
// stop here and come back as Error{Io|Corrupt|Conflict|NotFound}. Secret
// values never reach this module; it stores only their SHA-256 fingerprint.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "model/token.h"
#include "state/records.h"
#include "util/result.h"

namespace SQLite {
class Database;
}

namespace tokend::state {

// The SQLite store. Opening applies pending migrations from schema/ in order
// (PRAGMA user_version), sets WAL mode, makes the file mode 0600, runs
// PRAGMA integrity_check (Error Corrupt on failure) and creates the lineage on
// first use.
//
// Serial: counts changes to the state a plan is computed from. Each call of
// record_outcome, journal_intent and resolve_intent bumps it exactly once, in
// the same transaction as its change. Run history (begin_run, record_action,
// finish_run) is not such state and never bumps it, so logging a run never
// makes a saved plan stale.
//
// Every mutating call is exactly one SQLite transaction: on any failure it
// changes nothing. Failures: Io (file, disk, permissions), Corrupt (integrity
// check, not a database, unreadable row), Conflict (two keys with one token
// id, or the database stayed busy beyond the busy timeout), NotFound (an
// intent or run id that does not exist), Invalid (a value the schema refuses
// such as an empty key or id, or a database made by a newer astro-tokend).
// No exception escapes.
//
// Thread-safe: one connection guarded by a mutex. Several processes may open
// the same file; WriterLock decides which one writes.
class StateStore {
 public:
  // Runs kept by finish_run; older runs and their actions are deleted.
  static constexpr int kRunHistoryLimit = 1000;

  // `path` ":memory:" opens a private in-memory database (tests). Otherwise
  // the directory of `path` must exist (it is never created: Io error); the
  // file is created if missing. The file and its -wal/-shm files get mode
  // 0600 whatever the umask. A database whose schema version is newer than
  // this binary knows, or an SQLite database that astro-tokend did not
  // create, is refused (Invalid) and left untouched; one that fails
  // PRAGMA integrity_check, or is not SQLite at all, gives Corrupt.
  static Result<std::unique_ptr<StateStore>> open(const std::string& path);
  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  // Set once when the database is created; never changes.
  std::string lineage() const;
  // Read from the database on each call (another process may have written);
  // when that read fails, the last value this store saw.
  int64_t serial() const;
  // The schema version of the open database (the highest migration applied).
  int schema_version() const;

  Result<std::vector<ResourceRecord>> resources() const;  // sorted by key
  Result<std::optional<ResourceRecord>> resource(const std::string& key) const;
  Result<StateSnapshot> snapshot() const;

  // Commits one outcome in its own transaction and bumps the serial: upserts
  // outcome.resource (whose key must equal outcome.key: Invalid otherwise) or
  // deletes outcome.key (a no-op when absent), and deletes the intent
  // outcome.resolved_intent when set (NotFound when it does not exist, and
  // then nothing is committed). Roles are stored as a set: they read back
  // normalized.
  Status record_outcome(const Outcome& outcome);
  // Commits several outcomes in one transaction, in order, and bumps the
  // serial once: all of them or none. For changes that must not be seen
  // half done, such as a replaced token moving to its deposed key while its
  // successor takes the key (commit the successor first: a token id may be
  // held by one key at a time, also between the statements of a
  // transaction). Same checks and failures as record_outcome. An empty list
  // commits nothing and does not bump the serial.
  Status record_outcomes(const std::vector<Outcome>& outcomes);

  // Journals `intent` (its id is ignored) and returns the new id; ids are never
  // reused. Bumps the serial.
  Result<int64_t> journal_intent(const Intent& intent);
  // Drops an intent without touching resources (it came to nothing). Bumps the
  // serial. NotFound when there is no such intent.
  Status resolve_intent(int64_t intent_id);
  Result<std::vector<Intent>> pending_intents() const;  // oldest first

  // Records a run (run.id and run.actions are ignored) and returns its id.
  Result<int64_t> begin_run(const RunRecord& run);
  // Appends one action to a run (NotFound when the run does not exist).
  Status record_action(int64_t run_id, const ActionRecord& action);
  // Overwrites the run row run.id with run's fields (actions are only added by
  // record_action) and prunes history to the newest kRunHistoryLimit runs.
  // NotFound when there is no such run.
  Status finish_run(const RunRecord& run);
  // At most `limit` runs (all kept runs when limit <= 0), newest first, each
  // with its actions in the order they were recorded.
  Result<std::vector<RunRecord>> runs(int limit) const;

 private:
  explicit StateStore(std::unique_ptr<SQLite::Database> db);
  mutable std::mutex mutex_;
  std::unique_ptr<SQLite::Database> db_;
  std::string lineage_;
  int schema_version_ = 0;
  mutable int64_t last_serial_ = 0;
};

// The single-writer lock of a state database: flock(2) on "<db path>.lock",
// holder details written into that file. Released on destruction or process
// death (so a killed process never leaves a stale lock). The lock belongs to
// the open file description: a child made by fork() without exec shares it;
// exec'd programs do not inherit it (close-on-exec).
class WriterLock {
 public:
  // Fails at once (never waits) with Error Conflict "state is locked by pid …
  // on host … (command) since …" when another holder has it — also another
  // WriterLock of the same process. Io when the lock file cannot be created
  // (e.g. the directory does not exist). The lock file is created with mode
  // 0600. `command` is recorded for the message (newlines become spaces).
  // Not thread-safe per instance; distinct instances are independent.
  static Result<std::unique_ptr<WriterLock>> acquire(const std::string& db_path,
                                                     const std::string& command);
  ~WriterLock();
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;

 private:
  explicit WriterLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace tokend::state
