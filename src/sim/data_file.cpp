#include "sim/data_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace tokend::sim {

namespace {

Error io_error(const std::string& what, const std::string& path, int err) {
  return Error{ErrorKind::Io, what + " " + path + ": " + std::strerror(err), "", 0};
}

}  // namespace

Status write_file_atomically(const std::string& path, const std::string& content) {
  std::filesystem::path target(path);
  std::filesystem::path dir = target.parent_path().empty() ? "." : target.parent_path();
  std::string temp = (dir / ("." + target.filename().string() + ".XXXXXX")).string();
  int fd = mkstemp(temp.data());
  if (fd < 0) return io_error("cannot create a temporary file for", path, errno);
  fchmod(fd, 0600);
  size_t written = 0;
  while (written < content.size()) {
    ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      ::close(fd);
      ::unlink(temp.c_str());
      return io_error("cannot write", path, err);
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int err = errno;
    ::unlink(temp.c_str());
    return io_error("cannot sync", path, err);
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(temp.c_str());
    return io_error("cannot replace", path, err);
  }
  int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return ok_status();
}

Result<std::optional<std::string>> read_file_if_exists(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return std::optional<std::string>();
    return io_error("cannot read", path, errno);
  }
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) return io_error("cannot read", path, errno);
  return std::optional<std::string>(content.str());
}

DataFileWriter::DataFileWriter(std::string path, const Organization& org, Logger& log,
                               std::chrono::milliseconds delay)
    : path_(std::move(path)), org_(org), log_(log), delay_(delay) {
  thread_ = std::thread([this] { run(); });
}

DataFileWriter::~DataFileWriter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  Status flushed = flush();
  if (!flushed.ok()) log_.error("data file not saved", {{"error", flushed.error().message}});
}

void DataFileWriter::schedule() {
  {
    std::lock_guard lock(mutex_);
    scheduled_ = true;
  }
  cv_.notify_all();
}

Status DataFileWriter::flush() {
  std::lock_guard lock(write_mutex_);
  uint64_t revision = org_.revision();
  if (revision == saved_revision_) return ok_status();
  Status written = write_file_atomically(path_, org_.encode_data());
  if (written.ok()) saved_revision_ = revision;
  return written;
}

void DataFileWriter::run() {
  std::unique_lock lock(mutex_);
  while (true) {
    cv_.wait(lock, [this] { return stopping_ || scheduled_; });
    if (stopping_) return;
    cv_.wait_for(lock, delay_, [this] { return stopping_; });
    if (stopping_) return;
    scheduled_ = false;
    lock.unlock();
    Status flushed = flush();
    if (!flushed.ok()) log_.error("data file not saved", {{"error", flushed.error().message}});
    lock.lock();
  }
}

}  // namespace tokend::sim
