// The secret-delivery seam. A token value returned by create or rotate goes to
// the token's sink before the action counts as done; state keeps only the
// SHA-256 fingerprint. Implementations: FileSink (the real filesystem) and
// MemorySink (tests).
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "model/token.h"
#include "util/result.h"

namespace tokend::apply {

class SecretSink {
 public:
  virtual ~SecretSink() = default;

  // Durably replaces the content at `path` with `value`: on success the new
  // value is in place (or, after a crash, either the old or the new file is —
  // never a partial one). Error Io naming the path (never the value) otherwise.
  virtual Status write(const std::string& path, const SecretValue& value) = 0;

  // SHA-256 hex of the content at `path`; nullopt when there is no such file.
  // Error Io when it exists but cannot be read.
  virtual Result<std::optional<std::string>> fingerprint(const std::string& path) = 0;

  // Removes the file at `path` if present (after a token is destroyed).
  virtual Status remove(const std::string& path) = 0;
};

// Writes a new file in the same directory (mode 0600), fsyncs it, renames it
// over `path`, then fsyncs the directory. Creates missing parent directories
// with mode 0700. Thread-safe (each call works on its own temporary file).
class FileSink final : public SecretSink {
 public:
  Status write(const std::string& path, const SecretValue& value) override;
  Result<std::optional<std::string>> fingerprint(const std::string& path) override;
  Status remove(const std::string& path) override;
};

// In memory, keyed by path. Thread-safe.
class MemorySink final : public SecretSink {
 public:
  Status write(const std::string& path, const SecretValue& value) override;
  Result<std::optional<std::string>> fingerprint(const std::string& path) override;
  Status remove(const std::string& path) override;

  std::optional<std::string> content(const std::string& path) const;
  void set_content(const std::string& path, const std::string& content);
  // Makes every later write fail with Error Io (tests of failed delivery).
  void fail_writes(bool fail);

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::string> files_;
  bool fail_writes_ = false;
};

}  // namespace tokend::apply
