// Leader election between daemons on one shared state: a thread that keeps a
// state::LeaderLease. As a standby it tries to take the lease every `retry`;
// as the leader it renews it every `renew` (every `retry` after failing to
// reach the database), and steps down when the lease was lost or could not
// be renewed before its deadline (a leader that cannot prove it still holds
// the lease must stop writing).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "state/store.h"

namespace tokend::daemon {

struct LeadershipEvents {
  std::function<void(int64_t epoch)> became_leader;
  std::function<void(const std::string& why)> lost;  // stepped down (why: the lease's error)
  // A standby saw who leads (called when the holder changes).
  std::function<void(const state::LockHolder& leader)> standing_by;
  // The database could not be reached (each time); `leading` says in which role.
  std::function<void(const Error& error, bool leading)> unreachable;
};

class LeaderElection {
 public:
  // Starts the thread at once (its first attempt runs immediately). `lease`
  // must outlive this object; the events are called from the election's
  // thread and must be thread-safe.
  LeaderElection(state::LeaderLease& lease, const state::LeaseTimings& timings,
                 LeadershipEvents events);
  // Stops the thread and gives up a held lease (a standby takes over at once).
  ~LeaderElection();
  LeaderElection(const LeaderElection&) = delete;
  LeaderElection& operator=(const LeaderElection&) = delete;

  bool leading() const;

 private:
  void loop();

  state::LeaderLease& lease_;
  const state::LeaseTimings timings_;
  const LeadershipEvents events_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  bool leading_ = false;
  std::thread thread_;
};

}  // namespace tokend::daemon
