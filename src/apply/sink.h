// The secret-delivery seam. A token value returned by create or rotate goes to
// the token's sink before the action counts as done; state keeps only the
// SHA-256 fingerprint. Implementations: FileSink (the real filesystem) and
// MemorySink (tests).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>

#include "model/token.h"
#include "util/result.h"

namespace tokend::apply {

// Where a value goes and how its file is made.
struct SinkTarget {
  std::string path;   // absolute
  int mode = 0600;    // permission bits of the file
  std::string group;  // group name of the file; "" = the writer's own group

  bool operator==(const SinkTarget&) const = default;
};

class SecretSink {
 public:
  virtual ~SecretSink() = default;

  // Durably replaces the content at target.path with `value`, as a file with
  // target.mode and target.group: on success the new value is in place (or,
  // after a crash, either the old or the new file is — never a partial one).
  // Error Io naming the path (never the value) otherwise, also when the group
  // does not exist or this process may not give it.
  virtual Status write(const SinkTarget& target, const SecretValue& value) = 0;

  // The content at `path`; nullopt when there is no such file (nothing at
  // the path, or a part of it is not a directory). Error Io when
  // something is there that cannot be read (permissions, I/O error, not a
  // regular file); Error Invalid when it is larger than any value written
  // (kMaxSinkBytes), so it cannot be one.
  virtual Result<std::optional<SecretValue>> read(const std::string& path) = 0;

  // Removes the file at `path` if present (after a token is destroyed).
  virtual Status remove(const std::string& path) = 0;

  // Whether write(target, …) can succeed as far as can be told without
  // writing: checked before a value is created or rotated for the target, so
  // that an undeliverable sink holds its token back instead of losing a new
  // value on every run. Error Io naming the path and the reason otherwise.
  virtual Status check_writable(const SinkTarget& target) = 0;

  // SHA-256 hex of read(path); nullopt when there is no such file; read's errors.
  virtual Result<std::optional<std::string>> fingerprint(const std::string& path);
};

// Far above any token value: a larger file at a sink path is not one.
inline constexpr std::size_t kMaxSinkBytes = 1u << 20;

// Writes a new file in the same directory (target.mode, target.group),
// fsyncs it, renames it over the path, then fsyncs the directory. Creates
// missing parent directories: mode 0700, or 0750 with the sink's group when
// it has one (so that the group's members can reach the file). Reads open the
// file without blocking (a FIFO at the path is an error, not a hang).
// Thread-safe (each call works on its own temporary file).
//
// check_writable: the group (as write checks it); no directory at the path;
// the nearest existing ancestor of the path is a directory this process may
// write to.
//
// fingerprint remembers what it read: while a file keeps its identity
// (device, inode, size, modification and change times), its fingerprint is
// given again after one stat(2), without reading it. A file changed less than
// `settle` before it was read is not remembered: timestamps are coarse, and
// a change within the same tick would look like no change. A sink made with
// `remember` false reads and hashes the file every time (a command that
// measures each sink once).
class FileSink final : public SecretSink {
 public:
  static constexpr std::chrono::seconds kSettle{2};
  explicit FileSink(std::chrono::nanoseconds settle = kSettle, bool remember = true)
      : settle_(settle), remember_(remember) {}

  Status write(const SinkTarget& target, const SecretValue& value) override;
  Result<std::optional<SecretValue>> read(const std::string& path) override;
  Status remove(const std::string& path) override;
  Status check_writable(const SinkTarget& target) override;
  Result<std::optional<std::string>> fingerprint(const std::string& path) override;

  // How many times a file's content was read (tests).
  std::uint64_t files_read() const;

  // What identifies a file's content without reading it.
  struct Identity {
    std::uint64_t device = 0, inode = 0, size = 0;
    std::int64_t modified_ns = 0, changed_ns = 0;
    bool operator==(const Identity&) const = default;
  };

 private:
  struct Remembered {
    Identity identity;
    std::string sha256;
  };
  // The content at `path` and the identity of the file it was read from.
  Result<std::optional<SecretValue>> read_with_identity(const std::string& path,
                                                        Identity* identity);
  void forget(const std::string& path);

  const std::chrono::nanoseconds settle_;
  const bool remember_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Remembered> remembered_;
  std::uint64_t files_read_ = 0;
};

// In memory, keyed by path. Thread-safe.
class MemorySink final : public SecretSink {
 public:
  Status write(const SinkTarget& target, const SecretValue& value) override;
  Result<std::optional<SecretValue>> read(const std::string& path) override;
  Status remove(const std::string& path) override;
  // Ok unless set_unwritable(path) was called for target.path.
  Status check_writable(const SinkTarget& target) override;

  std::optional<std::string> content(const std::string& path) const;
  // The target of the last write to `path` (its mode and group).
  std::optional<SinkTarget> target(const std::string& path) const;
  void set_content(const std::string& path, const std::string& content);
  // Makes every later write fail with Error Io (tests of failed delivery).
  void fail_writes(bool fail);
  // Makes reads of `path` fail with Error Io "cannot read PATH: Permission
  // denied" while `fail` (tests of unreadable sinks).
  void fail_reads(const std::string& path, bool fail);
  // Makes check_writable (only) fail for `path` while `fail`.
  void set_unwritable(const std::string& path, bool fail);

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::string> files_;
  std::map<std::string, SinkTarget> targets_;
  std::set<std::string> unreadable_;
  std::set<std::string> unwritable_;
  bool fail_writes_ = false;
};

}  // namespace tokend::apply
