// Loading of the token specs (product.md §1) and of the whole desired state.
#include <malloc.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <set>
#include <system_error>
#include <thread>

#include "spec/delivery.h"
#include "spec/keys.h"
#include "spec/loader.h"
#include "spec/loading.h"
#include "spec/roles.h"
#include "spec/sink_rules.h"
#include "spec/spec_cache.h"
#include "spec/text.h"
#include "spec/toml_document.h"
#include "util/hash.h"
#include "util/suggest.h"

namespace tokend::spec {

namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxNameChars = 256;
constexpr std::size_t kMaxDescriptionChars = 500;
constexpr std::int64_t kMaxDays = 3650;

const std::vector<std::string_view>& kTokenAttributes = spec_keys("api_token.<key>");
const std::vector<std::string_view>& kRoleAttributes = spec_keys("api_token.<key>.roles");
const std::vector<std::string_view>& kLifecycleAttributes = spec_keys("api_token.<key>.lifecycle");
const std::vector<std::string_view> kIgnorableAttributes = {
    "name", "description", "role", "roles", "type", "expiry_period_in_days", "kind", "all"};
const std::vector<std::string_view> kTokenTypes = {"ORGANIZATION", "WORKSPACE", "DEPLOYMENT"};
const std::vector<std::string_view> kEntityTypes = {"ORGANIZATION", "WORKSPACE", "DEPLOYMENT",
                                                    "DAG", "DAG_TAG"};
const std::vector<std::string_view> kRequiredRoleAttributes = {"role", "entity_id", "entity_type"};
const std::vector<std::string_view> kTokenKinds = {"STANDARD", "DIRECT_ACCESS"};

// " (did you mean …?)" for a misspelt entity_type; "TAG" (the spelling of
// Astronomer's documentation) is DAG_TAG in the API.
std::string entity_type_suggestion(std::string_view text) {
  if (text == "TAG" || text == "tag" || text == "Tag")
    return " (did you mean \"DAG_TAG\"? a tag role is DAG_TAG, with the tag value as entity_id)";
  return did_you_mean(text, kEntityTypes);
}

bool is_valid_key(std::string_view key) {
  const auto letter = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
  };
  if (key.empty() || !letter(key.front())) return false;
  return std::all_of(key.begin(), key.end(),
                     [&](char c) { return letter(c) || (c >= '0' && c <= '9') || c == '-'; });
}

std::string absolute_path(const std::string& path) {
  std::error_code error;
  fs::path absolute = fs::absolute(fs::path(path), error);
  return (error ? fs::path(path) : absolute).lexically_normal().string();
}

// Whether lexically normal `path` lies below lexically normal `dir`.
bool lies_under(const fs::path& path, const fs::path& dir) {
  auto [dir_end, path_at] = std::mismatch(dir.begin(), dir.end(), path.begin(), path.end());
  if (path_at == path.end()) return false;  // `path` is `dir` itself, or above it
  // A trailing separator of `dir` reads as an empty last element.
  return dir_end == dir.end() || (std::next(dir_end) == dir.end() && dir_end->empty());
}

std::string location_text(const SourcePos& pos) {
  return pos.file + ":" + std::to_string(pos.line);
}

class SpecParser {
 public:
  // `spec_files`: every file being loaded (a sink must not overwrite one).
  SpecParser(const Config& config, const std::vector<std::string>& spec_files,
             std::vector<Diagnostic>& out)
      : config_(config), out_(out), sink_rules_(config, spec_files) {
    secrets_dir_ = absolute_path(config.secrets_dir);
  }

  // Validates every token of `document`, in the order they are written.
  void parse_document(const TomlDocument& document) {
    TableReader top(document, document.root(), "", out_);
    top.report_unknown_keys(spec_keys(""));
    const toml::value* tokens = top.table("api_token");
    if (!tokens) return;
    std::vector<std::pair<std::string, const toml::value*>> ordered;
    for (const auto& [key, value] : tokens->as_table()) ordered.emplace_back(key, &value);
    std::sort(ordered.begin(), ordered.end(), [&](const auto& a, const auto& b) {
      SourcePos pa = document.position_of(*a.second);
      SourcePos pb = document.position_of(*b.second);
      return std::tie(pa.line, pa.column, a.first) < std::tie(pb.line, pb.column, b.first);
    });
    for (const auto& [key, value] : ordered) parse_token(document, key, *value);
  }

