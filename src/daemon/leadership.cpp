#include "daemon/leadership.h"

namespace tokend::daemon {

LeaderElection::LeaderElection(state::LeaderLease& lease, const state::LeaseTimings& timings,
                               LeadershipEvents events)
    : lease_(lease), timings_(timings), events_(std::move(events)) {
  thread_ = std::thread([this] { loop(); });
}

LeaderElection::~LeaderElection() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  lease_.release();
}

bool LeaderElection::leading() const {
  std::lock_guard lock(mutex_);
  return leading_;
}

void LeaderElection::loop() {
  std::optional<state::LockHolder> last_leader;
  std::chrono::milliseconds wait{0};
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, wait, [this] { return stop_; })) {
    const bool was_leading = leading_;
    lock.unlock();
    bool leading_now = was_leading;
    if (!was_leading) {
      auto taken = lease_.try_acquire();
      if (!taken.ok()) {
        if (events_.unreachable) events_.unreachable(taken.error(), false);
      } else if (*taken) {
        leading_now = true;
        last_leader.reset();
        if (events_.became_leader) events_.became_leader(lease_.epoch());
      } else if (auto holder = lease_.holder()) {
        if (!last_leader || last_leader->pid != holder->pid || last_leader->host != holder->host ||
            last_leader->since != holder->since) {
          last_leader = holder;
          if (events_.standing_by) events_.standing_by(*holder);
        }
      }
      wait = timings_.retry;
    } else {
      Status renewed = lease_.renew();
      if (renewed.ok()) {
        wait = timings_.renew;
      } else if (renewed.error().kind == ErrorKind::Conflict) {
        leading_now = false;
        if (events_.lost) events_.lost(renewed.error().message);
        wait = timings_.retry;
      } else {
        if (events_.unreachable) events_.unreachable(renewed.error(), true);
        if (std::chrono::steady_clock::now() + timings_.retry >= lease_.deadline()) {
          // It cannot be renewed before it runs out: stop writing now.
          lease_.release();
          leading_now = false;
          if (events_.lost)
            events_.lost("the lease could not be renewed before it expired: " +
                         renewed.error().message);
        }
        wait = timings_.retry;
      }
    }
    lock.lock();
    leading_ = leading_now;
  }
}

}  // namespace tokend::daemon
