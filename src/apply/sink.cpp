#include "apply/sink.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "util/hash.h"

namespace tokend::apply {

namespace fs = std::filesystem;

namespace {

Error io_error(const std::string& what, const std::string& path, int err) {
  return Error{ErrorKind::Io, what + " " + path + ": " + std::strerror(err), "", 0};
}

// Creates `dir` and any missing parents with mode 0700.
Status make_dirs(const fs::path& dir) {
  if (dir.empty()) return ok_status();
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return ok_status();
  if (Status parent = make_dirs(dir.parent_path()); !parent.ok()) return parent;
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return io_error("cannot create directory", dir.string(), errno);
  return ok_status();
}

Status fsync_path(const std::string& path, int flags) {
  int fd = open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return io_error("cannot open", path, errno);
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  if (rc != 0) return io_error("cannot fsync", path, err);
  return ok_status();
}

}  // namespace

Status FileSink::write(const std::string& path, const SecretValue& value) {
  fs::path target(path);
  fs::path dir = target.parent_path();
  if (Status made = make_dirs(dir); !made.ok()) return made;

  static std::atomic<unsigned> counter{0};
  std::string tmp = (dir / ("." + target.filename().string() + ".tmp." + std::to_string(getpid()) +
                            "." + std::to_string(counter++)))
                        .string();
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return io_error("cannot create", tmp, errno);
  // The mode given to open() is filtered by the umask; make sure it is 0600.
  if (fchmod(fd, 0600) != 0) {
    int err = errno;
    close(fd);
    unlink(tmp.c_str());
    return io_error("cannot set mode of", tmp, err);
  }
  const std::string& data = value.reveal();
  size_t written = 0;
  while (written < data.size()) {
    ssize_t n = ::write(fd, data.data() + written, data.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      unlink(tmp.c_str());
      return io_error("cannot write", tmp, err);
    }
    written += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) {
    int err = errno;
    close(fd);
    unlink(tmp.c_str());
    return io_error("cannot fsync", tmp, err);
  }
  close(fd);
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    return io_error("cannot rename into place", path, err);
  }
  return fsync_path(dir.empty() ? "." : dir.string(), O_RDONLY | O_DIRECTORY);
}

Result<std::optional<std::string>> FileSink::fingerprint(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::optional<std::string>{};
  if (!fs::is_regular_file(path, ec))
    return Error{ErrorKind::Io, "sink " + path + " is not a regular file", "", 0};
  std::ifstream in(path, std::ios::binary);
  if (!in) return io_error("cannot read", path, errno);
  std::ostringstream content;
  content << in.rdbuf();
  return std::optional<std::string>{sha256_hex(content.str())};
}

Status FileSink::remove(const std::string& path) {
  if (unlink(path.c_str()) != 0 && errno != ENOENT) return io_error("cannot remove", path, errno);
  return ok_status();
}

Status MemorySink::write(const std::string& path, const SecretValue& value) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (fail_writes_)
    return Error{ErrorKind::Io, "cannot write " + path + ": injected failure", "", 0};
  files_[path] = value.reveal();
  return ok_status();
}

Result<std::optional<std::string>> MemorySink::fingerprint(const std::string& path) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = files_.find(path);
  if (it == files_.end()) return std::optional<std::string>{};
  return std::optional<std::string>{sha256_hex(it->second)};
}

Status MemorySink::remove(const std::string& path) {
  std::lock_guard<std::mutex> lock(mutex_);
  files_.erase(path);
  return ok_status();
}

std::optional<std::string> MemorySink::content(const std::string& path) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = files_.find(path);
  if (it == files_.end()) return std::nullopt;
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

}  // namespace tokend::apply
