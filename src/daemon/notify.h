// The service manager seam: sd_notify(3) messages (READY=1, STATUS=,
// RELOADING=1, STOPPING=1, WATCHDOG=1) and the watchdog pinger.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace tokend::daemon {

// Sends a state string such as "READY=1\nSTATUS=…". Thread-safe.
class Notifier {
 public:
  virtual ~Notifier() = default;
  virtual void notify(const std::string& state) = 0;
};

// sd_notify(0, state): a no-op when $NOTIFY_SOCKET is unset. Failures are
// ignored (the service manager is optional).
class SystemdNotifier final : public Notifier {
 public:
  void notify(const std::string& state) override;
};

// The watchdog period asked by the service manager (WATCHDOG_USEC for this
// process, via sd_watchdog_enabled), or nullopt when there is none.
std::optional<std::chrono::microseconds> watchdog_period();

// "MONOTONIC_USEC=<CLOCK_MONOTONIC now in µs>", for RELOADING=1.
std::string monotonic_usec_field();

// Pings WATCHDOG=1 every period/2 from its own thread, but only while the
// daemon's loop shows it is alive: beat() must have been called within the
// last `period`. A wedged loop therefore stops the pings and the service
// manager restarts the daemon. `on_stall` runs (on the pinger's thread)
// once per stall, when a ping is first withheld. Thread-safe; the destructor
// stops the thread.
class WatchdogPinger {
 public:
  WatchdogPinger(Notifier& notifier, std::chrono::microseconds period,
                 std::function<void(std::chrono::milliseconds silent_for)> on_stall);
  ~WatchdogPinger();
  WatchdogPinger(const WatchdogPinger&) = delete;
  WatchdogPinger& operator=(const WatchdogPinger&) = delete;

  void beat();

 private:
  void run();

  Notifier& notifier_;
  std::chrono::microseconds period_;
  std::function<void(std::chrono::milliseconds)> on_stall_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point last_beat_;
  std::thread thread_;
};

}  // namespace tokend::daemon
