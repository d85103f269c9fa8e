#include "daemon/watcher.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace tokend::daemon {

namespace fs = std::filesystem;

namespace {

constexpr uint32_t kDirectoryEvents = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
                                      IN_DELETE | IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF |
                                      IN_MOVE_SELF | IN_ONLYDIR;

}  // namespace

bool WatchedDirectory::matters(const std::string& name) const {
  if (names.count(name)) return true;
  return any_toml && name.size() > 5 && name.front() != '.' && name.ends_with(".toml");
}

std::map<std::string, WatchedDirectory> watch_plan(const std::string& config_path,
                                                   const std::vector<std::string>& spec_paths) {
  std::map<std::string, WatchedDirectory> plan;
  auto add_file = [&plan](const fs::path& file) {
    fs::path parent = file.parent_path();
    if (parent.empty()) parent = ".";
    plan[parent.string()].names.insert(file.filename().string());
  };
  add_file(config_path);
  for (const std::string& path : spec_paths) {
    std::error_code ec;
    if (fs::is_directory(path, ec))
      plan[fs::path(path).lexically_normal().string()].any_toml = true;
    else
      add_file(fs::path(path).lexically_normal());
  }
  return plan;
}

Result<std::unique_ptr<ChangeWatcher>> ChangeWatcher::start(
    std::function<void(const std::string&)> on_change) {
  int inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (inotify_fd < 0) return Error::io(std::string("inotify_init1: ") + std::strerror(errno));
  int stop_fd = eventfd(0, EFD_CLOEXEC);
  if (stop_fd < 0) {
    close(inotify_fd);
    return Error::io(std::string("eventfd: ") + std::strerror(errno));
  }
  return std::unique_ptr<ChangeWatcher>(
      new ChangeWatcher(inotify_fd, stop_fd, std::move(on_change)));
}

ChangeWatcher::ChangeWatcher(int inotify_fd, int stop_fd,
                             std::function<void(const std::string&)> on_change)
    : inotify_fd_(inotify_fd), stop_fd_(stop_fd), on_change_(std::move(on_change)) {
  thread_ = std::thread([this] { run(); });
}

ChangeWatcher::~ChangeWatcher() {
  uint64_t one = 1;
  ssize_t written = write(stop_fd_, &one, sizeof one);
  (void)written;
  thread_.join();
  close(inotify_fd_);
  close(stop_fd_);
}

std::vector<std::string> ChangeWatcher::watch(const std::string& config_path,
                                              const std::vector<std::string>& spec_paths) {
  std::map<std::string, WatchedDirectory> plan = watch_plan(config_path, spec_paths);
  std::vector<std::string> problems;
  std::lock_guard<std::mutex> lock(mutex_);
  std::map<int, std::string> directories;
  for (const auto& [directory, wanted] : plan) {
    int wd = inotify_add_watch(inotify_fd_, directory.c_str(), kDirectoryEvents);
    if (wd < 0) {
      problems.push_back("cannot watch " + directory + ": " + std::strerror(errno));
      continue;
    }
    directories[wd] = directory;
  }
  for (const auto& [wd, directory] : directories_)
    if (!directories.count(wd)) inotify_rm_watch(inotify_fd_, wd);
  directories_ = std::move(directories);
  plan_ = std::move(plan);
  return problems;
}

void ChangeWatcher::run() {
  alignas(inotify_event) char buffer[16 * 1024];
  for (;;) {
    pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    int ready = poll(fds, 2, -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    if (!(fds[0].revents & POLLIN)) continue;
    ssize_t length = read(inotify_fd_, buffer, sizeof buffer);
    if (length <= 0) continue;
    std::vector<std::string> changed;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (ssize_t offset = 0; offset < length;) {
        const auto* event = reinterpret_cast<const inotify_event*>(buffer + offset);
        offset += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
        if (event->mask & IN_Q_OVERFLOW) {
          changed.push_back("(event queue overflow)");
          continue;
        }
        auto dir = directories_.find(event->wd);
        if (dir == directories_.end()) continue;
        if (event->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
          changed.push_back(dir->second);
          if (event->mask & IN_IGNORED) directories_.erase(dir);
          continue;
        }
        std::string name = event->len > 0 ? std::string(event->name) : std::string();
        auto wanted = plan_.find(dir->second);
        if (wanted != plan_.end() && wanted->second.matters(name))
          changed.push_back((fs::path(dir->second) / name).string());
      }
    }
    for (const std::string& path : changed) on_change_(path);
  }
}

}  // namespace tokend::daemon
