#include "astro/rate_limiter.h"

#include <algorithm>
#include <cmath>
#include <thread>

namespace tokend::astro {

std::string_view to_string(HttpMethod method) {
  switch (method) {
    case HttpMethod::Get:
      return "GET";
    case HttpMethod::Post:
      return "POST";
    case HttpMethod::Delete:
      return "DELETE";
  }
  return "GET";
}

namespace {

std::chrono::nanoseconds interval_for(double per_second) {
  if (!(per_second > 0)) return std::chrono::nanoseconds{0};
  return std::chrono::nanoseconds{static_cast<int64_t>(1e9 / per_second)};
}

// RateLimits.burst == 0: how many seconds' worth of GETs may go at once.
constexpr double kAutoGetBurstSeconds = 1.0;

}  // namespace

RateLimiter::RateLimiter(RateLimits limits, NowFunction now, SleepUntilFunction sleep_until)
    : now_(now ? std::move(now) : NowFunction([] { return std::chrono::steady_clock::now(); })),
      sleep_until_(sleep_until ? std::move(sleep_until) : SleepUntilFunction([](TimePoint t) {
        std::this_thread::sleep_until(t);
      })) {
  const double rates[] = {limits.get, limits.post, limits.delete_};
  const TimePoint start = now_();
  for (size_t i = 0; i < buckets_.size(); ++i) {
    const bool reads = static_cast<HttpMethod>(i) == HttpMethod::Get;
    const int burst =
        limits.burst > 0 ? limits.burst
        : reads          ? std::max(1, static_cast<int>(std::ceil(rates[i] * kAutoGetBurstSeconds)))
                         : 1;
    buckets_[i].interval = interval_for(rates[i]);
    buckets_[i].tolerance = buckets_[i].interval * (burst - 1);
    buckets_[i].theoretical_arrival = start;
  }
}

void RateLimiter::acquire(HttpMethod method) {
  TimePoint slot;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    Bucket& b = bucket(method);
    const TimePoint now = now_();
    const TimePoint arrival = std::max(b.theoretical_arrival, now);
    slot = std::max(now, arrival - b.tolerance);
    b.theoretical_arrival = arrival + b.interval;
    if (slot <= now) return;
  }
  sleep_until_(slot);
}

void RateLimiter::pause(HttpMethod method, std::chrono::milliseconds duration) {
  std::lock_guard<std::mutex> lock(mutex_);
  Bucket& b = bucket(method);
  const TimePoint resume = now_() + duration + b.tolerance;
  b.theoretical_arrival = std::max(b.theoretical_arrival, resume);
}

}  // namespace tokend::astro
