#include <CLI/CLI.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>

#include "apply/recovery.h"
#include "cli/command.h"
#include "cli/output.h"
#include "runtime/runtime.h"
#include "spec/loader.h"
#include "spec/terraform_state.h"
#include "spec/writer.h"
#include "util/files.h"
#include "util/hash.h"

namespace tokend::cli {

namespace {

namespace fs = std::filesystem;

struct AdoptFlags {
  std::string out;
  std::string name;
  std::string type;
  std::string terraform_state;
};

// One token to adopt: as the API reports it, and the comment lines above its
// table.
struct Candidate {
  astro::ApiToken token;
  std::string key_source;  // what its key is derived from
  std::vector<std::string> comments;
  std::string key;    // derived
  SecretValue value;  // from a Terraform state; empty when unknown
};

std::string normal_absolute(const std::string& path) {
  std::error_code error;
  fs::path absolute = fs::absolute(fs::path(path), error);
  return (error ? fs::path(path) : absolute).lexically_normal().string();
}

// Why `out` cannot be the generated spec file; "" when it can: it must not
// exist, must be named *.toml (not hidden), and lie directly in a directory
// named by [specs] paths (spec directories are not read recursively).
std::string out_problem(const std::string& out, const spec::Config& config) {
  const fs::path path(normal_absolute(out));
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) return "it already exists; adopt never overwrites a file";
  const std::string name = path.filename().string();
  if (name.size() <= 5 || !name.ends_with(".toml") || name.front() == '.')
    return "its name must end in \".toml\" and not start with \".\", or the spec loader skips it";
  const std::string parent = path.parent_path().string();
  for (const std::string& spec_path : config.spec_paths) {
    const std::string dir = normal_absolute(spec_path);
    std::error_code error;
    if (fs::is_directory(dir, error) &&
        (dir == parent || (dir.ends_with("/") && dir.substr(0, dir.size() - 1) == parent)))
      return "";
  }
  std::string paths;
  for (const std::string& spec_path : config.spec_paths)
    paths += (paths.empty() ? "" : ", ") + normal_absolute(spec_path);
  return "it does not lie directly in a spec directory of [specs] paths (" + paths + ")";
}

int fail(const std::string& message, bool color) {
  print_error(std::cerr, message, color);
  return 1;
}

int run_adopt(const GlobalOptions& global, const AdoptFlags& flags) {
  const bool color = use_color(global, STDERR_FILENO);
  std::optional<spec::DesiredState> desired = load_desired_or_report(global, std::cerr);
  if (!desired) return 1;

  std::optional<std::regex> name_filter;
  if (!flags.name.empty()) {
    try {
      name_filter.emplace(flags.name, std::regex::ECMAScript);
    } catch (const std::regex_error& error) {
      return fail("--name " + flags.name + ": not a valid regular expression: " + error.what(),
                  color);
    }
  }
  std::optional<EntityType> type_filter;
  if (!flags.type.empty()) {
    type_filter = parse_token_type(flags.type);
    if (!type_filter)
      return fail(
          "--type must be ORGANIZATION, WORKSPACE or DEPLOYMENT, got \"" + flags.type + "\"",
          color);
  }
  std::optional<spec::TerraformState> terraform;
  if (!flags.terraform_state.empty()) {
    auto text = read_file(flags.terraform_state);
    if (!text.ok()) return fail(text.error().message, color);
    auto parsed = spec::parse_terraform_state(*text);
    if (!parsed.ok())
      return fail("--from-terraform-state " + flags.terraform_state + ": " + parsed.error().message,
                  color);
    terraform = std::move(*parsed);
  }
  const std::string out = normal_absolute(flags.out);
  if (std::string problem = out_problem(flags.out, desired->config); !problem.empty())
    return fail("--generate-config-out " + out + ": " + problem, color);

  runtime::RuntimeOptions options;
  options.human_log = true;
  options.command = "adopt";
  options.take_lock = true;
  auto runtime = runtime::open_runtime(desired->config, options, std::cerr);
  if (!runtime.ok()) {
    print_error(std::cerr, runtime.error(), color);
    return 1;
  }
  runtime::Runtime& rt = **runtime;
  auto rows = rt.store().resources();
  if (!rows.ok()) {
    print_error(std::cerr, rows.error(), color);
    return 1;
  }
  std::set<std::string> managed_ids, taken_keys;
  for (const auto& row : *rows) {
    managed_ids.insert(row.id);
    taken_keys.insert(row.key.substr(0, row.key.find('~')));
  }
  for (const auto& token : desired->tokens) {
    taken_keys.insert(token.key);
    if (token.import_id) managed_ids.insert(*token.import_id);
  }

  auto listing = rt.client().list_tokens();
  if (!listing.ok()) {
    print_error(std::cerr, listing.error(), color);
    return 1;
  }
  if (!listing->consistent)
    return fail("the token listing changed while it was read (" + listing->problem +
                    "); nothing was adopted, run adopt again",
                color);

  std::vector<Candidate> candidates;
  const auto wanted = [&](const astro::ApiToken& token) {
    if (type_filter && token.type != *type_filter) return false;
    if (name_filter && !std::regex_search(token.name, *name_filter)) return false;
    if (!primary_role(token.roles, token.type)) {
      std::cerr << "Warning: token " << token.id << " has no single " << to_string(token.type)
                << " role, which a spec requires; it is not adopted.\n";
      return false;
    }
    return true;
  };
  if (!terraform) {
    for (const astro::ApiToken& token : listing->tokens)
      if (managed_ids.count(token.id) == 0 && wanted(token))
        candidates.push_back({token, token.name, {"id: " + token.id}, "", {}});
  } else {
    std::map<std::string, const astro::ApiToken*> listed;
    for (const astro::ApiToken& token : listing->tokens) listed.emplace(token.id, &token);
    int gone = 0, skipped = 0;
    std::set<std::string> seen;
    for (spec::TerraformToken& instance : terraform->tokens) {
      if (instance.tainted || instance.deposed) {
        std::cout << instance.address << " (id " << instance.id
                  << "): " << (instance.deposed ? "deposed" : "tainted")
                  << " in the Terraform state; skipped\n";
        ++skipped;
        continue;
      }
      if (managed_ids.count(instance.id) != 0 || !seen.insert(instance.id).second) {
        std::cout << instance.address << " (id " << instance.id
                  << "): already managed by astro-tokend; skipped\n";
        ++skipped;
        continue;
      }
      std::optional<astro::ApiToken> token;
      if (auto at = listed.find(instance.id); at != listed.end()) {
        token = *at->second;
      } else {
        auto got = rt.client().get_token(instance.id);
        if (!got.ok() && got.error().kind != ErrorKind::NotFound) {
          print_error(std::cerr, got.error(), color);
          return 1;
        }
        if (got.ok()) token = std::move(*got);
      }
      if (!token) {
        std::cout << instance.address << " (id " << instance.id
                  << "): the token no longer exists; left out\n";
        ++gone;
        continue;
      }
      std::vector<std::string> differ;
      if (instance.name && *instance.name != token->name) differ.push_back("name");
      if (instance.description && *instance.description != token->description)
        differ.push_back("description");
      if (instance.type && *instance.type != to_string(token->type)) differ.push_back("type");
      if (instance.expiry_period_in_days != token->expiry_period_in_days &&
          (instance.expiry_period_in_days || token->expiry_period_in_days))
        differ.push_back("expiry_period_in_days");
      if (!differ.empty()) {
        std::string list;
        for (const std::string& d : differ) list += (list.empty() ? "" : ", ") + d;
        std::cout << instance.address << " (id " << instance.id << "): " << list
                  << " differ from the Terraform state; the API's values are taken\n";
      }
      if (!wanted(*token)) continue;
      candidates.push_back({*token,
                            instance.key_source,
                            {instance.address, "id: " + token->id},
                            "",
                            std::move(instance.value)});
    }
    std::cout << "Terraform state: "
              << count_of(terraform->tokens.size(), "astro_api_token instance",
                          "astro_api_token instances")
              << ", " << gone << " gone, " << skipped << " skipped; ignored "
              << count_of(static_cast<size_t>(terraform->data_sources), "data source instance",
                          "data source instances")
              << " and "
              << count_of(static_cast<size_t>(terraform->other_resources),
                          "instance of other resource types", "instances of other resource types")
              << ".\n";
  }
  if (candidates.empty()) {
    std::cout << "No unmanaged tokens to adopt; nothing was written.\n";
    return 0;
  }
  if (!terraform)
    std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
      return std::tie(a.key_source, a.token.id) < std::tie(b.key_source, b.token.id);
    });
  std::vector<spec::WrittenSpec> written;
  for (Candidate& candidate : candidates) {
    candidate.key = spec::derive_key(candidate.key_source, taken_keys);
    written.push_back({candidate.key, candidate.token.attrs(), candidate.comments});
  }

  if (Status wrote = write_file_atomically(out, spec::write_specs(written), 0644); !wrote.ok()) {
    print_error(std::cerr, wrote.error(), color);
    return 1;
  }
  const auto undo = [&] {
    std::error_code ignored;
    fs::remove(out, ignored);
  };
  spec::Loaded<spec::DesiredState> reloaded = spec::load_desired_state(global.config_path);
  if (!reloaded.ok()) {
    undo();
    print_diagnostics(std::cerr, reloaded.diagnostics);
    return fail("the generated specs do not load (shown above); " + out +
                    " was removed and nothing was adopted",
                color);
  }
  std::vector<state::Outcome> outcomes;
  std::vector<std::string> sinks_written;
  const auto undo_all = [&] {
    std::error_code ignored;
    for (const std::string& sink : sinks_written) fs::remove(sink, ignored);
    undo();
  };
  int delivered = 0;
  for (const Candidate& candidate : candidates) {
    auto spec = std::find_if(reloaded.value->tokens.begin(), reloaded.value->tokens.end(),
                             [&](const spec::TokenSpec& s) { return s.key == candidate.key; });
    if (spec == reloaded.value->tokens.end()) {
      undo_all();
      return fail("the generated spec of " + address_for_key(candidate.key) +
                      " did not load; nothing was adopted",
                  color);
    }
    std::string fingerprint;
    if (!candidate.value.empty()) {
      std::error_code ignored;
      const bool existed = fs::exists(fs::symlink_status(spec->sink, ignored));
      if (Status wrote =
              rt.sink().write({spec->sink, spec->sink_mode, spec->sink_group}, candidate.value);
          !wrote.ok()) {
        undo_all();
        print_error(std::cerr, wrote.error(), color);
        std::cerr << "Nothing was adopted.\n";
        return 1;
      }
      if (!existed) sinks_written.push_back(spec->sink);
      fingerprint = sha256_hex(candidate.value.reveal());
      ++delivered;
    }
    state::ResourceRecord row =
        apply::record_from_token(candidate.key, candidate.token, spec->sink, fingerprint);
    row.delivery_pending = !fingerprint.empty() && !spec->on_delivery.empty();
    outcomes.push_back({candidate.key, row, std::nullopt});
  }
  if (Status recorded = rt.store().record_outcomes(outcomes); !recorded.ok()) {
    undo_all();
    print_error(std::cerr, recorded.error(), color);
    return 1;
  }
  for (const Candidate& candidate : candidates)
    std::cout << address_for_key(candidate.key) << ": adopted token " << candidate.token.id << "\n";
  std::cout << "\nAdopted " << count_of(candidates.size(), "token", "tokens") << " into " << out
            << ". They are in the state, unchanged.";
  if (terraform)
    std::cout << " " << count_of(static_cast<size_t>(delivered), "value", "values")
              << " from the Terraform state went to the sinks.";
  if (static_cast<size_t>(delivered) < candidates.size())
    std::cout << " A token whose value is not known has none in its sink: \"apply --rotate "
                 "ADDR\" issues a new one.";
  std::cout << "\n";
  return 0;
}

}  // namespace

