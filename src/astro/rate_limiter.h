// Client-side rate limiting for the Astro API: one bucket per HTTP method
// (GET, POST, DELETE), filled at the `[astro.rate_limits]` rates, so that
// astro-tokend stays under the published per-method limits however many
// threads call the API at once.
#pragma once

#include <array>
#include <chrono>
#include <functional>
#include <mutex>
#include <string_view>

namespace tokend::astro {

enum class HttpMethod { Get, Post, Delete };
std::string_view to_string(HttpMethod method);

// Requests per second for each method (`[astro.rate_limits]`). A rate of 0 or
// less means "no client-side limit" for that method.
struct RateLimits {
  double get = 25;
  double post = 10;
  double delete_ = 5;
  // Requests that may go out back to back before the rate applies. 1 spaces
  // every request evenly (1/rate apart), which stays under the limit whatever
  // window the server counts in. 0 (the default) lets one second's worth of
  // GETs through at once, as a token bucket of the published rate allows,
  // so that the pages of one listing (ten at 10,000 tokens) go without
  // waiting; a server counting requests in a sliding one-second window can
  // see up to twice the GET rate, and its 429 is then honoured. Writes
  // (POST, DELETE) are spaced evenly.
  int burst = 0;
};

// A blocking, thread-safe, per-method limiter (generic cell rate algorithm:
// each acquire() reserves the next free slot, so waiting callers go out in
// the order they asked, evenly spaced).
//
// The clock and the sleep are injectable for tests; by default they are
// std::chrono::steady_clock and std::this_thread::sleep_until.
class RateLimiter {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using NowFunction = std::function<TimePoint()>;
  using SleepUntilFunction = std::function<void(TimePoint)>;

  explicit RateLimiter(RateLimits limits, NowFunction now = {},
                       SleepUntilFunction sleep_until = {});

  // Blocks until a request of `method` may be sent, then returns. Never fails.
  void acquire(HttpMethod method);

  // The server answered 429: no request of `method` starts before
  // now + `duration` (requests already past acquire() are not recalled).
  void pause(HttpMethod method, std::chrono::milliseconds duration);

 private:
  struct Bucket {
    std::chrono::nanoseconds interval{0};   // 1/rate; zero when unlimited
    std::chrono::nanoseconds tolerance{0};  // (burst-1) * interval
    TimePoint theoretical_arrival{};
  };

  Bucket& bucket(HttpMethod method) { return buckets_[static_cast<size_t>(method)]; }

  NowFunction now_;
  SleepUntilFunction sleep_until_;
  std::mutex mutex_;
  std::array<Bucket, 3> buckets_;
};

}  // namespace tokend::astro
