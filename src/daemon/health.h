// Readiness as a pure decision: the daemon is ready while a reconcile cycle
// succeeded within the last two intervals (each stretched by its jitter, so
// a late timer does not flap it).
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "daemon/schedule.h"

namespace tokend::daemon {

struct Readiness {
  bool ready = false;
  std::string reason;  // why not ready, or "ok"
};

Readiness decide_readiness(std::optional<SteadyTime> last_success, SteadyTime now,
                           std::chrono::milliseconds interval, std::chrono::milliseconds jitter);

}  // namespace tokend::daemon