// `adopt --generate-config-out FILE [--name REGEX] [--type TYPE]`: takes every
// token of the organization that no state row and no import_id names
// (filtered), writes a spec for each into FILE and records them all in the
// state in one transaction. One listing, no API write. Errors go to stderr,
// exit 1, and write nothing.
void add_adopt_command(CLI::App& app, const GlobalOptions& global, int* exit_code) {
  auto flags = std::make_shared<AdoptFlags>();
  auto* cmd =
      app.add_subcommand("adopt", "Write specs for existing unmanaged tokens and manage them");
  cmd->add_option("--generate-config-out", flags->out,
                  "The spec file to write (new, *.toml, in a [specs] paths directory)")
      ->required();
  cmd->add_option("--name", flags->name, "Only tokens whose name matches this regular expression");
  cmd->add_option("--type", flags->type,
                  "Only tokens of this type: ORGANIZATION|WORKSPACE|DEPLOYMENT");
  cmd->add_option("--from-terraform-state", flags->terraform_state,
                  "Adopt the astro_api_token resources of this Terraform state (format version 4)");
  cmd->footer("Uses the config given with -c (default " + GlobalOptions{}.config_path + ").");
  cmd->callback([&global, flags, exit_code] { *exit_code = run_adopt(global, *flags); });
}

}  // namespace tokend::cli
