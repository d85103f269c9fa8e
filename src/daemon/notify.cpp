#include "daemon/notify.h"

#include <systemd/sd-daemon.h>
#include <time.h>

namespace tokend::daemon {

void SystemdNotifier::notify(const std::string& state) { (void)sd_notify(0, state.c_str()); }

std::optional<std::chrono::microseconds> watchdog_period() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::microseconds(usec);
}

std::string monotonic_usec_field() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t usec =
      static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
  return "MONOTONIC_USEC=" + std::to_string(usec);
}

WatchdogPinger::WatchdogPinger(Notifier& notifier, std::chrono::microseconds period,
                               std::function<void(std::chrono::milliseconds)> on_stall)
    : notifier_(notifier),
      period_(period),
      on_stall_(std::move(on_stall)),
      last_beat_(std::chrono::steady_clock::now()) {
  thread_ = std::thread([this] { run(); });
}

WatchdogPinger::~WatchdogPinger() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void WatchdogPinger::beat() {
  std::lock_guard<std::mutex> lock(mutex_);
  last_beat_ = std::chrono::steady_clock::now();
}

void WatchdogPinger::run() {
  bool stalled = false;
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    auto now = std::chrono::steady_clock::now();
    auto silent = now - last_beat_;
    if (silent < period_) {
      stalled = false;
      lock.unlock();
      notifier_.notify("WATCHDOG=1");
      lock.lock();
    } else if (!stalled) {
      stalled = true;
      lock.unlock();
      if (on_stall_) on_stall_(std::chrono::duration_cast<std::chrono::milliseconds>(silent));
      lock.lock();
    }
    wake_.wait_for(lock, period_ / 2, [this] { return stopping_; });
  }
}

}  // namespace tokend::daemon
