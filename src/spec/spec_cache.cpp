#include "spec/spec_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <system_error>

#include "spec_loader_version.h"
#include "util/files.h"
#include "util/hash.h"

namespace tokend::spec {

const char* const kSpecLoaderVersion = kGeneratedSpecLoaderVersion;

namespace {

namespace fs = std::filesystem;

constexpr std::string_view kMagic = "astro-tokend spec cache\n";
constexpr std::string_view kEntrySuffix = ".spec";
// An entry holds at most the tokens of one spec file: far below this.
constexpr std::size_t kMaxEntryBytes = std::size_t{256} << 20;

// Values as `<decimal length>:<bytes>` (strings) and `<decimal>;` (integers).
class Writer {
 public:
  void text(std::string_view value) {
    out_ += std::to_string(value.size());
    out_ += ':';
    out_ += value;
  }
  void number(std::int64_t value) {
    out_ += std::to_string(value);
    out_ += ';';
  }
  void pos(const SourcePos& pos) {
    number(pos.line);
    number(pos.column);
  }
  void texts(const std::vector<std::string>& values) {
    number(static_cast<std::int64_t>(values.size()));
    for (const std::string& value : values) text(value);
  }
  std::string& out() { return out_; }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  bool number(std::int64_t& value) {
    const char* end = in_.data() + in_.size();
    auto [stop, error] = std::from_chars(in_.data(), end, value);
    if (error != std::errc() || stop == end || *stop != ';') return false;
    in_.remove_prefix(static_cast<std::size_t>(stop - in_.data()) + 1);
    return true;
  }
  bool number(int& value, std::int64_t lo, std::int64_t hi) {
    std::int64_t read = 0;
    if (!number(read) || read < lo || read > hi) return false;
    value = static_cast<int>(read);
    return true;
  }
  bool text(std::string& value) {
    std::size_t size = 0;
    const char* end = in_.data() + in_.size();
    auto [stop, error] = std::from_chars(in_.data(), end, size);
    if (error != std::errc() || stop == end || *stop != ':') return false;
    in_.remove_prefix(static_cast<std::size_t>(stop - in_.data()) + 1);
    if (size > in_.size()) return false;
    value.assign(in_.substr(0, size));
    in_.remove_prefix(size);
    return true;
  }
  bool pos(SourcePos& pos) {
    return number(pos.line, 0, INT32_MAX) && number(pos.column, 0, INT32_MAX);
  }
  // A count of items, each taking at least one byte of what is left.
  bool count(std::size_t& value) {
    std::int64_t read = 0;
    if (!number(read) || read < 0 || static_cast<std::uint64_t>(read) > in_.size()) return false;
    value = static_cast<std::size_t>(read);
    return true;
  }
  bool texts(std::vector<std::string>& values) {
    std::size_t n = 0;
    if (!count(n)) return false;
    values.clear();
    for (std::size_t i = 0; i < n; ++i)
      if (!text(values.emplace_back())) return false;
    return true;
  }
  bool done() const { return in_.empty(); }

