// A content-addressed cache of validated token specs, one entry per spec file,
// so that loading an unchanged file costs a read and a hash instead of a TOML
// parse. An entry is named by the SHA-256 of the loader's version, of what the
// validation of a file takes from the config (config_fingerprint in the
// loader) and of the file's bytes; it holds the file's tokens as validated,
// with the positions that checks across files report.
//
// Only a file of a spec set that loaded without any diagnostic is stored, so
// an entry never stands for a file with a problem. What validation reads
// from outside the file (other files, the file system, the group database) is
// checked again on every load: an entry spares the parse, never those checks.
//
// Entries are files of mode 0600 in a directory of mode 0700, replaced
// atomically. The cache is used only while its directory belongs to the
// user this process runs as and no one else may write it; an entry only
// when it is a regular file of that user that no one else may read or
// write. An entry that cannot be read, is larger than 256 MiB, is corrupt,
// was written by another loader version or under another name is treated as
// absent (and written again). Nothing here throws; failures to write are
// ignored (the cache is an optimisation, never a reason for a load to fail).
// find() may be called from several threads at once; store() and prune()
// from one at a time.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "spec/model.h"

namespace tokend::spec {

// The version of the loader whose results the cache holds: changes whenever
// the sources of spec/ or model/ or the toml11 version change.
extern const char* const kSpecLoaderVersion;

// One token of a cached file. Positions are without a file name (the file is
// named as it is shown when loaded); `spec.pos.file` is empty.
struct CachedToken {
  TokenSpec spec;
  SourcePos key_pos;     // where its key is written
  SourcePos sink_where;  // where its sink is given (the table for the default sink)
  SourcePos import_pos;  // where import_id is given (0:0 without one)
  bool operator==(const CachedToken&) const = default;
};

// The tokens of one spec file, in the order they are written.
struct CachedSpecFile {
  std::vector<CachedToken> tokens;
  bool operator==(const CachedSpecFile&) const = default;
};

// The directory the cache of `config` lives in: [specs] cache_dir when set
// ("" turns the cache off), otherwise "spec-cache" beside the SQLite state
// file, or beside [secrets] dir with a PostgreSQL state. "" when off (also
// for an in-memory SQLite state).
std::string spec_cache_dir(const Config& config);

// The entry's text, and back; decode returns nullopt for anything it did not
// write under `key` and `loader_version` (truncated, altered, another key or
// version), never throwing.
std::string encode_cached_file(const CachedSpecFile& file, std::string_view key,
                               std::string_view loader_version);
std::optional<CachedSpecFile> decode_cached_file(std::string_view text, std::string_view key,
                                                 std::string_view loader_version);

class SpecCache {
 public:
  // A cache in `dir` ("" = none); `loader_version` other than
  // kSpecLoaderVersion only in tests. The directory is created (0700) on the
  // first store, and only when its parent is a directory of this user;
  // entries are found only in a directory that was private to this user when
  // the cache was made.
  explicit SpecCache(std::string dir, std::string loader_version = kSpecLoaderVersion);

  // The entry name for a file of `bytes` validated with `config_fingerprint`.
  std::string key_for(std::string_view config_fingerprint, std::string_view bytes) const;

  // The entry `key`, or nullopt when there is none that this loader wrote.
  std::optional<CachedSpecFile> find(const std::string& key) const;
  // Writes entry `key` (atomically, 0600); false when it could not be written.
  bool store(const std::string& key, const CachedSpecFile& file) const;
  // Removes every entry but those named in `keep`; other files are left alone.
  void prune(const std::set<std::string>& keep) const;

  const std::string& dir() const { return dir_; }
  // The entry file of `key`.
  std::string path_of(const std::string& key) const;

 private:
  std::string dir_;
  std::string loader_version_;
  bool readable_;  // dir_ existed and was private when constructed
};

}  // namespace tokend::spec