  // While set, every token accepted from then on is also appended to
  // `recording`, with the positions a cache entry keeps; nullptr stops.
  void record_into(std::vector<CachedToken>* recording) { recording_ = recording; }

  // Takes the tokens of a cached file shown as `name` as if its document had
  // been parsed: the checks that read beyond the file (keys, import ids and
  // sinks of the other files, the sink rules, sink groups) run again. False
  // when one of them finds a problem: the parser is then left in no useful
  // state, and the files are to be loaded again without the cache, so that
  // the problem is reported exactly as without one.
  bool adopt(const std::string& name, CachedSpecFile&& file) {
    const auto in_file = [&](SourcePos pos) {
      pos.file = name;
      return pos;
    };
    for (CachedToken& cached : file.tokens) {
      TokenSpec& spec = cached.spec;
      if (!definitions_.try_emplace(spec.key, in_file(cached.key_pos)).second) return false;
      if (spec.import_id &&
          !imports_
               .try_emplace(*spec.import_id, address_for_key(spec.key), in_file(cached.import_pos))
               .second)
        return false;
      if (!spec.sink_group.empty()) {
        auto known = group_usable_.find(spec.sink_group);
        if (known == group_usable_.end())
          known =
              group_usable_.emplace(spec.sink_group, !sink_group_problem(spec.sink_group)).first;
        if (!known->second) return false;
      }
      SinkRules::Inspection sink = sink_rules_.inspect(spec.sink);
      if (sink.problem) return false;
      const std::string& resolved = sink.resolved;
      if (sinks_.count(resolved)) return false;
      const auto& id = sink.identity;
      if (id && sink_inodes_.count(*id)) return false;
      sinks_.emplace(resolved,
                     SinkOwner{address_for_key(spec.key), in_file(cached.sink_where), spec.sink});
      if (id) sink_inodes_.emplace(*id, resolved);
      spec.pos.file = name;
      tokens_.push_back(std::move(spec));
    }
    return true;
  }

  std::vector<TokenSpec> take_tokens() {
    std::vector<TokenSpec> specs = std::move(tokens_);
    std::sort(specs.begin(), specs.end(),
              [](const TokenSpec& a, const TokenSpec& b) { return a.key < b.key; });
    specs.shrink_to_fit();  // the specs live through the plan: no room to spare
    return specs;
  }

