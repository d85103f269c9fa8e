#pragma once

#include <atomic>
#include <chrono>

#include "model/token.h"

namespace tokend {

// The time seam. Code that needs "now" takes a Clock&; tests pass a FixedClock.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual Timestamp now() const = 0;
};

class SystemClock final : public Clock {
 public:
  Timestamp now() const override {
    return std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  }
};

// Not thread-safe: set() while another thread reads now() is a data race.
class FixedClock final : public Clock {
 public:
  explicit FixedClock(Timestamp t) : t_(t) {}
  Timestamp now() const override { return t_; }
  void set(Timestamp t) { t_ = t; }
  void advance(std::chrono::seconds d) { t_ += d; }

 private:
  Timestamp t_;
};

// Monotonic time, for durations, deadlines and backoff (never for what is
// shown or stored: that is Clock's wall time).
using SteadyTime = std::chrono::steady_clock::time_point;

class MonotonicClock {
 public:
  virtual ~MonotonicClock() = default;
  virtual SteadyTime now() const = 0;
};

class SystemMonotonicClock final : public MonotonicClock {
 public:
  SteadyTime now() const override { return std::chrono::steady_clock::now(); }
};

// Moves only when told. Thread-safe.
class ManualMonotonicClock final : public MonotonicClock {
 public:
  explicit ManualMonotonicClock(SteadyTime start = SteadyTime{}) : now_(start) {}
  SteadyTime now() const override { return now_.load(); }
  void advance(std::chrono::milliseconds d) { now_.store(now_.load() + d); }

 private:
  std::atomic<SteadyTime> now_;
};

}  // namespace tokend
