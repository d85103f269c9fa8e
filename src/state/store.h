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
#include "util/result.h"

namespace SQLite {
class Database;
}

namespace tokend::state {

// One managed token as last recorded.
struct ResourceRecord {
  std::string key;  // address is address_for_key(key)
  std::string id;   // the API token id
  TokenAttrs attrs;
  std::string short_token;
  Timestamp created_at{};
  Timestamp updated_at{};
  Timestamp start_at{};             // start of the current validity window (moves on rotate)
  std::optional<Timestamp> end_at;  // expiry of the current value; nullopt: never expires
  std::string sink_path;            // where the secret was delivered
  std::string sink_sha256;          // fingerprint of the delivered value; "" when never delivered (imported)
  bool rotate_pending = false;      // the current value is unknown (lost in a crash): rotate next run

  std::string address() const { return address_for_key(key); }
  bool operator==(const ResourceRecord&) const = default;
};

// A non-idempotent call about to be made. Journalled before the call, resolved
// in the same transaction that records its outcome; a pending intent after a
// crash or an Ambiguous answer is resolved by the next run.
enum class IntentKind { Create, Rotate };
struct Intent {
  int64_t id = 0;  // assigned by journal_intent
  std::string key;
  IntentKind kind = IntentKind::Create;
  std::string token_id;  // Rotate: the token being rotated; Create: ""
  TokenAttrs attrs;      // Create: what was requested
  std::string sink_path;
  Timestamp started_at{};

  bool operator==(const Intent&) const = default;
};

// The effect of one applied action on state: upsert `resource`, or remove
// `key` when resource is nullopt; resolve `resolved_intent` when set.
struct Outcome {
  std::string key;
  std::optional<ResourceRecord> resource;
  std::optional<int64_t> resolved_intent;
};

// One action of a run, as history shows it.
struct ActionRecord {
  std::string address;
  std::string action;  // "create", "update", "replace", "delete", "rotate", "import", "forget"
  bool ok = true;
  std::string message;  // error description when !ok (never a secret)
  double duration_seconds = 0;
};

struct RunRecord {
  int64_t id = 0;
  std::string trigger;  // "cli", "timer", "config-change", "sighup", "startup"
  std::string command;  // "apply", "plan", "run"
  Timestamp started_at{};
  std::optional<Timestamp> finished_at;
  int to_add = 0, to_change = 0, to_destroy = 0, to_rotate = 0;
  int failed = 0;
  int api_calls = 0;
  double duration_seconds = 0;
  std::string result;  // "ok", "failed", "no-op", "refused"
  std::string message;
  std::vector<ActionRecord> actions;
};

// The SQLite store. Opening applies pending migrations from schema/ in order
// (PRAGMA user_version), sets WAL mode, makes the file mode 0600, runs
// PRAGMA integrity_check (Error Corrupt on failure) and creates the lineage on
// first use. Every mutating call is one transaction that bumps the serial.
// Thread-safe: one connection guarded by a mutex.
class StateStore {
 public:
  // `path` ":memory:" opens a private in-memory database (tests).
  static Result<std::unique_ptr<StateStore>> open(const std::string& path);
  ~StateStore();

  std::string lineage() const;
  int64_t serial() const;

  Result<std::vector<ResourceRecord>> resources() const;  // sorted by key
  Result<std::optional<ResourceRecord>> resource(const std::string& key) const;

  // Commits one outcome in its own transaction and bumps the serial.
  Status record_outcome(const Outcome& outcome);

  Result<int64_t> journal_intent(const Intent& intent);
  // Drops an intent without touching resources (it came to nothing).
  Status resolve_intent(int64_t intent_id);
  Result<std::vector<Intent>> pending_intents() const;

  Result<int64_t> begin_run(const RunRecord& run);
  Status record_action(int64_t run_id, const ActionRecord& action);
  Status finish_run(const RunRecord& run);  // run.id identifies the row
  Result<std::vector<RunRecord>> runs(int limit) const;  // newest first, with actions

 private:
  explicit StateStore(std::unique_ptr<SQLite::Database> db);
  mutable std::mutex mutex_;
  std::unique_ptr<SQLite::Database> db_;
};

// Who holds the writer lock.
struct LockHolder {
  int pid = 0;
  std::string host;
  std::string command;
  Timestamp since{};
  std::string describe() const;  // "pid 123 on host h (apply) since 2026-…Z"
};

// The single-writer lock of a state database: flock(2) on "<db path>.lock",
// holder details written into that file. Released on destruction or process
// death (so a killed process never leaves a stale lock).
class WriterLock {
 public:
  // Fails at once (never waits) with Error Conflict naming the holder.
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
