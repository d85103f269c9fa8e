#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <regex>

#include "state/sqlite_store.h"
#include "support/process.h"

using tokend::ErrorKind;
using tokend::state::WriterLock;
using tokend::testing::TempDir;

namespace {

std::string this_host() {
  char buffer[256] = {};
  REQUIRE(::gethostname(buffer, sizeof buffer - 1) == 0);
  return buffer;
}

// Reads one byte from `fd`, waiting at most 10 s; '\0' on timeout or EOF.
char read_byte(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 10000) != 1) return '\0';
  char c = '\0';
  if (::read(fd, &c, 1) != 1) return '\0';
  return c;
}

// A child process that takes the writer lock, reports 'L' (or 'F') on a pipe,
// and then holds it until its stdin pipe closes or it is killed.
class LockHoldingChild {
 public:
  LockHoldingChild(const std::string& db_path, const std::string& command) {
    int report[2], hold[2];
    REQUIRE(::pipe(report) == 0);
    REQUIRE(::pipe(hold) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::close(report[0]);
      ::close(hold[1]);
      auto lock = WriterLock::acquire(db_path, command);
      char status = lock.ok() ? 'L' : 'F';
      if (::write(report[1], &status, 1) != 1) _exit(2);
      char ignored;
      while (::read(hold[0], &ignored, 1) > 0) {
      }
      _exit(0);  // the parent closed the pipe (or died): exit, releasing the lock
    }
    ::close(report[1]);
    ::close(hold[0]);
    report_fd_ = report[0];
    hold_fd_ = hold[1];
  }
  ~LockHoldingChild() {
    ::close(report_fd_);
    ::close(hold_fd_);
    if (!reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  char wait_for_report() { return read_byte(report_fd_); }
  int pid() const { return pid_; }
  void kill_and_reap() {
    ::kill(pid_, SIGKILL);
    int status = 0;
    REQUIRE(::waitpid(pid_, &status, 0) == pid_);
    CHECK(WIFSIGNALED(status));
    reaped_ = true;
  }

 private:
  int pid_ = -1;
  int report_fd_ = -1;
  int hold_fd_ = -1;
  bool reaped_ = false;
};

}  // namespace

TEST_CASE("a second writer in the same process fails at once and names the holder", "[state]") {
  TempDir dir;
  const std::string db = dir.file("state.db");
  auto first = WriterLock::acquire(db, "apply");
  REQUIRE(first.ok());

  auto second = WriterLock::acquire(db, "run");
  REQUIRE_FALSE(second.ok());
  CHECK(second.error().kind == ErrorKind::Conflict);
  const std::regex expected("state is locked by pid " + std::to_string(::getpid()) + " on host " +
                            this_host() + R"( \(apply\) since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)");
  CHECK(std::regex_match(second.error().message, expected));
  INFO(second.error().message);

  first->reset();
  auto third = WriterLock::acquire(db, "run");
  CHECK(third.ok());
}

TEST_CASE("the lock file is mode 0600 and records the holder", "[state]") {
  TempDir dir;
  const std::string db = dir.file("state.db");
  const mode_t previous = ::umask(0);
  auto lock = WriterLock::acquire(db, "state rm\nastro_api_token.x");
  ::umask(previous);
  REQUIRE(lock.ok());
  struct stat st {};
  REQUIRE(::stat((db + ".lock").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
  const std::string content = tokend::testing::read_file(db + ".lock");
  CHECK_THAT(content,
             Catch::StartsWith("pid=" + std::to_string(::getpid()) + "\nhost=" + this_host() +
                               "\ncommand=state rm astro_api_token.x\nsince="));
}

TEST_CASE("another process holding the lock is named - and its death releases it", "[state]") {
  TempDir dir;
  const std::string db = dir.file("state.db");
  LockHoldingChild child(db, "apply");
  REQUIRE(child.wait_for_report() == 'L');

  auto contended = WriterLock::acquire(db, "run");
  REQUIRE_FALSE(contended.ok());
  CHECK(contended.error().kind == ErrorKind::Conflict);
  CHECK_THAT(contended.error().message,
             Catch::StartsWith("state is locked by pid " + std::to_string(child.pid()) +
                               " on host " + this_host() + " (apply) since "));

  child.kill_and_reap();  // SIGKILL: no destructor runs, the kernel drops the lock
  auto after = WriterLock::acquire(db, "run");
  INFO((after.ok() ? std::string() : after.error().describe()));
  CHECK(after.ok());
}

TEST_CASE("a lock held by this process blocks a child too", "[state]") {
  TempDir dir;
  const std::string db = dir.file("state.db");
  auto held = WriterLock::acquire(db, "apply");
  REQUIRE(held.ok());
  LockHoldingChild child(db, "run");
  CHECK(child.wait_for_report() == 'F');
}

TEST_CASE("a lock in a missing directory is an Io error", "[state]") {
  TempDir dir;
  auto lock = WriterLock::acquire(dir.file("missing/state.db"), "apply");
  REQUIRE_FALSE(lock.ok());
  CHECK(lock.error().kind == ErrorKind::Io);
  CHECK_THAT(lock.error().message, Catch::Contains(dir.file("missing/state.db.lock")));
}
