#pragma once

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

}  // namespace tokend
