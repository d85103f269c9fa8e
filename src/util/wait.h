// Waits that a shutdown cuts short: back-offs and rate-limit pauses sleep in
// slices and look at a stop flag (the daemon raises it on SIGTERM/SIGINT)
// between them, so that no wait outlives a shutdown by more than a slice.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

namespace tokend {

// How long a stopping wait may still sleep.
inline constexpr std::chrono::milliseconds kStopCheckInterval{20};

// Sleeps until `until` unless `*stop` is raised first; true when the whole
// wait passed, false when it was cut short. A null `stop` never cuts it short.
inline bool sleep_until_unless_stopped(std::chrono::steady_clock::time_point until,
                                       const std::atomic<bool>* stop) {
  for (;;) {
    if (stop && stop->load()) return false;
    const auto now = std::chrono::steady_clock::now();
    if (now >= until) return true;
    std::this_thread::sleep_until(std::min(until, now + kStopCheckInterval));
  }
}

}  // namespace tokend