 private:
  void parse_token(const TomlDocument& document, const std::string& key, const toml::value& table) {
    const SourcePos key_pos = document.position_of_key(table, key);
    if (!is_valid_key(key)) {
      out_.push_back(
          document.error_at(key_pos, "invalid token key " + in_quotes(key) +
                                         ": a key starts with a letter or \"_\" and contains only "
                                         "letters, digits, \"_\" and \"-\""));
      return;
    }
    const std::string address = address_for_key(key);
    if (auto [first, inserted] = definitions_.try_emplace(key, key_pos); !inserted) {
      out_.push_back(document.error_at(key_pos, "duplicate token key " + in_quotes(key) + ": " +
                                                    address + " is already defined at " +
                                                    location_text(first->second)));
      return;
    }
    if (!table.is_table()) {
      out_.push_back(
          document.error_at(document.position_of(table),
                            "api_token." + key + " must be a table, got " + describe(table)));
      return;
    }

    const std::size_t errors_before = out_.size();
    TableReader t(document, table, address, out_);
    t.report_unknown_keys(kTokenAttributes);
    TokenSpec spec;
    spec.key = key;
    spec.pos = document.position_of(table);
    const auto missing = [&](std::string_view attribute) {
      t.error_at_table("missing required attribute " + in_quotes(attribute) + " in " + address);
    };

    if (std::optional<std::string> name = t.string("name")) {
      const std::size_t chars = code_point_count(*name);
      if (chars == 0)
        t.error_at_value("name", "name must not be empty");
      else if (chars > kMaxNameChars)
        t.error_at_value("name",
                         "name must be at most 256 characters, got " + std::to_string(chars));
      spec.attrs.name = *name;
    } else if (!t.has("name")) {
      missing("name");
    }

    if (std::optional<std::string> description = t.string("description")) {
      const std::size_t chars = code_point_count(*description);
      if (chars > kMaxDescriptionChars)
        t.error_at_value("description", "description must be at most 500 characters, got " +
                                            std::to_string(chars));
      spec.attrs.description = *description;
    }

    std::optional<EntityType> type;
    if (std::optional<std::string> text = t.string("type")) {
      type = parse_token_type(*text);
      if (!type)
        t.error_at_value("type", "type must be one of ORGANIZATION, WORKSPACE, DEPLOYMENT, got " +
                                     in_quotes(*text) + did_you_mean(*text, kTokenTypes));
      else
        spec.attrs.type = *type;
    } else if (!t.has("type")) {
      missing("type");
    }

    std::optional<std::string> role = t.string("role");
    if (role) {
      if (role->empty()) {
        t.error_at_value("role", "role must not be empty");
        role.reset();
      } else {
        spec.attrs.role = *role;
      }
    } else if (!t.has("role")) {
      missing("role");
    }

    parse_roles(document, t, address, type, role, spec);
    if (std::optional<std::string> kind = t.string("kind")) {
      if (std::optional<TokenKind> parsed = parse_token_kind(*kind))
        spec.attrs.kind = *parsed;
      else
        t.error_at_value("kind", "kind must be one of STANDARD, DIRECT_ACCESS, got " +
                                     in_quotes(*kind) + did_you_mean(*kind, kTokenKinds));
    }
    parse_days(t, spec);
    parse_sink(t, key, spec);
    spec.sink_mode = read_sink_mode(t).value_or(config_.sink_mode);
    spec.sink_group = read_sink_group(t).value_or(config_.sink_group);
    spec.on_delivery = read_on_delivery(t).value_or(config_.on_delivery);

    if (std::optional<std::string> import_id = t.string("import_id")) {
      if (import_id->empty()) {
        t.error_at_value("import_id", "import_id must not be empty");
      } else if (auto [first, inserted] =
                     imports_.try_emplace(*import_id, address, t.position_of_value("import_id"));
                 !inserted) {
        t.error_at_value("import_id", "import_id " + in_quotes(*import_id) +
                                          " is also imported by " + first->second.first + " (" +
                                          location_text(first->second.second) +
                                          "); a token can be adopted only once");
      } else {
        spec.import_id = *import_id;
      }
    }

    if (const toml::value* lifecycle = t.table("lifecycle"))
      parse_lifecycle(document, *lifecycle, address, spec);

    if (out_.size() != errors_before) return;
    if (recording_) {
      CachedToken cached{spec, key_pos, sink_where_, {}};
      cached.spec.pos.file.clear();
      cached.key_pos.file.clear();
      cached.sink_where.file.clear();
      if (spec.import_id) {
        cached.import_pos = t.position_of_value("import_id");
        cached.import_pos.file.clear();
      }
      recording_->push_back(std::move(cached));
    }
    tokens_.push_back(std::move(spec));
  }

