#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "astro/rate_limiter.h"

using namespace tokend::astro;
using namespace std::chrono_literals;

namespace {

// A fake steady clock: sleeping advances it, and every wake-up is recorded.
struct FakeTime {
  RateLimiter::TimePoint now{std::chrono::seconds(1000)};
  std::vector<std::chrono::milliseconds> wakeups;  // relative to the start

  RateLimiter::TimePoint start = now;
  RateLimiter make(RateLimits limits) {
    return RateLimiter(
        limits, [this] { return now; },
        [this](RateLimiter::TimePoint until) {
          if (until > now) now = until;
          wakeups.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(now - start));
        });
  }
  std::chrono::milliseconds elapsed() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(now - start);
  }
};

}  // namespace

TEST_CASE("requests of one method are spaced 1/rate apart", "[astro]") {
  FakeTime time;
  RateLimiter limiter = time.make({25, 10, 5, 1});
  for (int i = 0; i < 5; ++i) limiter.acquire(HttpMethod::Delete);
  CHECK(time.elapsed() == 800ms);
  CHECK(time.wakeups == std::vector<std::chrono::milliseconds>{200ms, 400ms, 600ms, 800ms});
}

TEST_CASE("methods have independent buckets", "[astro]") {
  FakeTime time;
  RateLimiter limiter = time.make({25, 10, 5, 1});
  limiter.acquire(HttpMethod::Post);
  limiter.acquire(HttpMethod::Get);
  limiter.acquire(HttpMethod::Delete);
  CHECK(time.wakeups.empty());
  limiter.acquire(HttpMethod::Get);
  CHECK(time.elapsed() == 40ms);
  limiter.acquire(HttpMethod::Post);  // due at 100ms
  CHECK(time.elapsed() == 100ms);
}

TEST_CASE("a burst lets the first requests through at once - then the rate applies", "[astro]") {
  FakeTime time;
  RateLimiter limiter = time.make({10, 10, 10, 3});
  for (int i = 0; i < 3; ++i) limiter.acquire(HttpMethod::Get);
  CHECK(time.wakeups.empty());
  limiter.acquire(HttpMethod::Get);
  CHECK(time.elapsed() == 100ms);
  time.now += 10s;  // idle: the bucket refills to the burst, not beyond
  time.start = time.now;
  time.wakeups.clear();
  for (int i = 0; i < 3; ++i) limiter.acquire(HttpMethod::Get);
  CHECK(time.wakeups.empty());
  limiter.acquire(HttpMethod::Get);
  CHECK(time.elapsed() == 100ms);
}

TEST_CASE("by default one second's worth of GETs goes at once and writes are spaced", "[astro]") {
  struct Case {
    HttpMethod method;
    int at_once;
    std::chrono::milliseconds interval;
  };
  // {25, 10, 5}: 25 GETs at once; POSTs and DELETEs one at a time.
  for (const Case& c : {Case{HttpMethod::Get, 25, 40ms}, Case{HttpMethod::Post, 1, 100ms},
                        Case{HttpMethod::Delete, 1, 200ms}}) {
    FakeTime time;
    RateLimiter limiter = time.make({25, 10, 5, 0});
    for (int i = 0; i < c.at_once; ++i) limiter.acquire(c.method);
    CHECK(time.wakeups.empty());
    limiter.acquire(c.method);
    CHECK(time.elapsed() == c.interval);
  }
}

TEST_CASE("pause holds a method back for the server's Retry-After", "[astro]") {
  FakeTime time;
  RateLimiter limiter = time.make({25, 10, 5, 1});
  limiter.acquire(HttpMethod::Post);
  limiter.pause(HttpMethod::Post, 1000ms);
  limiter.acquire(HttpMethod::Post);
  CHECK(time.elapsed() == 1000ms);
  limiter.acquire(HttpMethod::Get);  // other methods are not paused
  CHECK(time.elapsed() == 1000ms);
  limiter.acquire(HttpMethod::Post);
  CHECK(time.elapsed() == 1100ms);
}

TEST_CASE("a rate of zero means no client-side limit", "[astro]") {
  FakeTime time;
  RateLimiter limiter = time.make({0, 0, 0, 1});
  for (int i = 0; i < 100; ++i) limiter.acquire(HttpMethod::Get);
  CHECK(time.wakeups.empty());
  limiter.pause(HttpMethod::Get, 50ms);
  limiter.acquire(HttpMethod::Get);
  CHECK(time.elapsed() == 50ms);
}

TEST_CASE("concurrent callers together stay under the rate", "[astro]") {
  RateLimiter limiter({50, 10, 5, 1});  // real clock: one GET every 20 ms
  std::atomic<int> done{0};
  const auto started = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 4; ++i) {
        limiter.acquire(HttpMethod::Get);
        ++done;
      }
    });
  for (auto& thread : threads) thread.join();
  const auto elapsed = std::chrono::steady_clock::now() - started;
  CHECK(done == 16);
  CHECK(elapsed >= 15 * 20ms - 2ms);  // 16 slots: the first at once, then 15 intervals
  CHECK(elapsed < 2s);
}
