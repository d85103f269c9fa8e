#include "daemon/signals.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tokend::daemon {

namespace {

sigset_t daemon_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}

}  // namespace

void block_daemon_signals() {
  sigset_t set = daemon_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

Result<std::unique_ptr<SignalListener>> SignalListener::start(std::function<void(int)> handler) {
  sigset_t set = daemon_signals();
  int signal_fd = signalfd(-1, &set, SFD_CLOEXEC);
  if (signal_fd < 0) return Error::io(std::string("signalfd: ") + std::strerror(errno));
  int stop_fd = eventfd(0, EFD_CLOEXEC);
  if (stop_fd < 0) {
    close(signal_fd);
    return Error::io(std::string("eventfd: ") + std::strerror(errno));
  }
  return std::unique_ptr<SignalListener>(
      new SignalListener(signal_fd, stop_fd, std::move(handler)));
}

SignalListener::SignalListener(int signal_fd, int stop_fd, std::function<void(int)> handler)
    : signal_fd_(signal_fd), stop_fd_(stop_fd), handler_(std::move(handler)) {
  thread_ = std::thread([this] { run(); });
}

SignalListener::~SignalListener() {
  uint64_t one = 1;
  ssize_t written = write(stop_fd_, &one, sizeof one);
  (void)written;
  thread_.join();
  close(signal_fd_);
  close(stop_fd_);
}

void SignalListener::run() {
  for (;;) {
    pollfd fds[2] = {{signal_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    int ready = poll(fds, 2, -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo info{};
      ssize_t n = read(signal_fd_, &info, sizeof info);
      if (n == static_cast<ssize_t>(sizeof info)) handler_(static_cast<int>(info.ssi_signo));
    }
  }
}

}  // namespace tokend::daemon
