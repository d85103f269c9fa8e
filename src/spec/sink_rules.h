// Which sinks can never take a token's value. A sink is refused when it
// resolves (symlinks followed for the parts of the path that exist) to one
// of astro-tokend's own files — the state file (SQLite) and its -wal, -shm, -journal
// and lock files, the config file, the API token file, a spec file or spec
// directory, or a `.toml` file inside a spec directory (it would be read as
// a spec) — or when it is an existing directory, lies under something that is
// not a directory, or has a file name or path longer than the file system
// allows. Files are matched by resolved path and, where they exist, by
// device and inode (hard links).
//
// Reads the file system (stat, realpath, pathconf); writes nothing.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "spec/model.h"

namespace tokend::spec {

class SinkRules {
 public:
  // `spec_files` and `spec_dirs` absolute, as loaded.
  SinkRules(const Config& config, const std::vector<std::string>& spec_files);

  // Why `sink` (absolute, lexically normal) cannot work, as a message that
  // names it ("sink \"/x\" is the state file"); nullopt when it can.
  std::optional<std::string> problem(const std::string& sink) const;

  // The file `sink` names once the symlinks of its existing part are resolved.
  static std::string resolve(const std::string& sink);
  // Device and inode of the file at `resolved`, when it exists.
  static std::optional<std::pair<dev_t, ino_t>> identity(const std::string& resolved);

 private:
  struct OwnFile {
    std::string resolved;
    std::optional<std::pair<dev_t, ino_t>> identity;
    std::string what;  // "the state file", "the spec file \"a.toml\"", …
  };
  std::vector<OwnFile> own_files_;
  std::vector<std::string> spec_dirs_;  // resolved
};

}  // namespace tokend::spec