  void parse_roles(const TomlDocument& document, TableReader& t, const std::string& address,
                   std::optional<EntityType> type, const std::optional<std::string>& role,
                   TokenSpec& spec) {
    const toml::value* roles = t.array("roles");
    if (!roles) {
      if (!t.has("roles")) t.error_at_table("missing required attribute \"roles\" in " + address);
      return;
    }
    if (roles->as_array().empty()) {
      t.error_at_value("roles", "roles must not be empty: list at least the token's own role");
      return;
    }
    std::vector<Role> entries;
    std::vector<const toml::value*> entry_values;
    bool entries_complete = true;
    std::size_t index = 0;
    for (const toml::value& entry : roles->as_array()) {
      const std::string context = address + ".roles[" + std::to_string(index++) + "]";
      if (!entry.is_table()) {
        out_.push_back(document.error_at(document.position_of(entry),
                                         "roles entries must be tables, got " + describe(entry)));
        entries_complete = false;
        continue;
      }
      TableReader r(document, entry, context, out_);
      r.report_unknown_keys(kRoleAttributes);
      Role parsed;
      bool complete = true;
      for (std::string_view attribute : kRequiredRoleAttributes) {
        std::optional<std::string> value = r.string(attribute);
        if (!value) {
          if (!r.has(attribute))
            r.error_at_table("missing required attribute " + in_quotes(attribute) + " in " +
                             context);
          complete = false;
          continue;
        }
        if (value->empty()) {
          r.error_at_value(attribute, std::string(attribute) + " must not be empty");
          complete = false;
        } else if (attribute == "role") {
          parsed.role = *value;
        } else if (attribute == "entity_id") {
          parsed.entity_id = *value;
        } else if (std::optional<EntityType> entity_type = parse_entity_type(*value)) {
          parsed.entity_type = *entity_type;
        } else {
          r.error_at_value(attribute,
                           "entity_type must be one of ORGANIZATION, WORKSPACE, DEPLOYMENT, DAG, "
                           "DAG_TAG, got " +
                               in_quotes(*value) + entity_type_suggestion(*value));
          complete = false;
        }
      }
      if (std::optional<std::string> deployment = r.string("deployment_id")) {
        if (deployment->empty()) {
          r.error_at_value("deployment_id", "deployment_id must not be empty");
          complete = false;
        } else {
          parsed.deployment_id = *deployment;
        }
      } else if (r.has("deployment_id")) {
        complete = false;
      }
      if (!complete) {
        entries_complete = false;
        continue;
      }
      entries.push_back(parsed);
      entry_values.push_back(&entry);
    }

    std::optional<std::string_view> primary;
    if (role) primary = *role;
    for (const RoleProblem& problem :
         check_roles(type, primary, entries, config_.organization_id, entries_complete)) {
      SourcePos pos;
      switch (problem.where) {
        case RoleProblem::Where::PrimaryRole:
          pos = t.position_of_value("role");
          break;
        case RoleProblem::Where::Entry:
          pos = document.position_of(*entry_values[problem.entry]);
          break;
        case RoleProblem::Where::EntryRole:
        case RoleProblem::Where::EntryEntityId:
        case RoleProblem::Where::EntryDeploymentId: {
          TableReader r(document, *entry_values[problem.entry], "", out_);
          pos = r.position_of_value(problem.where == RoleProblem::Where::EntryRole ? "role"
                                    : problem.where == RoleProblem::Where::EntryEntityId
                                        ? "entity_id"
                                        : "deployment_id");
          break;
        }
      }
      out_.push_back(document.error_at(pos, problem.message));
    }
    spec.attrs.roles = normalize_roles(std::move(entries));
  }

  void parse_days(TableReader& t, TokenSpec& spec) {
    if (std::optional<std::int64_t> expiry = t.integer("expiry_period_in_days")) {
      if (*expiry < 1 || *expiry > kMaxDays)
        t.error_at_value(
            "expiry_period_in_days",
            "expiry_period_in_days must be between 1 and 3650, got " + std::to_string(*expiry));
      else
        spec.attrs.expiry_period_in_days = static_cast<int>(*expiry);
    }
    const bool expiry_invalid = t.has("expiry_period_in_days") && !spec.attrs.expiry_period_in_days;
    if (std::optional<std::int64_t> before = t.integer("rotate_before_expiry_days")) {
      const std::string key = "rotate_before_expiry_days";
      if (*before < 0) {
        t.error_at_value(key, key + " must be 0 or more, got " + std::to_string(*before));
      } else if (*before > 0 && !expiry_invalid) {
        if (!spec.attrs.expiry_period_in_days)
          t.error_at_value(key, key +
                                    " requires expiry_period_in_days: a token that never expires "
                                    "has nothing to rotate before");
        else if (*before >= *spec.attrs.expiry_period_in_days)
          t.error_at_value(key, key + " must be less than expiry_period_in_days (" +
                                    std::to_string(*spec.attrs.expiry_period_in_days) + "), got " +
                                    std::to_string(*before));
        else
          spec.rotate_before_expiry_days = static_cast<int>(*before);
      }
    }
    if (std::optional<std::int64_t> every = t.integer("rotate_every_days")) {
      if (*every < 0 || *every > kMaxDays)
        t.error_at_value("rotate_every_days", "rotate_every_days must be between 0 and 3650, got " +
                                                  std::to_string(*every));
      else
        spec.rotate_every_days = static_cast<int>(*every);
    }
  }

