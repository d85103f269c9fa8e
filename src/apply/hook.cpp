#include "apply/hook.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "util/duration.h"

namespace tokend::apply {

namespace {

using SteadyClock = std::chrono::steady_clock;

// Closes a descriptor once, on demand or at the end of the scope.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

HookResult not_started(std::string error) {
  HookResult result;
  result.ending = HookResult::Ending::NotStarted;
  result.error = std::move(error);
  return result;
}

std::string errno_text(const std::string& what, int err) {
  return what + ": " + std::strerror(err);
}

// In the child, between fork and execve: async-signal-safe calls only.
[[noreturn]] void exec_child(int input, int output, int report, char* const argv[],
                             char* const envp[]) {
  setpgid(0, 0);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction defaults {};
  defaults.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig)
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &defaults, nullptr);
  // Place the pipes at 0, 1 and 2 (a pipe already there only loses its
  // close-on-exec flag), then close everything else but the report pipe,
  // which closes itself on a successful exec.
  const auto place = [](int fd, int at) {
    if (fd == at) return fcntl(at, F_SETFD, 0) == 0;
    return dup2(fd, at) == at;
  };
  bool placed = place(input, 0) && place(output, 1) && place(output, 2);
  if (placed) {
    if (report > 3) close_range(3, static_cast<unsigned>(report) - 1, 0);
    close_range(static_cast<unsigned>(report) + 1, ~0u, 0);
    if (chdir("/") == 0) execve(argv[0], argv, envp);
  }
  int err = errno;
  ssize_t ignored = ::write(report, &err, sizeof err);
  (void)ignored;
  _exit(127);
}

HookResult ended_by(int status) {
  HookResult result;
  if (WIFSIGNALED(status)) {
    result.ending = HookResult::Ending::Signaled;
    result.code = WTERMSIG(status);
  } else {
    result.ending = HookResult::Ending::Exited;
    result.code = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
  }
  return result;
}

}  // namespace

std::string HookResult::describe() const {
  switch (ending) {
    case Ending::Exited:
      return "exited with status " + std::to_string(code);
    case Ending::Signaled:
      return "was killed by signal " + std::to_string(code) + " (" + strsignal(code) + ")";
    case Ending::TimedOut:
      return "timed out after " + format_duration(timeout) + " and was killed";
    case Ending::NotStarted:
      return error;
  }
  return error;
}

HookResult exited(int code, std::string output) {
  HookResult result;
  result.code = code;
  result.output = std::move(output);
  return result;
}

