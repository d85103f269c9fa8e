#include "spec/sink_rules.h"

#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <filesystem>
#include <system_error>

#include "spec/text.h"
#include "spec/toml_document.h"

namespace tokend::spec {

namespace {

namespace fs = std::filesystem;

// The deepest ancestor of `path` (itself included) that exists.
fs::path existing_ancestor(fs::path path) {
  std::error_code ec;
  while (!path.empty() && path != path.root_path() && !fs::exists(fs::symlink_status(path, ec)))
    path = path.parent_path();
  return path.empty() ? fs::path("/") : path;
}

long name_limit(const fs::path& existing) {
  errno = 0;
  long limit = ::pathconf(existing.c_str(), _PC_NAME_MAX);
  return limit > 0 ? limit : NAME_MAX;
}

std::string quoted(const std::string& path) { return in_quotes(path, 400); }

}  // namespace

std::string SinkRules::resolve(const std::string& sink) {
  std::error_code ec;
  fs::path resolved = fs::weakly_canonical(fs::path(sink), ec);
  if (ec) return fs::path(sink).lexically_normal().string();
  return resolved.string();
}

std::optional<std::pair<dev_t, ino_t>> SinkRules::identity(const std::string& resolved) {
  struct stat info {};
  if (::stat(resolved.c_str(), &info) != 0) return std::nullopt;
  return std::make_pair(info.st_dev, info.st_ino);
}

SinkRules::SinkRules(const Config& config, const std::vector<std::string>& spec_files) {
  const auto own = [this](const std::string& path, std::string what) {
    if (path.empty()) return;
    const std::string resolved = resolve(path);
    own_files_.push_back(OwnFile{resolved, identity(resolved), std::move(what)});
  };
  if (config.state_backend == StateBackend::Sqlite && config.state_path != ":memory:") {
    own(config.state_path, "the state file");
    for (const char* suffix : {"-wal", "-shm", "-journal"})
      own(config.state_path + suffix, std::string("the state file's ") + suffix + " file");
    own(config.state_path + ".lock", "the state file's lock file");
  }
  own(config.path, "the config file");
  own(config.token_file, "the API token file");
  for (const std::string& file : spec_files)
    own(file, "the spec file " + quoted(display_path(file)));
  for (const std::string& path : config.spec_paths) {
    std::error_code ec;
    if (!fs::is_directory(path, ec)) continue;
    own(path, "the spec directory " + quoted(display_path(path)));
    spec_dirs_.push_back(resolve(path));
  }
}

std::optional<std::string> SinkRules::problem(const std::string& sink) const {
  const std::string name = "sink " + quoted(sink);
  if (sink.size() >= PATH_MAX)
    return "sink path " + in_quotes(sink, 40) + " is " + std::to_string(sink.size()) +
           " bytes long; the system allows at most " + std::to_string(PATH_MAX - 1);
  const long max_name = name_limit(existing_ancestor(fs::path(sink)));
  for (const fs::path& part : fs::path(sink)) {
    const std::string component = part.string();
    if (static_cast<long>(component.size()) > max_name)
      return "sink file name " + in_quotes(component, 40) + " is " +
             std::to_string(component.size()) + " bytes long; the file system allows at most " +
             std::to_string(max_name);
  }

  const std::string resolved = resolve(sink);
  const std::string via = resolved == sink ? "" : " (it resolves to " + quoted(resolved) + ")";
  const auto id = identity(resolved);
  for (const OwnFile& own : own_files_) {
    if (own.resolved == resolved || (id && own.identity && *id == *own.identity))
      return name + " is " + own.what + via + "; it would be overwritten with the token's value";
  }
  const fs::path resolved_path(resolved);
  const std::string file_name = resolved_path.filename().string();
  for (const std::string& dir : spec_dirs_) {
    if (resolved_path.parent_path() == fs::path(dir) && file_name.size() > 5 &&
        file_name.front() != '.' && file_name.ends_with(".toml"))
      return name + " is a .toml file in the spec directory " + quoted(display_path(dir)) + via +
             "; it would be read as a token spec";
  }

  std::error_code ec;
  const fs::file_status status = fs::status(resolved_path, ec);
  if (fs::is_directory(status)) return name + " is a directory" + via;
  const fs::path ancestor = existing_ancestor(resolved_path.parent_path());
  if (!fs::is_directory(fs::status(ancestor, ec)))
    return name + " lies under " + quoted(ancestor.string()) + ", which is not a directory" + via;
  return std::nullopt;
}

}  // namespace tokend::spec
