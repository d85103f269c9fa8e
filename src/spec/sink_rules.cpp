#include "spec/sink_rules.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
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

SinkRules::Facts SinkRules::facts_of(const std::string& sink) {
  Facts facts;
  facts.max_name = name_limit(existing_ancestor(fs::path(sink)));
  facts.resolved = resolve(sink);
  facts.identity = identity(facts.resolved);
  std::error_code ec;
  const fs::path resolved_path(facts.resolved);
  facts.is_directory = fs::is_directory(fs::status(resolved_path, ec));
  const fs::path ancestor = existing_ancestor(resolved_path.parent_path());
  facts.ancestor = ancestor.string();
  facts.ancestor_is_directory = fs::is_directory(fs::status(ancestor, ec));
  return facts;
}

const SinkRules::DirFacts& SinkRules::dir_facts(const std::string& dir) {
  auto known = dirs_.find(dir);
  if (known != dirs_.end()) return known->second;
  DirFacts facts;
  struct stat info {};
  if (::stat(dir.c_str(), &info) == 0) facts.device = info.st_dev;
  facts.max_name = name_limit(existing_ancestor(fs::path(dir)));
  std::error_code ec;
  fs::path resolved = fs::weakly_canonical(fs::path(dir), ec);
  if (!ec) {
    facts.resolved = resolved.string();
    const fs::path ancestor = existing_ancestor(resolved);
    facts.ancestor = ancestor.string();
    facts.ancestor_is_directory = fs::is_directory(fs::status(ancestor, ec));
  }
  return dirs_.emplace(dir, std::move(facts)).first->second;
}

std::optional<std::string> SinkRules::problem(const std::string& sink) const {
  if (sink.size() >= PATH_MAX) return judge(sink, Facts{});
  return judge(sink, facts_of(sink));
}

SinkRules::Inspection SinkRules::inspect(const std::string& sink) {
  Inspection inspection;
  if (sink.size() >= PATH_MAX) {
    inspection.problem = judge(sink, Facts{});
    return inspection;
  }
  // The facts as facts_of() finds them, from one lstat of the sink and what
  // is known about its directory: a sink that is no symlink resolves to its
  // directory's resolution and its own name, and is the file lstat saw; one
  // that does not exist resolves likewise and is no file. A sink on another
  // file system than its directory (a mount point) asks for its own limit.
  std::optional<Facts> facts;
  const fs::path path(sink);
  const std::string name = path.filename().string();
  struct stat info {};
  const bool found = ::lstat(sink.c_str(), &info) == 0;
  const int error = found ? 0 : errno;
  if (!name.empty() && name != "." && name != ".." &&
      ((found && !S_ISLNK(info.st_mode)) || (!found && error == ENOENT))) {
    const DirFacts& dir = dir_facts(path.parent_path().string());
    if (dir.resolved) {
      Facts fast;
      fast.resolved = (fs::path(*dir.resolved) / name).lexically_normal().string();
      fast.ancestor = dir.ancestor;
      fast.ancestor_is_directory = dir.ancestor_is_directory;
      if (found) {
        fast.identity = std::make_pair(info.st_dev, info.st_ino);
        fast.is_directory = S_ISDIR(info.st_mode);
        fast.max_name = dir.device && *dir.device == info.st_dev ? dir.max_name : name_limit(path);
      } else {
        fast.max_name = dir.max_name;
      }
      if (fs::path(fast.resolved).parent_path().string() == *dir.resolved) facts = std::move(fast);
    }
  }
  if (!facts) facts = facts_of(sink);
  inspection.problem = judge(sink, *facts);
  if (!inspection.problem) {
    inspection.resolved = std::move(facts->resolved);
    inspection.identity = facts->identity;
  }
  return inspection;
}

std::optional<std::string> SinkRules::judge(const std::string& sink, const Facts& facts) const {
  const std::string name = "sink " + quoted(sink);
  if (sink.size() >= PATH_MAX)
    return "sink path " + in_quotes(sink, 40) + " is " + std::to_string(sink.size()) +
           " bytes long; the system allows at most " + std::to_string(PATH_MAX - 1);
  const long max_name = facts.max_name;
  for (const fs::path& part : fs::path(sink)) {
    const std::string component = part.string();
    if (static_cast<long>(component.size()) > max_name)
      return "sink file name " + in_quotes(component, 40) + " is " +
             std::to_string(component.size()) + " bytes long; the file system allows at most " +
             std::to_string(max_name);
  }

  const std::string& resolved = facts.resolved;
  const std::string via = resolved == sink ? "" : " (it resolves to " + quoted(resolved) + ")";
  const auto& id = facts.identity;
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

  if (facts.is_directory) return name + " is a directory" + via;
  if (!facts.ancestor_is_directory)
    return name + " lies under " + quoted(facts.ancestor) + ", which is not a directory" + via;
  return std::nullopt;
}

}  // namespace tokend::spec