  void parse_sink(TableReader& t, const std::string& key, TokenSpec& spec) {
    std::string sink;
    SourcePos where;
    if (std::optional<std::string> written = t.string("sink")) {
      fs::path path(*written);
      if (written->empty()) {
        t.error_at_value("sink", "sink must not be empty");
        return;
      }
      const bool relative = !path.is_absolute();
      path =
          relative ? (fs::path(secrets_dir_) / path).lexically_normal() : path.lexically_normal();
      if (relative && !lies_under(path, fs::path(secrets_dir_))) {
        t.error_at_value("sink", "sink " + in_quotes(*written) + " climbs out of [secrets] dir " +
                                     in_quotes(secrets_dir_, 400) +
                                     " with \"..\"; write an absolute path for a sink elsewhere");
        return;
      }
      if (!path.has_filename()) {
        t.error_at_value("sink", "sink must name a file, got " + in_quotes(*written));
        return;
      }
      sink = path.string();
      where = t.position_of_value("sink");
    } else if (t.has("sink")) {
      return;
    } else {
      sink = (fs::path(secrets_dir_) / (key + ".token")).lexically_normal().string();
      where = t.position();
    }
    const bool written = t.has("sink");
    const auto report = [&](std::string message) {
      if (written)
        t.error_at_value("sink", std::move(message));
      else
        t.error_at_table(std::move(message) + " (the default sink of " + address_for_key(key) +
                         ")");
    };
    SinkRules::Inspection inspected = sink_rules_.inspect(sink);
    if (inspected.problem) {
      report(std::move(*inspected.problem));
      return;
    }
    // One file may hide behind several paths (symlinks, hard links).
    const std::string& resolved = inspected.resolved;
    const auto& id = inspected.identity;
    auto first = sinks_.find(resolved);
    if (first == sinks_.end()) {
      if (id) {
        auto same = sink_inodes_.find(*id);
        if (same != sink_inodes_.end()) first = sinks_.find(same->second);
      }
    }
    if (first != sinks_.end()) {
      const SinkOwner& owner = first->second;
      report("sink " + in_quotes(sink, 400) + " is also the sink of " + owner.address + " (" +
             location_text(owner.where) + ")" +
             (owner.sink == sink         ? ""
              : first->first == resolved ? ": both are the file " + in_quotes(resolved, 400)
                                         : std::string(": both name one file (hard links)")) +
             "; each token needs its own file");
      return;
    }
    sinks_.emplace(resolved, SinkOwner{address_for_key(key), where, sink});
    sink_where_ = where;
    if (id) sink_inodes_.emplace(*id, resolved);
    spec.sink = sink;
  }

  void parse_lifecycle(const TomlDocument& document, const toml::value& table,
                       const std::string& address, TokenSpec& spec) {
    TableReader l(document, table, address + ".lifecycle", out_);
    l.report_unknown_keys(kLifecycleAttributes);
    if (auto prevent = l.boolean("prevent_destroy")) spec.lifecycle.prevent_destroy = *prevent;
    if (auto create_first = l.boolean("create_before_destroy"))
      spec.lifecycle.create_before_destroy = *create_first;
    const toml::value* ignore = l.array("ignore_changes");
    if (!ignore) return;
    for (const toml::value& entry : ignore->as_array()) {
      if (!entry.is_string()) {
        out_.push_back(
            document.error_at(document.position_of(entry),
                              "ignore_changes entries must be strings, got " + describe(entry)));
        continue;
      }
      const std::string& name = entry.as_string().str;
      if (std::find(kIgnorableAttributes.begin(), kIgnorableAttributes.end(), name) ==
          kIgnorableAttributes.end()) {
        out_.push_back(document.error_at(
            document.position_of(entry),
            "ignore_changes entry " + in_quotes(name) +
                " is not one of name, description, role, roles, type, expiry_period_in_days, "
                "kind, all" +
                did_you_mean(name, kIgnorableAttributes)));
        continue;
      }
      spec.lifecycle.ignore_changes.push_back(name);
    }
  }

  const Config& config_;
  std::vector<Diagnostic>& out_;
  std::string secrets_dir_;
  std::vector<TokenSpec> tokens_;
  std::map<std::string, SourcePos> definitions_;  // key -> first definition
  SinkRules sink_rules_;
  struct SinkOwner {
    std::string address;
    SourcePos where;
    std::string sink;  // as the owner's spec gives it (absolute)
  };
  std::map<std::string, SinkOwner> sinks_;                      // resolved sink -> owner
  std::map<std::pair<dev_t, ino_t>, std::string> sink_inodes_;  // existing file -> resolved
  std::map<std::string, std::pair<std::string, SourcePos>>
      imports_;           // import_id -> (address, where)
  SourcePos sink_where_;  // of the last sink parse_sink accepted
  std::vector<CachedToken>* recording_ = nullptr;
  std::map<std::string, bool> group_usable_;  // sink_group -> usable, as adopt() found
};

