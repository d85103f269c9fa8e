// state/ — what astro-tokend last knew (product.md §5): lineage and serial,
// one row per managed token, the intent journal, run history, and who may
// write. StateStore is the interface; SqliteStore (state/sqlite_store.h) is
// the default backend, a file on local disk with a flock(2) writer lock.
//
// May not: call the API, read specs, or decide anything. Library exceptions
// stop in the backends and come back as Error{Io|Corrupt|Conflict|NotFound|
// Invalid|Unavailable}. Secret values never reach this module; it stores
// only their SHA-256 fingerprint.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/token.h"
#include "state/records.h"
#include "util/result.h"

namespace tokend::state {

// What every backend keeps, and how.
//
// Serial: counts changes to the state a plan is computed from. Each call of
// record_outcome(s), journal_intent and resolve_intent bumps it exactly once,
// in the same transaction as its change. Run history (begin_run,
// record_action, finish_run) is not such state and never bumps it, so
// logging a run never makes a saved plan stale.
//
// Every mutating call is exactly one database transaction: on any failure it
// changes nothing. Failures: Io (file, disk, permissions, connection),
// Unavailable (a database server that cannot be reached right now), Corrupt
// (integrity check, not a database, unreadable row), Conflict (two keys with
// one token id, the database stayed busy beyond its timeout, or this writer
// lost its right to write), NotFound (an intent or run id that does not
// exist), Invalid (a value the schema refuses such as an empty key or id, or
// a database made by a newer astro-tokend). No exception escapes.
//
// Thread-safe. Several processes may open the same state; a WriterLease
// decides which one writes.
class StateStore {
 public:
  // Runs kept by finish_run; older runs and their actions are deleted.
  static constexpr int kRunHistoryLimit = 1000;
  // How long a resolved create intent is kept after it began.
  static constexpr std::chrono::hours kResolvedCreateRetention{24 * 7};

  // Opens the SQLite store at `path` (SqliteStore::open, which states the
  // details); ":memory:" gives a private in-memory store for tests.
  static Result<std::unique_ptr<StateStore>> open(const std::string& path);

  virtual ~StateStore() = default;
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  // Set once when the state is created; never changes.
  virtual std::string lineage() const = 0;
  // Read from the database on each call (another process may have written);
  // when that read fails, the last value this store saw.
  virtual int64_t serial() const = 0;
  // The schema version of the open database (the highest migration applied).
  virtual int schema_version() const = 0;

  // The Astro organization whose tokens this state holds: "" until
  // bind_organization records one. Read from the database on each call.
  virtual Result<std::string> organization_id() const = 0;
  // Records `organization_id` as the state's organization when it has none
  // yet (true), or confirms that it is the state's organization (false).
  // Conflict, changing nothing, when the state belongs to another
  // organization: the message names both ids. Invalid for an empty id. One
  // transaction (a compare-and-set: two processes binding at once agree on
  // one organization); fenced like every write, and it does not bump the
  // serial (no plan depends on it).
  virtual Result<bool> bind_organization(const std::string& organization_id) = 0;

  virtual Result<std::vector<ResourceRecord>> resources() const = 0;  // sorted by key
  virtual Result<std::optional<ResourceRecord>> resource(const std::string& key) const = 0;
  virtual Result<StateSnapshot> snapshot() const = 0;

  // Commits one outcome in its own transaction and bumps the serial: upserts
  // outcome.resource (whose key must equal outcome.key: Invalid otherwise) or
  // deletes outcome.key (a no-op when absent), and deletes the intent
  // outcome.resolved_intent when set (NotFound when it does not exist, and
  // then nothing is committed). Roles are stored as a set: they read back
  // normalized.
  Status record_outcome(const Outcome& outcome) { return record_outcomes({outcome}); }
  // Commits several outcomes in one transaction, in order, and bumps the
  // serial once: all of them or none. For changes that must not be seen
  // half done, such as a replaced token moving to its deposed key while its
  // successor takes the key (commit the successor first: a token id may be
  // held by one key at a time, also between the statements of a
  // transaction). Same checks and failures as record_outcome. An empty list
  // commits nothing and does not bump the serial.
  virtual Status record_outcomes(const std::vector<Outcome>& outcomes) = 0;

  // Journals `intent` (its id, `resolved` and made_token_id are ignored) and
  // returns the new id; ids are never reused. Bumps the serial. Prunes the
  // resolved creates that began more than kResolvedCreateRetention before
  // intent.started_at.
  virtual Result<int64_t> journal_intent(const Intent& intent) = 0;
  // Resolves an intent without touching resources (it came to nothing).
  // Bumps the serial. NotFound when there is no such pending intent.
  //
  // Resolving (here, or by an Outcome's resolved_intent) deletes a rotate
  // intent, and marks a create intent resolved, keeping it with the id of the
  // token it made (the Outcome's resource; "" here) for recent_creates.
  virtual Status resolve_intent(int64_t intent_id) = 0;
  virtual Result<std::vector<Intent>> pending_intents() const = 0;  // oldest first
  // The resolved create intents still kept, oldest first.
  virtual Result<std::vector<Intent>> recent_creates() const = 0;

