// Signals, handled in one place: the daemon blocks SIGTERM, SIGINT and SIGHUP
// in every thread (block_daemon_signals before any thread starts, so threads
// inherit the mask) and a SignalListener thread reads them from a signalfd.
// No code runs in an asynchronous signal handler.
#pragma once

#include <functional>
#include <memory>
#include <thread>

#include "util/result.h"

namespace tokend::daemon {

// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread and ignores
// SIGPIPE for the process (a peer closing a socket must not kill it).
void block_daemon_signals();

// Calls `handler(signal_number)` on its own thread for each SIGTERM, SIGINT
// or SIGHUP delivered to the process. The handler must not block for long.
// The destructor stops and joins the thread.
class SignalListener {
 public:
  // Io when the signalfd or the wake-up eventfd cannot be made.
  static Result<std::unique_ptr<SignalListener>> start(std::function<void(int)> handler);
  ~SignalListener();
  SignalListener(const SignalListener&) = delete;
  SignalListener& operator=(const SignalListener&) = delete;

 private:
  SignalListener(int signal_fd, int stop_fd, std::function<void(int)> handler);
  void run();

  int signal_fd_;
  int stop_fd_;
  std::function<void(int)> handler_;
  std::thread thread_;
};

}  // namespace tokend::daemon