// The files named by config.spec_paths: each directory's `*.toml` entries
// (sorted by name, not recursive, hidden names skipped) or the file itself.
std::vector<std::string> spec_files(const Config& config, bool report_missing_paths,
                                    std::vector<Diagnostic>& diagnostics) {
  std::vector<std::string> files;
  std::set<std::string> seen;
  const auto add = [&](const std::string& file) {
    if (seen.insert(file).second) files.push_back(file);
  };
  for (const std::string& written : config.spec_paths) {
    const std::string path = absolute_path(written);
    std::error_code error;
    fs::file_status status = fs::status(path, error);
    if (!fs::exists(status)) {
      if (report_missing_paths)
        diagnostics.push_back(
            Diagnostic{SourcePos{display_path(path), 0, 0}, "spec path does not exist", {}});
      continue;
    }
    if (!fs::is_directory(status)) {
      add(path);
      continue;
    }
    std::vector<std::string> names;
    fs::directory_iterator it(path, error);
    for (; !error && it != fs::directory_iterator(); it.increment(error)) {
      const std::string name = it->path().filename().string();
      if (name.size() > 5 && name.front() != '.' && name.ends_with(".toml")) names.push_back(name);
    }
    if (error) {
      diagnostics.push_back(Diagnostic{SourcePos{display_path(path), 0, 0},
                                       "cannot list spec directory: " + error.message(),
                                       {}});
      continue;
    }
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) add((fs::path(path) / name).string());
  }
  return files;
}

}  // namespace

namespace {

// What the validation of one spec file takes from the config (besides the
// checks adopt() runs again): a cache entry is valid only for the same.
std::string config_fingerprint(const Config& config) {
  std::string text = "organization_id " + config.organization_id + "\nsecrets_dir " +
                     absolute_path(config.secrets_dir) + "\nsink_mode " +
                     std::to_string(config.sink_mode) + "\nsink_group " + config.sink_group +
                     "\non_delivery";
  for (const std::string& part : config.on_delivery)
    text += " " + std::to_string(part.size()) + ":" + part;
  return text + "\n";
}

// One spec file read and, unless the cache had it, parsed; not yet validated.
struct ParsedFile {
  std::string bytes;
  std::optional<TomlDocument> document;
  std::vector<Diagnostic> diagnostics;
  std::string cache_key;                 // "" without a cache
  std::optional<CachedSpecFile> cached;  // the cache's entry for these bytes
};

ParsedFile parse_file(const std::string& file, const SpecCache* cache,
                      const std::string& fingerprint) {
  ParsedFile parsed;
  const std::string name = display_path(file);
  if (cache && !TomlDocument::read(file, parsed.bytes)) {
    parsed.cache_key = cache->key_for(fingerprint, parsed.bytes);
    parsed.cached = cache->find(parsed.cache_key);
    if (!parsed.cached)
      parsed.document = TomlDocument::parse(parsed.bytes, name, parsed.diagnostics);
    return parsed;
  }
  parsed.bytes.clear();
  parsed.document = TomlDocument::load(file, name, parsed.diagnostics, &parsed.bytes);
  return parsed;
}

// read_specs with `cache` (may be null). False in `adopted` when a cached
// file failed a check adopt() runs again: the result is then to be thrown
// away (and the diagnostics added since the call with it).
std::vector<TokenSpec> load_spec_files(const Config& config, bool report_missing_paths,
                                       std::vector<Diagnostic>& diagnostics, std::string* spec_hash,
                                       const SpecCache* cache, bool& adopted) {
  adopted = true;
  const std::size_t diagnostics_before = diagnostics.size();
  Sha256 hashed;
  const std::vector<std::string> files = spec_files(config, report_missing_paths, diagnostics);
  SpecParser parser(config, files, diagnostics);
  const std::string fingerprint = cache ? config_fingerprint(config) : std::string();
  // Parsing (toml11) is nearly all the cost of loading a large spec set, and
  // files parse independently: up to one file per CPU (at most 4) is parsed on
  // worker threads while this thread validates the files in load order, so
  // diagnostics and "first definition wins" stay exactly as sequential.
  // At most `ahead` files are parsed or wait in memory at a time; each parse
  // tree is freed as soon as its file is validated.
  const std::size_t ahead = std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
  std::deque<std::future<ParsedFile>> pending;
  std::size_t next = 0;
  const auto launch_more = [&] {
    while (next < files.size() && pending.size() < ahead)
      pending.push_back(std::async(std::launch::async | std::launch::deferred, parse_file,
                                   std::cref(files[next++]), cache, std::cref(fingerprint)));
  };
  // Files parsed (not taken from the cache) that had no problem of their
  // own, to be stored once the whole set turns out valid; every entry in use.
  std::vector<std::pair<std::string, CachedSpecFile>> to_store;
  std::set<std::string> in_use;
  for (const std::string& file : files) {
    launch_more();
    ParsedFile parsed = pending.front().get();
    pending.pop_front();
    hashed.update(file + '\n' + std::to_string(parsed.bytes.size()) + '\n');
    hashed.update(parsed.bytes);
    if (parsed.cached) {
      in_use.insert(parsed.cache_key);
      if (!parser.adopt(display_path(file), std::move(*parsed.cached))) {
        adopted = false;
        return {};
      }
      continue;
    }
    const std::size_t first_diagnostic = diagnostics.size();
    diagnostics.insert(diagnostics.end(), std::make_move_iterator(parsed.diagnostics.begin()),
                       std::make_move_iterator(parsed.diagnostics.end()));
    CachedSpecFile recorded;
    if (parsed.document) {
      if (cache) parser.record_into(&recorded.tokens);
      parser.parse_document(*parsed.document);
      parser.record_into(nullptr);
      parsed.document.reset();
    }
    sort_by_position(diagnostics.begin() + static_cast<std::ptrdiff_t>(first_diagnostic),
                     diagnostics.end());
    if (cache && !parsed.cache_key.empty() && diagnostics.size() == first_diagnostic) {
      in_use.insert(parsed.cache_key);
      to_store.emplace_back(parsed.cache_key, std::move(recorded));
    }
  }
  if (spec_hash) *spec_hash = hashed.hex_digest();
  if (cache && diagnostics.size() == diagnostics_before && !to_store.empty()) {
    for (const auto& [key, recorded] : to_store) cache->store(key, recorded);
    cache->prune(in_use);
  }
  // The parsed documents are gone; hand the memory the workers' allocator
  // arenas keep for them back to the system (glibc keeps it otherwise, and
  // this thread could not reuse it).
  malloc_trim(0);
  return parser.take_tokens();
}

}  // namespace

