#include <catch2/catch.hpp>

#include "daemon/schedule.h"

using namespace tokend::daemon;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {
const SteadyTime kStart{seconds(1000)};
}

TEST_CASE("the timer interval is jittered uniformly and within bounds", "[daemon][schedule]") {
  const milliseconds interval = std::chrono::minutes(5);
  const milliseconds jitter = seconds(30);
  CHECK(jittered_interval(interval, jitter, 0.0) == interval - jitter);
  CHECK(jittered_interval(interval, jitter, 0.5) == interval);
  CHECK(jittered_interval(interval, jitter, 0.75) == interval + jitter / 2);
  CHECK(jittered_interval(interval, jitter, 0.999999) <= interval + jitter);
  for (double u : {0.0, 0.1, 0.33, 0.5, 0.9, 0.99999}) {
    milliseconds d = jittered_interval(interval, jitter, u);
    CHECK(d >= interval - jitter);
    CHECK(d <= interval + jitter);
  }
  // No jitter: exactly the interval.
  CHECK(jittered_interval(seconds(1), milliseconds(0), 0.9) == seconds(1));
  // A jitter above half the interval is capped there: cycles never bunch up.
  CHECK(jittered_interval(seconds(1), seconds(30), 0.0) == milliseconds(500));
  CHECK(jittered_interval(seconds(1), seconds(30), 0.99999) <= milliseconds(1500));
  // Out-of-range randoms are clamped.
  CHECK(jittered_interval(seconds(10), seconds(1), -3.0) == seconds(9));
  CHECK(jittered_interval(seconds(10), seconds(1), 7.0) == seconds(11));
}

TEST_CASE("backoff doubles from its base up to its cap - jittered around it",
          "[daemon][schedule]") {
  const BackoffPolicy exact{seconds(10), std::chrono::minutes(10), 0.0};
  struct Row {
    int failures;
    milliseconds delay;
  };
  for (Row row : {Row{0, seconds(10)}, Row{1, seconds(10)}, Row{2, seconds(20)},
                  Row{3, seconds(40)}, Row{4, seconds(80)}, Row{6, seconds(320)},
                  Row{7, seconds(600)}, Row{30, seconds(600)}, Row{1000, seconds(600)}}) {
    INFO("failures " << row.failures);
    CHECK(backoff_delay(exact, row.failures, 0.3) == row.delay);
  }
  const BackoffPolicy jittered{seconds(10), std::chrono::minutes(10), 0.2};
  CHECK(backoff_delay(jittered, 1, 0.0) == seconds(8));
  CHECK(backoff_delay(jittered, 1, 0.5) == seconds(10));
  CHECK(backoff_delay(jittered, 2, 0.0) == seconds(16));
  // Jitter never pushes past the cap.
  CHECK(backoff_delay(jittered, 20, 0.99) == seconds(600));
  CHECK(backoff_delay(jittered, 20, 0.0) == seconds(480));
}

TEST_CASE("a failing token backs off alone and a success clears it", "[daemon][schedule]") {
  TokenBackoff backoff(BackoffPolicy{seconds(10), std::chrono::minutes(10), 0.0});
  CHECK_FALSE(backoff.holds("a", kStart));
  SteadyTime until = backoff.record_failure("a", kStart, 0.5);
  CHECK(until == kStart + seconds(10));
  CHECK(backoff.holds("a", kStart + seconds(9)));
  CHECK_FALSE(backoff.holds("a", kStart + seconds(10)));
  CHECK_FALSE(backoff.holds("b", kStart + seconds(1)));  // others are never held back

  until = backoff.record_failure("a", kStart + seconds(10), 0.5);
  CHECK(until == kStart + seconds(30));
  CHECK(backoff.failures("a") == 2);
  backoff.record_failure("a", kStart + seconds(30), 0.5);
  CHECK(backoff.until("a") == kStart + seconds(70));

  backoff.record_success("a");
  CHECK_FALSE(backoff.holds("a", kStart + seconds(31)));
  CHECK(backoff.failures("a") == 0);
  // After a success the schedule starts over.
  CHECK(backoff.record_failure("a", kStart + seconds(100), 0.5) == kStart + seconds(110));
}

TEST_CASE("settled tokens are forgotten once their backoff expired", "[daemon][schedule]") {
  TokenBackoff backoff(BackoffPolicy{seconds(10), std::chrono::minutes(10), 0.0});
  backoff.record_failure("gone", kStart, 0.5);
  backoff.record_failure("still-pending", kStart, 0.5);
  backoff.forget_settled({"still-pending"}, kStart + seconds(5));
  CHECK(backoff.size() == 2);  // not expired yet
  backoff.forget_settled({"still-pending"}, kStart + seconds(11));
  CHECK(backoff.size() == 1);
  CHECK(backoff.failures("still-pending") == 1);
}

TEST_CASE("a whole cycle backs off up to the interval", "[daemon][schedule]") {
  const BackoffPolicy policy{seconds(10), std::chrono::minutes(10), 0.0};
  CHECK(cycle_retry_delay(policy, 1, std::chrono::minutes(5), 0.5) == seconds(10));
  CHECK(cycle_retry_delay(policy, 3, std::chrono::minutes(5), 0.5) == seconds(40));
  CHECK(cycle_retry_delay(policy, 6, std::chrono::minutes(5), 0.5) == seconds(300));
  CHECK(cycle_retry_delay(policy, 9, std::chrono::minutes(5), 0.5) == seconds(300));
  // An interval shorter than the base: never wait longer than the interval.
  CHECK(cycle_retry_delay(policy, 1, seconds(1), 0.5) == seconds(1));
  CHECK(cycle_retry_delay(policy, 5, seconds(1), 0.5) == seconds(1));
}

TEST_CASE("file events are debounced into one reload", "[daemon][schedule]") {
  Debouncer debouncer(milliseconds(400), milliseconds(1500));
  CHECK_FALSE(debouncer.pending());
  CHECK_FALSE(debouncer.due().has_value());
  CHECK_FALSE(debouncer.ready(kStart));

  debouncer.note(kStart);
  CHECK(debouncer.due() == kStart + milliseconds(400));
  debouncer.note(kStart + milliseconds(100));  // a burst: write, rename, chmod…
  debouncer.note(kStart + milliseconds(250));
  CHECK(debouncer.due() == kStart + milliseconds(650));
  CHECK_FALSE(debouncer.ready(kStart + milliseconds(649)));
  CHECK(debouncer.ready(kStart + milliseconds(650)));
  debouncer.reset();
  CHECK_FALSE(debouncer.pending());

  // An editor that never stops writing cannot postpone the reload past max_delay.
  for (int i = 0; i <= 30; ++i) debouncer.note(kStart + milliseconds(100 * i));
  CHECK(debouncer.due() == kStart + milliseconds(1500));
  CHECK(debouncer.ready(kStart + milliseconds(1500)));
}
