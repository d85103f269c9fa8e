#include "util/files.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

namespace tokend {

namespace fs = std::filesystem;

Error errno_error(std::string_view what, const std::string& path, int err) {
  return Error::io(std::string(what) + " " + path + ": " + std::strerror(err));
}

Status make_private_directories(const std::string& dir) {
  if (dir.empty()) return ok_status();
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return ok_status();
  if (Status parent = make_private_directories(fs::path(dir).parent_path().string()); !parent.ok())
    return parent;
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return errno_error("cannot create directory", dir, errno);
  // mkdir's mode is filtered by the umask; 0700 is already the narrowest it can make.
  return ok_status();
}

Status make_directories(const std::string& dir, mode_t mode, std::optional<gid_t> group) {
  if (dir.empty()) return ok_status();
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return ok_status();
  if (Status parent = make_directories(fs::path(dir).parent_path().string(), mode, group);
      !parent.ok())
    return parent;
  if (mkdir(dir.c_str(), 0700) != 0) {
    if (errno == EEXIST) return ok_status();
    return errno_error("cannot create directory", dir, errno);
  }
  if (group && chown(dir.c_str(), static_cast<uid_t>(-1), *group) != 0)
    return errno_error("cannot set the group of directory", dir, errno);
  if (chmod(dir.c_str(), mode) != 0) return errno_error("cannot set the mode of", dir, errno);
  return ok_status();
}

std::optional<gid_t> group_id(const std::string& name) {
  struct group entry {};
  struct group* found = nullptr;
  std::vector<char> buffer(16384);
  for (;;) {
    const int rc = getgrnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found);
    if (rc == ERANGE && buffer.size() < (1u << 22)) {
      buffer.resize(buffer.size() * 4);
      continue;
    }
    if (rc != 0 || found == nullptr) return std::nullopt;
    return found->gr_gid;
  }
}

bool may_use_group(gid_t gid) {
  if (geteuid() == 0 || getegid() == gid) return true;
  const int count = getgroups(0, nullptr);
  if (count <= 0) return false;
  std::vector<gid_t> groups(static_cast<std::size_t>(count));
  const int got = getgroups(count, groups.data());
  return got > 0 && std::find(groups.begin(), groups.begin() + got, gid) != groups.begin() + got;
}

Status write_file_atomically(const std::string& path, std::string_view content, mode_t mode,
                             std::optional<gid_t> group) {
  const fs::path target(path);
  const fs::path dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  std::string temp = (dir / ("." + target.filename().string() + ".XXXXXX")).string();
  int fd = mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0) return errno_error("cannot create a file in", dir.string(), errno);
  auto fail = [&](const std::string& what) {
    int err = errno;
    close(fd);
    unlink(temp.c_str());
    return errno_error(what, path, err);
  };
  if (group) {
    struct stat made {};
    if (fstat(fd, &made) != 0) return fail("cannot write");
    if (made.st_gid != *group && fchown(fd, static_cast<uid_t>(-1), *group) != 0)
      return fail("cannot set the group of");
  }
  if (fchmod(fd, mode) != 0) return fail("cannot set the mode of");
  size_t written = 0;
  while (written < content.size()) {
    ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("cannot write");
    written += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) return fail("cannot write");
  if (close(fd) != 0) {
    int err = errno;
    unlink(temp.c_str());
    return errno_error("cannot write", path, err);
  }
  if (rename(temp.c_str(), path.c_str()) != 0) {
    int err = errno;
    unlink(temp.c_str());
    return errno_error("cannot write", path, err);
  }
  int dir_fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return errno_error("cannot open directory", dir.string(), errno);
  int rc = fsync(dir_fd);
  int err = errno;
  close(dir_fd);
  if (rc != 0) return errno_error("cannot fsync directory", dir.string(), err);
  return ok_status();
}

Result<std::optional<std::string>> read_file_if_exists(const std::string& path,
                                                       std::size_t max_bytes) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return errno_error("cannot read", path, errno);
  }
  std::string content;
  char buffer[65536];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      return errno_error("cannot read", path, err);
    }
    if (n == 0) break;
    if (content.size() + static_cast<size_t>(n) > max_bytes) {
      close(fd);
      return Error::invalid(path + " is larger than " + std::to_string(max_bytes) + " bytes");
    }
    content.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return std::optional<std::string>(std::move(content));
}

Result<std::string> read_file(const std::string& path, std::size_t max_bytes) {
  auto content = read_file_if_exists(path, max_bytes);
  if (!content.ok()) return content.error();
  if (!content->has_value()) return errno_error("cannot read", path, ENOENT);
  return std::move(**content);
}

}  // namespace tokend
