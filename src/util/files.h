// Files: private directories, atomic replacement and bounded reads. Every
// failure is an Error Io (or Invalid for a file over its size cap) that names
// the path and never the content, so callers may pass secrets as content.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "util/result.h"

namespace tokend {

// Error Io "WHAT PATH: strerror(err)", e.g. ("cannot read", "/x", ENOENT).
Error errno_error(std::string_view what, const std::string& path, int err);

// Creates `dir` and any missing parents with mode 0700 (whatever the umask);
// directories that already exist are left as they are. "" is a no-op.
Status make_private_directories(const std::string& dir);

// Replaces `path` with `content`: a new file beside it with `mode` (whatever
// the umask), fsync, rename over `path`, fsync of the directory. Readers see
// the old file or the whole new one, never a part; after a crash either is
// there. The parent directory must exist. On failure `path` is unchanged and
// the temporary file is removed. Thread-safe (each call has its own
// temporary file).
Status write_file_atomically(const std::string& path, std::string_view content, mode_t mode = 0600);

// A default cap for files astro-tokend reads that a person could point at
// anything (plan files, state imports): far above any real one.
inline constexpr std::size_t kMaxInputFileBytes = 64u << 20;

// The content of `path`, reading at most `max_bytes`: a longer file (or an
// endless one such as /dev/zero) is Invalid "PATH is larger than N bytes"
// without reading past the cap. Io when it cannot be opened or read.
Result<std::string> read_file(const std::string& path, std::size_t max_bytes = kMaxInputFileBytes);

// As read_file, but nullopt when `path` does not exist.
Result<std::optional<std::string>> read_file_if_exists(const std::string& path,
                                                       std::size_t max_bytes = kMaxInputFileBytes);

}  // namespace tokend