 private:
  std::string_view in_;
};

void write_token(Writer& w, const CachedToken& token) {
  const TokenSpec& spec = token.spec;
  w.text(spec.key);
  w.text(spec.attrs.name);
  w.text(spec.attrs.description);
  w.text(to_string(spec.attrs.type));
  w.text(spec.attrs.role);
  w.number(static_cast<std::int64_t>(spec.attrs.roles.size()));
  for (const Role& role : spec.attrs.roles) {
    w.text(role.role);
    w.text(role.entity_id);
    w.text(to_string(role.entity_type));
    w.text(role.deployment_id);
  }
  w.number(spec.attrs.expiry_period_in_days.value_or(-1));
  w.text(to_string(spec.attrs.kind));
  w.number(spec.rotate_before_expiry_days);
  w.number(spec.rotate_every_days);
  w.text(spec.sink);
  w.number(spec.sink_mode);
  w.text(spec.sink_group);
  w.texts(spec.on_delivery);
  w.number(spec.import_id ? 1 : 0);
  if (spec.import_id) w.text(*spec.import_id);
  w.number(spec.lifecycle.prevent_destroy ? 1 : 0);
  w.number(spec.lifecycle.create_before_destroy ? 1 : 0);
  w.texts(spec.lifecycle.ignore_changes);
  w.pos(spec.pos);
  w.pos(token.key_pos);
  w.pos(token.sink_where);
  w.pos(token.import_pos);
}

bool read_token(Reader& r, CachedToken& token) {
  TokenSpec& spec = token.spec;
  std::string text;
  if (!r.text(spec.key) || !r.text(spec.attrs.name) || !r.text(spec.attrs.description) ||
      !r.text(text))
    return false;
  std::optional<EntityType> type = parse_token_type(text);
  if (!type) return false;
  spec.attrs.type = *type;
  if (!r.text(spec.attrs.role)) return false;
  std::size_t roles = 0;
  if (!r.count(roles)) return false;
  for (std::size_t i = 0; i < roles; ++i) {
    Role& role = spec.attrs.roles.emplace_back();
    if (!r.text(role.role) || !r.text(role.entity_id) || !r.text(text)) return false;
    std::optional<EntityType> entity_type = parse_entity_type(text);
    if (!entity_type) return false;
    role.entity_type = *entity_type;
    if (!r.text(role.deployment_id)) return false;
  }
  int expiry = 0;
  if (!r.number(expiry, -1, INT32_MAX)) return false;
  if (expiry >= 0) spec.attrs.expiry_period_in_days = expiry;
  if (!r.text(text)) return false;
  std::optional<TokenKind> kind = parse_token_kind(text);
  if (!kind) return false;
  spec.attrs.kind = *kind;
  int import = 0, prevent = 0, create_first = 0;
  if (!r.number(spec.rotate_before_expiry_days, 0, INT32_MAX) ||
      !r.number(spec.rotate_every_days, 0, INT32_MAX) || !r.text(spec.sink) ||
      !r.number(spec.sink_mode, 0, 07777) || !r.text(spec.sink_group) ||
      !r.texts(spec.on_delivery) || !r.number(import, 0, 1))
    return false;
  if (import == 1) {
    spec.import_id.emplace();
    if (!r.text(*spec.import_id)) return false;
  }
  if (!r.number(prevent, 0, 1) || !r.number(create_first, 0, 1) ||
      !r.texts(spec.lifecycle.ignore_changes))
    return false;
  spec.lifecycle.prevent_destroy = prevent == 1;
  spec.lifecycle.create_before_destroy = create_first == 1;
  return r.pos(spec.pos) && r.pos(token.key_pos) && r.pos(token.sink_where) &&
         r.pos(token.import_pos);
}

// Whether only this process's user can change what `info` describes.
bool changeable_only_by_us(const struct stat& info) {
  return info.st_uid == ::geteuid() && (info.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

bool is_private_directory(const std::string& dir) {
  struct stat info {};
  return ::stat(dir.c_str(), &info) == 0 && S_ISDIR(info.st_mode) && changeable_only_by_us(info);
}

// The bytes of entry `path` when it is a regular file (not a symlink) of this
// user that no one else may read or write, of at most kMaxEntryBytes;
// nullopt otherwise. Never blocks on a FIFO, never reads past the size.
std::optional<std::string> read_entry(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return std::nullopt;
  std::optional<std::string> text;
  struct stat info {};
  if (::fstat(fd, &info) == 0 && S_ISREG(info.st_mode) && changeable_only_by_us(info) &&
      (info.st_mode & 077) == 0 && info.st_size >= 0 &&
      static_cast<std::uint64_t>(info.st_size) <= kMaxEntryBytes) {
    std::string bytes(static_cast<std::size_t>(info.st_size), '\0');
    std::size_t got = 0;
    while (got < bytes.size()) {
      const ssize_t n = ::read(fd, bytes.data() + got, bytes.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    if (got == bytes.size()) text = std::move(bytes);
  }
  ::close(fd);
  return text;
}

// `name` beside the file or directory `path` (a trailing "/" ignored).
std::string beside(const std::string& path, const char* name) {
  fs::path at = fs::path(path).lexically_normal();
  if (!at.has_filename()) at = at.parent_path();
  return (at.parent_path() / name).string();
}

std::string header(std::string_view key, std::string_view loader_version) {
  std::string text(kMagic);
  text += "version ";
  text += loader_version;
  text += "\nkey ";
  text += key;
  text += '\n';
  return text;
}

}  // namespace

std::string spec_cache_dir(const Config& config) {
  if (config.spec_cache_dir) return *config.spec_cache_dir;
  if (config.state_backend == StateBackend::Postgres)
    return config.secrets_dir.empty() ? "" : beside(config.secrets_dir, "spec-cache");
  if (config.state_path.empty() || config.state_path == ":memory:") return "";
  return beside(config.state_path, "spec-cache");
}

std::string encode_cached_file(const CachedSpecFile& file, std::string_view key,
                               std::string_view loader_version) {
  Writer w;
  w.out() = header(key, loader_version);
  w.number(static_cast<std::int64_t>(file.tokens.size()));
  for (const CachedToken& token : file.tokens) write_token(w, token);
  std::string text = std::move(w.out());
  text += "sha256 " + sha256_hex(text) + "\n";
  return text;
}

std::optional<CachedSpecFile> decode_cached_file(std::string_view text, std::string_view key,
                                                 std::string_view loader_version) {
  const std::string expected = header(key, loader_version);
  constexpr std::size_t kTrailer = 7 + 64 + 1;  // "sha256 " HEX "\n"
  if (text.size() < expected.size() + kTrailer || text.substr(0, expected.size()) != expected)
    return std::nullopt;
  const std::string_view body = text.substr(0, text.size() - kTrailer);
  const std::string_view trailer = text.substr(text.size() - kTrailer);
  if (trailer != "sha256 " + sha256_hex(body) + "\n") return std::nullopt;

  Reader r(body.substr(expected.size()));
  CachedSpecFile file;
  std::size_t tokens = 0;
  if (!r.count(tokens)) return std::nullopt;
  // Grown as tokens are read: a count is never trusted with an allocation.
  for (std::size_t i = 0; i < tokens; ++i)
    if (!read_token(r, file.tokens.emplace_back())) return std::nullopt;
  if (!r.done()) return std::nullopt;
  return file;
}

namespace {

// `dir` without a trailing "/" (but "/" itself).
std::string without_trailing_separator(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

}  // namespace

SpecCache::SpecCache(std::string dir, std::string loader_version)
    : dir_(without_trailing_separator(std::move(dir))),
      loader_version_(std::move(loader_version)),
      readable_(!dir_.empty() && is_private_directory(dir_)) {}

std::string SpecCache::key_for(std::string_view config_fingerprint, std::string_view bytes) const {
  Sha256 hash;
  const std::string lengths = std::to_string(loader_version_.size()) + ":" +
                              std::to_string(config_fingerprint.size()) + ":" +
                              std::to_string(bytes.size()) + "\n";
  hash.update(lengths);
  hash.update(loader_version_);
  hash.update(config_fingerprint);
  hash.update(bytes);
  return hash.hex_digest();
}

std::string SpecCache::path_of(const std::string& key) const {
  return (fs::path(dir_) / (key + std::string(kEntrySuffix))).string();
}

std::optional<CachedSpecFile> SpecCache::find(const std::string& key) const {
  if (!readable_) return std::nullopt;
  std::optional<std::string> text = read_entry(path_of(key));
  if (!text) return std::nullopt;
  return decode_cached_file(*text, key, loader_version_);
}

bool SpecCache::store(const std::string& key, const CachedSpecFile& file) const {
  if (dir_.empty()) return false;
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(dir_, ec))) {
    // Made only in a directory of this user: a command run by another user
    // (root) must not leave a cache the daemon's user cannot use.
    struct stat parent {};
    const std::string parent_dir = fs::path(dir_).parent_path().string();
    if (::stat(parent_dir.empty() ? "." : parent_dir.c_str(), &parent) != 0 ||
        !S_ISDIR(parent.st_mode) || parent.st_uid != ::geteuid())
      return false;
    if (!make_private_directories(dir_).ok()) return false;
  }
  if (!is_private_directory(dir_)) return false;
  return write_file_atomically(path_of(key), encode_cached_file(file, key, loader_version_), 0600)
      .ok();
}

void SpecCache::prune(const std::set<std::string>& keep) const {
  if (dir_.empty() || !is_private_directory(dir_)) return;
  std::error_code ec;
  fs::directory_iterator it(dir_, ec);
  std::vector<fs::path> stale;
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() != 64 + kEntrySuffix.size() || !name.ends_with(kEntrySuffix)) continue;
    if (!keep.count(name.substr(0, 64))) stale.push_back(it->path());
  }
  for (const fs::path& path : stale) fs::remove(path, ec);
}

}  // namespace tokend::spec
