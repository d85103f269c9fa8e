// The daemon's timing decisions as plain values and pure functions: the
// jittered interval, exponential backoff (per token and for a whole cycle),
// and the debounce of file-change events. Nothing here reads a clock or
// draws a random number: callers pass `now` (steady time) and `unit_random`
// (uniform in [0, 1)), so tests drive them with chosen values.
//
// Not thread-safe: the daemon's loop owns these objects.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "util/clock.h"

namespace tokend::daemon {

using tokend::SteadyTime;

// The time until the next timer cycle: `interval` plus a uniform offset in
// [-jitter, +jitter]. The spread is capped at half the interval, so cycles
// never bunch up whatever the configured jitter: the result always lies in
// [interval/2, 3*interval/2].
std::chrono::milliseconds jittered_interval(std::chrono::milliseconds interval,
                                            std::chrono::milliseconds jitter, double unit_random);

// Exponential backoff: min(cap, base * 2^(failures-1)) scaled by a uniform
// factor in [1 - jitter, 1 + jitter], then capped again at `cap`.
struct BackoffPolicy {
  std::chrono::milliseconds base{10000};
  std::chrono::milliseconds cap{600000};
  double jitter = 0.2;  // fraction, 0..1
};
// `failures` >= 1 (values below count as 1).
std::chrono::milliseconds backoff_delay(const BackoffPolicy& policy, int failures,
                                        double unit_random);

// Per-token backoff: a token whose change failed is left out of the
// following cycles until its backoff expires; a success clears it.
class TokenBackoff {
 public:
  explicit TokenBackoff(BackoffPolicy policy = {}) : policy_(policy) {}

  // Records a failure of `key` at `now`; returns when it may be tried again.
  SteadyTime record_failure(const std::string& key, SteadyTime now, double unit_random);
  void record_success(const std::string& key) { entries_.erase(key); }
  // True while `key` is backing off at `now`.
  bool holds(const std::string& key, SteadyTime now) const;
  std::optional<SteadyTime> until(const std::string& key) const;
  int failures(const std::string& key) const;
  // Forgets expired entries whose key is not in `pending` (a token no plan
  // mentions any more is in line with its spec, or gone).
  void forget_settled(const std::set<std::string>& pending, SteadyTime now);
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    int failures = 0;
    SteadyTime until{};
  };
  BackoffPolicy policy_;
  std::map<std::string, Entry> entries_;
};

// The retry delay of a whole cycle after `failures` consecutive cycles could
// not reach the API: exponential from `policy.base`, capped at `interval`
// (the timer would run the cycle then anyway) and at policy.cap.
std::chrono::milliseconds cycle_retry_delay(const BackoffPolicy& policy, int failures,
                                            std::chrono::milliseconds interval, double unit_random);

// Collapses a burst of file-change events into one reload: due `quiet` after
// the last event, but never later than `max_delay` after the first event of
// the burst (an editor that keeps writing cannot postpone it forever).
class Debouncer {
 public:
  Debouncer(std::chrono::milliseconds quiet, std::chrono::milliseconds max_delay)
      : quiet_(quiet), max_delay_(max_delay) {}

  void note(SteadyTime now);
  // When the pending burst is due; nullopt when no event is pending.
  std::optional<SteadyTime> due() const;
  bool ready(SteadyTime now) const;
  bool pending() const { return first_.has_value(); }
  // Forgets the pending burst (after acting on it).
  void reset();

 private:
  std::chrono::milliseconds quiet_;
  std::chrono::milliseconds max_delay_;
  std::optional<SteadyTime> first_;
  SteadyTime last_{};
};

}  // namespace tokend::daemon
