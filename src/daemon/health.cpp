#include "daemon/health.h"

#include <algorithm>

#include "util/duration.h"

namespace tokend::daemon {

Readiness decide_readiness(std::optional<SteadyTime> last_success, SteadyTime now,
                           std::chrono::milliseconds interval, std::chrono::milliseconds jitter) {
  if (!last_success) return {false, "no reconcile cycle has succeeded yet"};
  auto spread = std::min(jitter, interval / 2);
  auto window = 2 * (interval + spread);
  auto age = std::chrono::duration_cast<std::chrono::milliseconds>(now - *last_success);
  if (age <= window) return {true, "ok"};
  return {false, "the last successful reconcile cycle was " +
                     format_duration(std::chrono::duration_cast<std::chrono::seconds>(age)) +
                     " ago, more than two intervals (" + format_duration(window) + ")"};
}

}  // namespace tokend::daemon
