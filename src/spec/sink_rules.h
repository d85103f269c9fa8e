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

#include <map>
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

  // problem(sink), resolve(sink) and identity() of the resolved file at once,
  // with the same results; what it learns about the directory a sink lies in
  // is kept, so that the sinks of one directory cost a stat each (a sink that
  // is a symlink, or cannot be looked up, takes the long way). `resolved` and
  // `identity` are set only without a problem. Not thread-safe.
  struct Inspection {
    std::optional<std::string> problem;
    std::string resolved;
    std::optional<std::pair<dev_t, ino_t>> identity;
  };
  Inspection inspect(const std::string& sink);

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
  // What problem() decides by.
  struct Facts {
    long max_name = 0;  // of the file system of the sink's deepest existing ancestor
    std::string resolved;
    std::optional<std::pair<dev_t, ino_t>> identity;  // of `resolved`
    bool is_directory = false;                        // `resolved` is one
    std::string ancestor;  // the deepest existing ancestor of resolved's parent
    bool ancestor_is_directory = false;
  };
  // About the directory (as written) that sinks lie in.
  struct DirFacts {
    std::optional<dev_t> device;          // of the directory, when it exists
    long max_name = 0;                    // of its deepest existing ancestor
    std::optional<std::string> resolved;  // weakly canonical; nullopt when that failed
    std::string ancestor;                 // the deepest existing ancestor of `resolved`
    bool ancestor_is_directory = false;
  };
  static Facts facts_of(const std::string& sink);
  std::optional<std::string> judge(const std::string& sink, const Facts& facts) const;
  const DirFacts& dir_facts(const std::string& dir);

  std::vector<OwnFile> own_files_;
  std::vector<std::string> spec_dirs_;    // resolved
  std::map<std::string, DirFacts> dirs_;  // by directory as written
};

}  // namespace tokend::spec
