// The writer lease of a PostgreSQL state (state/store.h: LeaderLease): the
// writer_lease row (holder, epoch, expiry on the database's clock) and a
// session-level advisory lock held on the lease's own connection.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "state/store.h"

namespace tokend::state {

class PgConnection;

// Taking over (try_acquire), in one transaction holding the row lock:
//  - the lease expired (its holder stopped renewing: frozen, partitioned):
//    take it;
//  - this process got the advisory lock and the holder had it (holder_locked):
//    the holder's session is gone (crash, SIGKILL), take it at once;
//  - otherwise the holder keeps it, and an advisory lock got meanwhile is
//    given back so that the holder can take it.
// Each takeover increases the epoch; renew succeeds only while the epoch is
// still this holder's, and takes the advisory lock when it lacks it (after a
// takeover by expiry, or a database restart).
//
// check() (asked before every API write): held, the local deadline not
// passed, and the row still has this epoch unexpired. Once lost, always lost
// until the next successful try_acquire.
class PgLease final : public LeaderLease {
 public:
  // Connects (its own connection); takes nothing yet. Failures as
  // PgConnection::open.
  static Result<std::unique_ptr<PgLease>> connect(const std::string& dsn,
                                                  const std::string& command,
                                                  const LeaseTimings& timings);
  ~PgLease() override;  // stops renewing and releases a held lease

  Result<bool> try_acquire() override;
  Status renew() override;
  void release() override;
  bool held() const override;
  std::chrono::steady_clock::time_point deadline() const override;
  std::optional<LockHolder> holder() const override;
  Status check() override;
  int64_t epoch() const override;

  // Renews every timings.renew on a thread of its own until destroyed or
  // lost (for a CLI command holding the lease for its run).
  void keep_renewed();

 private:
  PgLease(std::unique_ptr<PgConnection> conn, const std::string& command,
          const LeaseTimings& timings);
  void release_locked();
  void unlock_advisory();
  bool take_advisory();
  // Forgets an advisory lock that went with an earlier session.
  void forget_lost_advisory();

  const LeaseTimings timings_;
  LockHolder me_;
  mutable std::mutex mutex_;
  std::unique_ptr<PgConnection> conn_;
  bool have_advisory_ = false;
  uint64_t advisory_session_ = 0;  // the connection's session that holds it
  bool held_ = false;
  int64_t epoch_ = 0;
  std::chrono::steady_clock::time_point deadline_{};
  std::optional<LockHolder> holder_;

  std::mutex renew_mutex_;
  std::condition_variable renew_wake_;
  bool stop_renewing_ = false;
  std::thread renewer_;
};

}  // namespace tokend::state