std::vector<TokenSpec> read_specs(const Config& config, bool report_missing_paths,
                                  std::vector<Diagnostic>& diagnostics, std::string* spec_hash) {
  // The cache serves only a load that has nothing to report so far: a config
  // with problems fails the load anyway.
  const std::string cache_dir = diagnostics.empty() ? spec_cache_dir(config) : std::string();
  if (!cache_dir.empty()) {
    const SpecCache cache(cache_dir);
    const std::size_t before = diagnostics.size();
    bool adopted = true;
    std::vector<TokenSpec> tokens =
        load_spec_files(config, report_missing_paths, diagnostics, spec_hash, &cache, adopted);
    if (adopted) return tokens;
    diagnostics.erase(diagnostics.begin() + static_cast<std::ptrdiff_t>(before), diagnostics.end());
  }
  bool adopted = true;
  return load_spec_files(config, report_missing_paths, diagnostics, spec_hash, nullptr, adopted);
}

Loaded<std::vector<TokenSpec>> load_specs(const Config& config, std::string* spec_hash) {
  Loaded<std::vector<TokenSpec>> loaded;
  try {
    std::vector<TokenSpec> tokens = read_specs(config, true, loaded.diagnostics, spec_hash);
    if (loaded.diagnostics.empty()) loaded.value = std::move(tokens);
  } catch (const std::exception& error) {
    loaded.value.reset();
    loaded.diagnostics.push_back(internal_error(config.path, error));
  }
  return loaded;
}

Loaded<DesiredState> load_desired_state(const std::string& config_path) {
  Loaded<DesiredState> loaded;
  try {
    ConfigReading reading = read_config(config_path);
    loaded.diagnostics = std::move(reading.diagnostics);
    if (!reading.parsed) return loaded;
    DesiredState state;
    state.tokens = read_specs(reading.config, false, loaded.diagnostics, &state.spec_hash);
    if (!loaded.diagnostics.empty()) return loaded;
    state.config = std::move(reading.config);
    loaded.value = std::move(state);
  } catch (const std::exception& error) {
    loaded.value.reset();
    loaded.diagnostics.push_back(internal_error(config_path, error));
  }
  return loaded;
}

}  // namespace tokend::spec
