// The PostgreSQL backend of state/ (store.h states the module's contract): a
// database shared by several hosts, through libpq. Its writer lease is in
// state/pg_lease.h.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "state/store.h"

namespace tokend::state {

class PgConnection;

// Opening connects (PgConnection::open: the password from a passfile or the
// credential astro-tokend-postgres, never the dsn), applies pending
// migrations from schema/postgres/ in order, each in one transaction under a
// transaction-level advisory lock so that processes opening a new database
// at once apply each migration once, and reads the lineage (created by the
// first migration).
//
// Every mutating call is one transaction; a lost connection (the server
// restarted) fails that call with Unavailable and the next call reconnects.
// Snapshots read in one REPEATABLE READ transaction.
//
// Thread-safe: one connection guarded by a mutex.
class PgStore final : public StateStore {
 public:
  // Invalid for a database holding tables that astro-tokend did not create
  // or made by a newer astro-tokend (left untouched); Unavailable when the
  // server cannot be reached; Unauthorized when it refuses the credentials.
  static Result<std::unique_ptr<PgStore>> open(const std::string& dsn);
  ~PgStore() override;

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
  void fence_writes(int64_t epoch) override { fence_epoch_ = epoch; }

 private:
  explicit PgStore(std::unique_ptr<PgConnection> conn);
  // Throws (Conflict) unless the fence, when set, still holds; call first in
  // each mutating transaction.
  void check_fence() const;

  mutable std::mutex mutex_;
  std::unique_ptr<PgConnection> conn_;
  std::string lineage_;
  int schema_version_ = 0;
  mutable int64_t last_serial_ = 0;
  std::atomic<int64_t> fence_epoch_{0};
};

}  // namespace tokend::state
