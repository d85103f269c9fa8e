#include <catch2/catch.hpp>

#include "daemon/health.h"

using namespace tokend::daemon;
using std::chrono::seconds;

TEST_CASE("ready while a cycle succeeded within the last two intervals", "[daemon][health]") {
  const SteadyTime start{seconds(5000)};
  Readiness none = decide_readiness(std::nullopt, start, seconds(60), seconds(0));
  CHECK_FALSE(none.ready);
  CHECK(none.reason == "no reconcile cycle has succeeded yet");

  CHECK(decide_readiness(start, start, seconds(60), seconds(0)).ready);
  CHECK(decide_readiness(start, start + seconds(120), seconds(60), seconds(0)).ready);
  Readiness stale = decide_readiness(start, start + seconds(121), seconds(60), seconds(0));
  CHECK_FALSE(stale.ready);
  CHECK(stale.reason ==
        "the last successful reconcile cycle was 2m1s ago, more than two intervals (2m)");

  // Jitter stretches the window (a late timer does not flap readiness).
  CHECK(decide_readiness(start, start + seconds(139), seconds(60), seconds(10)).ready);
  CHECK_FALSE(decide_readiness(start, start + seconds(141), seconds(60), seconds(10)).ready);
}