  // Records a run (run.id and run.actions are ignored) and returns its id.
  virtual Result<int64_t> begin_run(const RunRecord& run) = 0;
  // Appends one action to a run (NotFound when the run does not exist).
  virtual Status record_action(int64_t run_id, const ActionRecord& action) = 0;
  // Overwrites the run row run.id with run's fields (actions are only added by
  // record_action) and prunes history to the newest kRunHistoryLimit runs.
  // NotFound when there is no such run.
  virtual Status finish_run(const RunRecord& run) = 0;
  // At most `limit` runs (all kept runs when limit <= 0), newest first, each
  // with its actions in the order they were recorded.
  virtual Result<std::vector<RunRecord>> runs(int limit) const = 0;

  // Fencing, for a backend shared by several processes: from now on every
  // mutating call checks, in its own transaction, that the writer lease
  // still has `epoch` (WriterLease::epoch()) and has not expired, and fails
  // with Conflict "… lost the writer lease (epoch N)" changing nothing
  // otherwise. 0 (the default) writes unfenced. SQLite ignores it: its
  // writer lock cannot be lost.
  virtual void fence_writes(int64_t epoch) = 0;

 protected:
  StateStore() = default;
};

// The right to write one state, held by one process at a time: the SQLite
// flock (WriterLock) or, on a shared database, a lease. Released on
// destruction and when the holding process dies.
class WriterLease {
 public:
  virtual ~WriterLease() = default;
  WriterLease(const WriterLease&) = delete;
  WriterLease& operator=(const WriterLease&) = delete;

  // Ok while this holder may still write; Error Conflict once it may not
  // (a lease that expired or was taken over), and from then on. Asked before
  // every API write call. Thread-safe.
  virtual Status check() = 0;
  // The fencing epoch a store writing under this lease checks
  // (StateStore::fence_writes); 0 for a lock that cannot be lost.
  virtual int64_t epoch() const { return 0; }

 protected:
  WriterLease() = default;
};

// How long a lease lasts, how often its holder renews it, and how often a
// standby tries to take it ([ha] in the config; retry < renew < lease).
struct LeaseTimings {
  std::chrono::milliseconds lease{15000};
  std::chrono::milliseconds renew{10000};
  std::chrono::milliseconds retry{2000};
};

// A writer lease that can be lost and taken again, for leader election
// between daemons on one shared state. Thread-safe.
class LeaderLease : public WriterLease {
 public:
  // One attempt, never waiting: true when this process now holds the lease
  // (with a new epoch), false when another holder keeps it (holder() names
  // it). A holder that renews keeps it; one whose session is gone loses it
  // at once; one that stopped renewing loses it when it expires.
  // Unavailable when the database cannot be reached.
  virtual Result<bool> try_acquire() = 0;
  // Extends a held lease by LeaseTimings::lease. Conflict when it was lost
  // (taken over since), and from then on; Unavailable when the database
  // cannot be reached (the lease may still be held until deadline()).
  virtual Status renew() = 0;
  // Gives up a held lease so that a standby may take it at once.
  virtual void release() = 0;
  virtual bool held() const = 0;
  // Until when, on this host's monotonic clock, the lease is surely held:
  // the start of the last successful acquire or renew plus the lease.
  virtual std::chrono::steady_clock::time_point deadline() const = 0;
  // The holder last seen (this process when held).
  virtual std::optional<LockHolder> holder() const = 0;
};

// Where a state lives, as the [state] table of the config says.
enum class Backend { Sqlite, Postgres };
struct StoreLocation {
  Backend backend = Backend::Sqlite;
  std::string path;  // Sqlite: the database file, or ":memory:"
  std::string dsn;   // Postgres: a libpq connection string without a password
};

// The Conflict bind_organization answers for a state that belongs to
// `recorded` when asked to bind it to `wanted`.
Error organization_conflict(const std::string& recorded, const std::string& wanted);

// Opens the store at `where`: SqliteStore::open(where.path), or the
// PostgreSQL store for where.dsn. Failures as the backend's open.
Result<std::unique_ptr<StateStore>> open_store(const StoreLocation& where);

// Takes the right to write the state at `where` for `command` (shown to a
// contender), without waiting: Error Conflict naming the holder ("state is
// locked by pid … on host … (command) since …") when another process, or
// another holder in this one, has it; Io when it cannot be taken at all.
// On PostgreSQL the lease is taken with `timings` and kept renewed by a
// thread of its own while the returned object lives.
Result<std::unique_ptr<WriterLease>> acquire_writer(const StoreLocation& where,
                                                    const std::string& command,
                                                    const LeaseTimings& timings = {});

// The leader lease of a shared state, not yet taken (try_acquire). Invalid
// for SQLite, whose daemons do not share a state.
Result<std::unique_ptr<LeaderLease>> open_leader_lease(const StoreLocation& where,
                                                       const std::string& command,
                                                       const LeaseTimings& timings);

}  // namespace tokend::state
