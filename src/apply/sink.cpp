#include "apply/sink.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "util/files.h"
#include "util/hash.h"

namespace tokend::apply {

namespace fs = std::filesystem;

Result<std::optional<std::string>> SecretSink::fingerprint(const std::string& path) {
  auto value = read(path);
  if (!value.ok()) return value.error();
  if (!value->has_value()) return std::optional<std::string>{};
  return std::optional<std::string>{sha256_hex((*value)->reveal())};
}

namespace {

// The id of target.group (nullopt for none), or why it cannot be used.
Result<std::optional<gid_t>> sink_group(const SinkTarget& target) {
  if (target.group.empty()) return std::optional<gid_t>();
  std::optional<gid_t> gid = group_id(target.group);
  if (!gid)
    return Error::io("cannot write " + target.path + ": its group " + target.group +
                     " is not a group on this system");
  if (!may_use_group(*gid))
    return Error::io(
        "cannot write " + target.path + " with the group " + target.group +
        ": astro-tokend runs as uid " + std::to_string(geteuid()) +
        ", which is not a member of it (under systemd: SupplementaryGroups=" + target.group + ")");
  return gid;
}

}  // namespace

Status FileSink::check_writable(const SinkTarget& target) {
  if (auto group = sink_group(target); !group.ok()) return group.error();
  struct stat st {};
  if (::stat(target.path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    return errno_error("cannot write", target.path, EISDIR);
  fs::path dir = fs::path(target.path).parent_path();
  while (::stat(dir.c_str(), &st) != 0) {
    // ENOTDIR: a part of the path is a file; the walk up finds it.
    if (errno != ENOENT && errno != ENOTDIR) return errno_error("cannot write", target.path, errno);
    if (!dir.has_parent_path() || dir.parent_path() == dir) break;
    dir = dir.parent_path();
  }
  if (!S_ISDIR(st.st_mode))
    return Error::io("cannot write " + target.path + ": " + dir.string() + " is not a directory");
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    return errno_error("cannot write", target.path, errno);
  return ok_status();
}

Status FileSink::write(const SinkTarget& target, const SecretValue& value) {
  auto group = sink_group(target);
  if (!group.ok()) return group.error();
  const std::optional<gid_t> gid = *group;
  const std::string dir = fs::path(target.path).parent_path().string();
  if (Status made = gid ? make_directories(dir, 0750, gid) : make_private_directories(dir);
      !made.ok())
    return made;
  forget(target.path);
  return write_file_atomically(target.path, value.reveal(), static_cast<mode_t>(target.mode), gid);
}

namespace {

// Far more files than any organization has tokens: past it, what is
// remembered starts over.
constexpr std::size_t kMostRemembered = 1u << 17;

std::int64_t nanoseconds_of(const struct timespec& t) {
  return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

FileSink::Identity identity_of(const struct stat& info) {
  return FileSink::Identity{static_cast<std::uint64_t>(info.st_dev),
                            static_cast<std::uint64_t>(info.st_ino),
                            static_cast<std::uint64_t>(info.st_size), nanoseconds_of(info.st_mtim),
                            nanoseconds_of(info.st_ctim)};
}

}  // namespace

Result<std::optional<SecretValue>> FileSink::read(const std::string& path) {
  return read_with_identity(path, nullptr);
}

Result<std::optional<std::string>> FileSink::fingerprint(const std::string& path) {
  if (!remember_) return SecretSink::fingerprint(path);
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode)) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = remembered_.find(path);
    if (found != remembered_.end() && found->second.identity == identity_of(info))
      return std::optional<std::string>{found->second.sha256};
  }
  Identity identity;
  auto value = read_with_identity(path, &identity);
  if (!value.ok()) {
    forget(path);
    return value.error();
  }
  if (!value->has_value()) {
    forget(path);
    return std::optional<std::string>{};
  }
  std::string sha256 = sha256_hex((*value)->reveal());
  struct timespec now {};
  clock_gettime(CLOCK_REALTIME, &now);
  const bool settled =
      nanoseconds_of(now) - std::max(identity.modified_ns, identity.changed_ns) >= settle_.count();
  std::lock_guard<std::mutex> lock(mutex_);
  if (!settled) {
    remembered_.erase(path);
  } else {
    if (remembered_.size() >= kMostRemembered) remembered_.clear();
    remembered_[path] = Remembered{identity, sha256};
  }
  return std::optional<std::string>{std::move(sha256)};
}

std::uint64_t FileSink::files_read() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return files_read_;
}

