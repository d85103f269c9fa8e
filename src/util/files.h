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

// As make_private_directories, but the directories it creates get `mode`
// (whatever the umask) and, when given, the group `group`.
Status make_directories(const std::string& dir, mode_t mode, std::optional<gid_t> group);

// The id of group `name` in the group database; nullopt when there is none.
std::optional<gid_t> group_id(const std::string& name);

// Whether this process may give the files it owns group `gid`: it runs as
// root, or `gid` is its effective or a supplementary group.
bool may_use_group(gid_t gid);

// Replaces `path` with `content`: a new file beside it with `mode` (whatever
// the umask) and, when given, the group `group`, fsync, rename over `path`,
// fsync of the directory. Readers see the old file or the whole new one,
// never a part; after a crash either is there. The parent directory must
// exist. On failure `path` is unchanged and the temporary file is removed.
// Thread-safe (each call has its own temporary file).
Status write_file_atomically(const std::string& path, std::string_view content, mode_t mode = 0600,
                             std::optional<gid_t> group = std::nullopt);

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
