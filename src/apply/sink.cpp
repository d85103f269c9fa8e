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

#include "util/files.h"
#include "util/hash.h"

namespace tokend::apply {

namespace fs = std::filesystem;

Status FileSink::write(const std::string& path, const SecretValue& value) {
  if (Status made = make_private_directories(fs::path(path).parent_path().string()); !made.ok())
    return made;
  return write_file_atomically(path, value.reveal(), 0600);
}

Result<std::optional<std::string>> FileSink::fingerprint(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::optional<std::string>{};
  if (!fs::is_regular_file(path, ec)) return Error::io("sink " + path + " is not a regular file");
  auto content = read_file(path);
  if (!content.ok()) return content.error();
  return std::optional<std::string>{sha256_hex(content.value())};
}

Status FileSink::remove(const std::string& path) {
  if (unlink(path.c_str()) != 0 && errno != ENOENT)
    return errno_error("cannot remove", path, errno);
  return ok_status();
}

Status MemorySink::write(const std::string& path, const SecretValue& value) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (fail_writes_) return Error::io("cannot write " + path + ": injected failure");
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