void FileSink::forget(const std::string& path) {
  std::lock_guard<std::mutex> lock(mutex_);
  remembered_.erase(path);
}

Result<std::optional<SecretValue>> FileSink::read_with_identity(const std::string& path,
                                                                Identity* identity) {
  const int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    // ENOTDIR: a part of the path is a file, so no file is at the path.
    if (errno == ENOENT || errno == ENOTDIR) return std::optional<SecretValue>{};
    return errno_error("cannot read sink", path, errno);
  }
  struct stat info {};
  if (fstat(fd, &info) != 0) {
    const int err = errno;
    close(fd);
    return errno_error("cannot read sink", path, err);
  }
  if (!S_ISREG(info.st_mode)) {
    close(fd);
    return Error::io("cannot read sink " + path + ": it is not a regular file");
  }
  if (identity != nullptr) *identity = identity_of(info);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++files_read_;
  }
  std::string content;
  char buffer[16384];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      close(fd);
      return errno_error("cannot read sink", path, err);
    }
    if (n == 0) break;
    if (content.size() + static_cast<size_t>(n) > kMaxSinkBytes) {
      close(fd);
      return Error::invalid("sink " + path + " is larger than " + std::to_string(kMaxSinkBytes) +
                            " bytes");
    }
    content.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return std::optional<SecretValue>{SecretValue(std::move(content))};
}

Status FileSink::remove(const std::string& path) {
  forget(path);
  if (unlink(path.c_str()) != 0 && errno != ENOENT)
    return errno_error("cannot remove", path, errno);
  return ok_status();
}

Status MemorySink::write(const SinkTarget& target, const SecretValue& value) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (fail_writes_) return Error::io("cannot write " + target.path + ": injected failure");
  files_[target.path] = value.reveal();
  targets_[target.path] = target;
  return ok_status();
}

Status MemorySink::check_writable(const SinkTarget& target) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (unwritable_.count(target.path)) return errno_error("cannot write", target.path, EACCES);
  return ok_status();
}

void MemorySink::set_unwritable(const std::string& path, bool fail) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (fail)
    unwritable_.insert(path);
  else
    unwritable_.erase(path);
}

Result<std::optional<SecretValue>> MemorySink::read(const std::string& path) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (unreadable_.count(path)) return errno_error("cannot read sink", path, EACCES);
  auto it = files_.find(path);
  if (it == files_.end()) return std::optional<SecretValue>{};
  return std::optional<SecretValue>{SecretValue(it->second)};
}

Status MemorySink::remove(const std::string& path) {
  std::lock_guard<std::mutex> lock(mutex_);
  files_.erase(path);
  targets_.erase(path);
  return ok_status();
}

std::optional<std::string> MemorySink::content(const std::string& path) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = files_.find(path);
  if (it == files_.end()) return std::nullopt;
  return it->second;
}

std::optional<SinkTarget> MemorySink::target(const std::string& path) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = targets_.find(path);
  if (it == targets_.end()) return std::nullopt;
  return it->second;
}

void MemorySink::set_content(const std::string& path, const std::string& content) {
  std::lock_guard<std::mutex> lock(mutex_);
  files_[path] = content;
}

void MemorySink::fail_writes(bool fail) {
  std::lock_guard<std::mutex> lock(mutex_);
  fail_writes_ = fail;
}

void MemorySink::fail_reads(const std::string& path, bool fail) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (fail)
    unreadable_.insert(path);
  else
    unreadable_.erase(path);
}

}  // namespace tokend::apply
