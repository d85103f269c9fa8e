// Watches the config file and the spec paths with inotify and reports a
// change from its own thread. Directories are watched rather than files, so
// editors that write a new file and rename it over the old one are seen:
// a spec directory reports its `*.toml` files (not hidden ones, as the spec
// loader reads them), a single file (the config file, or a spec path that
// is a file) is watched through its parent directory by name.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "util/result.h"

namespace tokend::daemon {

// Whether an event on `name` inside a watched directory matters: `any_toml`
// directories care for every visible *.toml file, others only for `names`.
struct WatchedDirectory {
  bool any_toml = false;
  std::set<std::string> names;
  bool matters(const std::string& name) const;
};

// The directories to watch for a config file and its spec paths (absolute).
// A path that does not exist is watched through its parent (so its creation
// is seen).
std::map<std::string, WatchedDirectory> watch_plan(const std::string& config_path,
                                                   const std::vector<std::string>& spec_paths);

class ChangeWatcher {
 public:
  // `on_change(path)` runs on the watcher's thread for each relevant event
  // (path is the changed file or directory); it must not block for long.
  // Io when inotify cannot be set up.
  static Result<std::unique_ptr<ChangeWatcher>> start(
      std::function<void(const std::string&)> on_change);
  ~ChangeWatcher();
  ChangeWatcher(const ChangeWatcher&) = delete;
  ChangeWatcher& operator=(const ChangeWatcher&) = delete;

  // Replaces the watched set with watch_plan(config_path, spec_paths). Adds
  // a watch again for a directory that was removed and re-created. Returns a
  // message for each directory that cannot be watched (the rest still are).
  // Thread-safe.
  std::vector<std::string> watch(const std::string& config_path,
                                 const std::vector<std::string>& spec_paths);

 private:
  ChangeWatcher(int inotify_fd, int stop_fd, std::function<void(const std::string&)> on_change);
  void run();

  int inotify_fd_;
  int stop_fd_;
  std::function<void(const std::string&)> on_change_;
  std::mutex mutex_;
  std::map<int, std::string> directories_;        // by watch descriptor
  std::map<std::string, WatchedDirectory> plan_;  // by directory
  std::thread thread_;
};

}  // namespace tokend::daemon