HookResult ProcessHookRunner::run(const HookCommand& command, const SecretValue& input) {
  const auto started = SteadyClock::now();
  const auto deadline = started + command.timeout;
  if (command.argv.empty()) return not_started("no program to run");
  const std::string& program = command.argv.front();

  // stdin: a pipe that holds the whole input before the child starts, so that
  // writing never blocks and a hook that exits without reading cannot make
  // this process take SIGPIPE.
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return not_started(errno_text("cannot make a pipe", errno));
  Fd in_read(fds[0]), in_write(fds[1]);
  const std::string& value = input.reveal();
  if (value.size() > 65536 &&
      fcntl(in_write.get(), F_SETPIPE_SZ, static_cast<int>(value.size())) < 0)
    return not_started(errno_text("cannot pass the value to " + program, errno));
  fcntl(in_write.get(), F_SETFL, O_NONBLOCK);
  for (size_t written = 0; written < value.size();) {
    ssize_t n = ::write(in_write.get(), value.data() + written, value.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return not_started(errno_text("cannot pass the value to " + program, errno));
    written += static_cast<size_t>(n);
  }
  in_write.reset();

  if (pipe2(fds, O_CLOEXEC) != 0) return not_started(errno_text("cannot make a pipe", errno));
  Fd out_read(fds[0]), out_write(fds[1]);
  if (pipe2(fds, O_CLOEXEC) != 0) return not_started(errno_text("cannot make a pipe", errno));
  Fd report_read(fds[0]), report_write(fds[1]);

  std::vector<std::string> env_text;
  env_text.reserve(command.environment.size());
  for (const auto& [name, text] : command.environment) env_text.push_back(name + "=" + text);
  std::vector<char*> argv, envp;
  for (const std::string& arg : command.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  for (std::string& entry : env_text) envp.push_back(entry.data());
  envp.push_back(nullptr);

  const pid_t pid = fork();
  if (pid < 0) return not_started(errno_text("cannot start " + program, errno));
  if (pid == 0)
    exec_child(in_read.get(), out_write.get(), report_write.get(), argv.data(), envp.data());
  setpgid(pid, pid);  // also here: the group exists before any kill below
  in_read.reset();
  out_write.reset();
  report_write.reset();

  // The child reports a failed execve through the report pipe; a successful
  // one closes it.
  int exec_errno = 0;
  for (;;) {
    ssize_t n = ::read(report_read.get(), &exec_errno, sizeof exec_errno);
    if (n < 0 && errno == EINTR) continue;
    if (n != static_cast<ssize_t>(sizeof exec_errno)) exec_errno = 0;
    break;
  }
  report_read.reset();
  if (exec_errno != 0) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return not_started(errno_text("cannot run " + program, exec_errno));
  }

  // A descriptor that polls readable once the child ends; without one (an
  // old kernel, a seccomp filter) the loop below polls in short steps.
  Fd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  std::string output;
  bool truncated = false;
  const size_t keep = kMaxHookOutputBytes + value.size();
  // Reads what is there without waiting; closes the pipe at its end.
  const auto drain = [&] {
    char buffer[4096];
    for (;;) {
      ssize_t n = ::read(out_read.get(), buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        if (n == 0 || !(errno == EAGAIN || errno == EWOULDBLOCK)) out_read.reset();
        return;
      }
      const size_t room = keep - std::min(keep, output.size());
      output.append(buffer, std::min(room, static_cast<size_t>(n)));
      if (static_cast<size_t>(n) > room) truncated = true;
    }
  };
  fcntl(out_read.get(), F_SETFL, O_NONBLOCK);

  std::optional<int> status;
  const auto reap = [&]() -> bool {
    int raw = 0;
    pid_t got = waitpid(pid, &raw, WNOHANG);
    if (got == pid) status = raw;
    return status.has_value();
  };
  bool timed_out = false;
  while (!reap()) {
    const auto now = SteadyClock::now();
    if (now >= deadline) {
      timed_out = true;
      break;
    }
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now) +
                std::chrono::milliseconds(1);
    if (!pidfd.valid()) wait = std::min(wait, std::chrono::milliseconds(20));
    pollfd polled[2];
    nfds_t count = 0;
    if (out_read.valid()) polled[count++] = pollfd{out_read.get(), POLLIN, 0};
    if (pidfd.valid()) polled[count++] = pollfd{pidfd.get(), POLLIN, 0};
    int ready = poll(polled, count, static_cast<int>(wait.count()));
    if (ready < 0 && errno != EINTR) break;
    if (out_read.valid() && count > 0 && polled[0].revents != 0) drain();
  }
  if (timed_out || !status) {
    kill(-pid, SIGKILL);
    int raw = 0;
    while (waitpid(pid, &raw, 0) < 0 && errno == EINTR) {
    }
    status = raw;
  }
  if (out_read.valid()) drain();  // what the hook wrote before it ended

  HookResult result = ended_by(*status);
  if (timed_out) {
    result.ending = HookResult::Ending::TimedOut;
    result.code = 0;
    result.timeout = command.timeout;
  }
  result.output = std::move(output);
  result.truncated = truncated;
  result.seconds = std::chrono::duration<double>(SteadyClock::now() - started).count();
  return result;
}

HookResult FakeHookRunner::run(const HookCommand& command, const SecretValue& input) {
  Responder responder;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    calls_.push_back(Call{command, input.reveal()});
    responder = responder_;
  }
  return responder ? responder(command, input.reveal()) : exited(0);
}

void FakeHookRunner::respond(Responder responder) {
  std::lock_guard<std::mutex> lock(mutex_);
  responder_ = std::move(responder);
}

std::vector<FakeHookRunner::Call> FakeHookRunner::calls() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return calls_;
}

}  // namespace tokend::apply
