// WriterLock (declared in state/sqlite_store.h) and LockHolder (state/records.h).
#include <fcntl.h>
#include <limits.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <sstream>

#include "state/sqlite_store.h"
#include "util/clock.h"

namespace tokend::state {

namespace {

constexpr mode_t kPrivateMode = 0600;
constexpr size_t kMaxHolderBytes = 4096;

Error lock_error(ErrorKind kind, std::string message) {
  Error error;
  error.kind = kind;
  error.message = std::move(message);
  return error;
}

std::string single_line(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return text;
}

std::string host_name() {
  char buffer[HOST_NAME_MAX + 1] = {};
  if (::gethostname(buffer, sizeof buffer - 1) != 0) return "unknown";
  return buffer;
}

// The lock file's content: one "name=value" line per field.
std::string encode_holder(const LockHolder& holder) {
  return "pid=" + std::to_string(holder.pid) + "\nhost=" + single_line(holder.host) +
         "\ncommand=" + single_line(holder.command) + "\nsince=" + format_rfc3339(holder.since) +
         "\n";
}

// nullopt unless every field is present and well-formed (e.g. the holder has
// locked the file but not written it yet).
std::optional<LockHolder> decode_holder(const std::string& text) {
  LockHolder holder;
  bool has_pid = false, has_host = false, has_command = false, has_since = false;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string name = line.substr(0, eq);
    std::string value = line.substr(eq + 1);
    if (name == "pid") {
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), holder.pid);
      has_pid = ec == std::errc() && end == value.data() + value.size();
    } else if (name == "host") {
      holder.host = value;
      has_host = true;
    } else if (name == "command") {
      holder.command = value;
      has_command = true;
    } else if (name == "since") {
      auto since = parse_rfc3339(value);
      if (since) holder.since = *since;
      has_since = since.has_value();
    }
  }
  if (!(has_pid && has_host && has_command && has_since)) return std::nullopt;
  return holder;
}

std::string read_content(int fd) {
  std::string content(kMaxHolderBytes, '\0');
  ssize_t n = ::pread(fd, content.data(), content.size(), 0);
  content.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return content;
}

}  // namespace

std::string LockHolder::describe() const {
  return "pid " + std::to_string(pid) + " on host " + host + " (" + command + ") since " +
         format_rfc3339(since);
}

Result<std::unique_ptr<WriterLock>> WriterLock::acquire(const std::string& db_path,
                                                        const std::string& command) {
  const std::string lock_path = db_path + ".lock";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, kPrivateMode);
  if (fd < 0) {
    return lock_error(ErrorKind::Io,
                      "cannot open lock file " + lock_path + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 ||
      ((st.st_mode & 07777) != kPrivateMode && ::fchmod(fd, kPrivateMode) != 0)) {
    int err = errno;
    ::close(fd);
    return lock_error(ErrorKind::Io,
                      "cannot make lock file " + lock_path + " mode 0600: " + std::strerror(err));
  }

  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    std::string content = read_content(fd);
    ::close(fd);
    if (err != EWOULDBLOCK) {
      return lock_error(ErrorKind::Io, "cannot lock " + lock_path + ": " + std::strerror(err));
    }
    auto holder = decode_holder(content);
    if (!holder) {
      return lock_error(ErrorKind::Conflict,
                        "state is locked by another process (lock file " + lock_path + ")");
    }
    return lock_error(ErrorKind::Conflict, "state is locked by " + holder->describe());
  }

  LockHolder me;
  me.pid = static_cast<int>(::getpid());
  me.host = host_name();
  me.command = command;
  me.since = SystemClock().now();
  const std::string text = encode_holder(me);
  if (::ftruncate(fd, 0) != 0 ||
      ::pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    int err = errno;
    ::close(fd);  // releases the lock
    return lock_error(ErrorKind::Io,
                      "cannot write lock file " + lock_path + ": " + std::strerror(err));
  }
  return std::unique_ptr<WriterLock>(new WriterLock(fd));
}

WriterLock::~WriterLock() {
  if (fd_ < 0) return;
  // Clear the holder details before the kernel releases the lock on close.
  if (::ftruncate(fd_, 0) != 0) {
    // Stale details are harmless: flock, not the content, decides who holds it.
  }
  ::close(fd_);
}

}  // namespace tokend::state
