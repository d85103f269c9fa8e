#include "daemon/schedule.h"

#include <algorithm>
#include <cmath>

namespace tokend::daemon {

namespace {

double clamp_unit(double u) { return std::clamp(u, 0.0, 1.0); }

}  // namespace

std::chrono::milliseconds jittered_interval(std::chrono::milliseconds interval,
                                            std::chrono::milliseconds jitter, double unit_random) {
  std::chrono::milliseconds spread =
      std::min(std::max(jitter, std::chrono::milliseconds(0)), interval / 2);
  double offset = (2 * clamp_unit(unit_random) - 1) * static_cast<double>(spread.count());
  auto result =
      std::chrono::milliseconds(interval.count() + static_cast<int64_t>(std::llround(offset)));
  return std::clamp(result, interval - spread, interval + spread);
}

std::chrono::milliseconds backoff_delay(const BackoffPolicy& policy, int failures,
                                        double unit_random) {
  int doublings = std::clamp(failures, 1, 40) - 1;
  double base = static_cast<double>(policy.base.count());
  double cap = static_cast<double>(policy.cap.count());
  double delay = std::min(cap, base * std::ldexp(1.0, doublings));
  double jitter = std::clamp(policy.jitter, 0.0, 1.0);
  delay *= 1 - jitter + 2 * jitter * clamp_unit(unit_random);
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(std::min(delay, cap))));
}

SteadyTime TokenBackoff::record_failure(const std::string& key, SteadyTime now,
                                        double unit_random) {
  Entry& entry = entries_[key];
  entry.failures += 1;
  entry.until = now + backoff_delay(policy_, entry.failures, unit_random);
  return entry.until;
}

bool TokenBackoff::holds(const std::string& key, SteadyTime now) const {
  auto it = entries_.find(key);
  return it != entries_.end() && now < it->second.until;
}

std::optional<SteadyTime> TokenBackoff::until(const std::string& key) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  return it->second.until;
}

int TokenBackoff::failures(const std::string& key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? 0 : it->second.failures;
}

void TokenBackoff::forget_settled(const std::set<std::string>& pending, SteadyTime now) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (!pending.count(it->first) && now >= it->second.until)
      it = entries_.erase(it);
    else
      ++it;
  }
}

std::chrono::milliseconds cycle_retry_delay(const BackoffPolicy& policy, int failures,
                                            std::chrono::milliseconds interval,
                                            double unit_random) {
  BackoffPolicy bounded = policy;
  bounded.cap = std::min(policy.cap, interval);
  bounded.base = std::min(policy.base, bounded.cap);
  return backoff_delay(bounded, failures, unit_random);
}

void Debouncer::note(SteadyTime now) {
  if (!first_) first_ = now;
  last_ = now;
}

std::optional<SteadyTime> Debouncer::due() const {
  if (!first_) return std::nullopt;
  return std::min(last_ + quiet_, *first_ + max_delay_);
}

bool Debouncer::ready(SteadyTime now) const {
  auto when = due();
  return when.has_value() && now >= *when;
}

void Debouncer::reset() { first_.reset(); }

}  // namespace tokend::daemon
