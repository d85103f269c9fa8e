// Set-up shared by the apply integration tests: a temporary directory with a
// daemon config pointing at a running astro-api-sim (127.0.0.1, port 0), the
// real astro-tokend binary run against it (the bearer token passed through an
// environment variable, never argv), and the checks the tests share.
#pragma once

#include <SQLiteCpp/SQLiteCpp.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "state/store.h"
#include "support/process.h"
#include "support/sim.h"
#include "util/hash.h"

namespace tokend::testing {

inline constexpr const char* kApplyBearerEnv = "TOKEND_APPLY_TEST_API_TOKEN";

struct ApplyWorkspaceOptions {
  SimOptions sim = [] {
    SimOptions options;
    options.rate_limits = false;
    return options;
  }();
  // The [astro.rate_limits] of the config: high, so that tests do not wait.
  std::string client_rate_limits = "get = 1000\npost = 1000\ndelete = 1000\n";
  int parallelism = 4;
  int max_deletes_per_run = 5;
  // [astro] api_version; "" leaves the key out (the default, v1).
  std::string api_version;
};

class ApplyWorkspace {
 public:
  explicit ApplyWorkspace(ApplyWorkspaceOptions options = {})
      : options_(std::move(options)), sim_(std::make_unique<SimProcess>(options_.sim)) {
    std::filesystem::create_directories(spec_dir());
    write_config();
  }

  SimProcess& sim() { return *sim_; }
  SimControl control() const { return sim_->control(); }
  const TempDir& dir() const { return dir_; }
  std::string config_path() const { return dir_.file("astro-tokend.toml"); }
  std::string spec_dir() const { return dir_.file("tokens.d"); }
  std::string state_path() const { return dir_.file("state/state.db"); }
  std::string secrets_dir() const { return dir_.file("secrets"); }
  std::string sink_for(const std::string& key) const {
    return secrets_dir() + "/" + key + ".token";
  }

  // `extra` goes at the end (new tables); `secrets` into [secrets], after dir.
  void write_config(const std::string& extra = "", const std::string& secrets = "") const {
    write_file(
        config_path(),
        "[astro]\norganization_id = \"" + sim_->org_id() + "\"\napi_url = \"" + sim_->base_url() +
            "\"\n" +
            (options_.api_version.empty() ? std::string()
                                          : "api_version = \"" + options_.api_version + "\"\n") +
            "token_env = \"" + kApplyBearerEnv + "\"\ntimeout = \"10s\"\n[astro.rate_limits]\n" +
            options_.client_rate_limits + "[specs]\npaths = [\"" + spec_dir() +
            "\"]\n[state]\npath = \"" + state_path() +
            "\"\n[reconcile]\nparallelism = " + std::to_string(options_.parallelism) +
            "\nmax_deletes_per_run = " + std::to_string(options_.max_deletes_per_run) +
            "\n[secrets]\ndir = \"" + secrets_dir() + "\"\n" + secrets +
            "[log]\nlevel = \"warn\"\n" + extra);
  }

  // Rewrites the config with [astro] api_version = `version` ("" = absent).
  void set_api_version(const std::string& version) {
    options_.api_version = version;
    write_config();
  }

  // The example specs of the repository (config/tokens.d), copied.
  void copy_example_specs() const {
    for (const auto& entry :
         std::filesystem::directory_iterator(std::string(TOKEND_SOURCE_DIR) + "/config/tokens.d"))
      if (entry.path().extension() == ".toml")
        std::filesystem::copy_file(entry.path(),
                                   spec_dir() + "/" + entry.path().filename().string(),
                                   std::filesystem::copy_options::overwrite_existing);
  }
  void write_spec(const std::string& name, const std::string& text) const {
    write_file(spec_dir() + "/" + name, text);
  }
  std::string read_spec(const std::string& name) const {
    return read_file(spec_dir() + "/" + name);
  }
  // Replaces the one occurrence of `from` in spec file `name` by `to`.
  void edit_spec(const std::string& name, const std::string& from, const std::string& to) const {
    std::string text = read_spec(name);
    const size_t at = text.find(from);
    if (at == std::string::npos || text.find(from, at + 1) != std::string::npos)
      throw std::runtime_error("spec " + name + " does not hold exactly one \"" + from + "\"");
    text.replace(at, from.size(), to);
    write_spec(name, text);
  }
  // Gives token `key` of spec file `name` the key `new_key` (its table and subtables).
  void rename_spec_key(const std::string& name, const std::string& key,
                       const std::string& new_key) const {
    std::string text = read_spec(name);
    for (const std::string suffix : {"]", ".roles]", ".lifecycle]"}) {
      const std::string from = "api_token." + key + suffix, to = "api_token." + new_key + suffix;
      for (size_t at = text.find(from); at != std::string::npos;
           at = text.find(from, at + to.size()))
        text.replace(at, from.size(), to);
    }
    write_spec(name, text);
  }
  void remove_spec(const std::string& name) const {
    std::filesystem::remove(spec_dir() + "/" + name);
  }

  // Runs astro-tokend -c CONFIG ARGS… with the bearer token in the
  // environment; its output is kept for secret scans.
  ProcessResult tokend(const std::vector<std::string>& args, RunOptions options = {}) {
    std::vector<std::string> argv{"-c", config_path()};
    argv.insert(argv.end(), args.begin(), args.end());
    options.env[kApplyBearerEnv] = sim_->bearer_token();
    ProcessResult result = run_tokend(argv, options);
    transcript_ += result.out + result.err;
    return result;
  }
  ProcessResult apply(std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"apply", "--auto-approve"};
    args.insert(args.end(), extra.begin(), extra.end());
    return tokend(args);
  }
  // The environment and argv of astro-tokend for running it in the background.
  RunOptions run_options() const {
    RunOptions options;
    options.env[kApplyBearerEnv] = sim_->bearer_token();
    return options;
  }
  std::vector<std::string> argv(const std::vector<std::string>& args) const {
    std::vector<std::string> out{TOKEND_BIN, "-c", config_path()};
    out.insert(out.end(), args.begin(), args.end());
    return out;
  }
  // Adds output of a process run outside tokend() to the scanned transcript.
  void keep_output(const std::string& text) { transcript_ += text; }
  const std::string& transcript() const { return transcript_; }

  std::unique_ptr<state::StateStore> open_state() const {
    auto store = state::StateStore::open(state_path());
    if (!store.ok()) throw std::runtime_error("cannot open state: " + store.error().describe());
    return std::move(store.value());
  }
  std::vector<state::ResourceRecord> rows() const {
    auto rows = open_state()->resources();
    if (!rows.ok()) throw std::runtime_error("cannot read state: " + rows.error().describe());
    return *rows;
  }
  state::ResourceRecord row(const std::string& key) const {
    for (auto& r : rows())
      if (r.key == key) return r;
    throw std::runtime_error("no state row " + key);
  }

  // The simulator's tokens by name; throws when a name is held twice.
  std::map<std::string, astro::ApiToken> tokens_by_name() const {
    std::map<std::string, astro::ApiToken> by_name;
    for (auto& token : control().tokens()) {
      std::string name = token.name;
      if (!by_name.emplace(name, std::move(token)).second)
        throw std::runtime_error("duplicate token named " + name);
    }
    return by_name;
  }

 private:
  ApplyWorkspaceOptions options_;
  TempDir dir_;
  std::unique_ptr<SimProcess> sim_;
  std::string transcript_;
};

// `count` token specs "<prefix>_000", … named "<prefix> token 000", …: by
// turns an organization token with three roles (organization, workspace,
// deployment), a workspace token with one role, and a workspace token that
// is also deployment admin.
inline std::string many_token_specs(const std::string& prefix, int count,
                                    const std::string& org_id) {
  std::string text;
  for (int i = 0; i < count; ++i) {
    char number[16];
    std::snprintf(number, sizeof number, "%03d", i);
    text += "[api_token." + prefix + "_" + number + "]\nname = \"" + prefix + " token " + number +
            "\"\n";
    if (i % 3 == 0) {
      text +=
          "type = \"ORGANIZATION\"\nrole = \"ORGANIZATION_MEMBER\"\nroles = [\n"
          "  { role = \"ORGANIZATION_MEMBER\", entity_id = \"" +
          org_id +
          "\", entity_type = \"ORGANIZATION\" },\n"
          "  { role = \"WORKSPACE_MEMBER\", entity_id = \"" +
          std::string(kSimWorkspaceId) +
          "\", entity_type = \"WORKSPACE\" },\n"
          "  { role = \"DEPLOYMENT_ADMIN\", entity_id = \"" +
          std::string(kSimDeploymentId) + "\", entity_type = \"DEPLOYMENT\" },\n]\n";
    } else {
      text +=
          "type = \"WORKSPACE\"\nrole = \"WORKSPACE_OPERATOR\"\nroles = [\n"
          "  { role = \"WORKSPACE_OPERATOR\", entity_id = \"" +
          std::string(kSimWorkspaceId) + "\", entity_type = \"WORKSPACE\" },\n";
      if (i % 3 == 2)
        text += "  { role = \"DEPLOYMENT_ADMIN\", entity_id = \"" + std::string(kSimDeploymentId) +
                "\", entity_type = \"DEPLOYMENT\" },\n";
      text += "]\n";
    }
    text += "\n";
  }
  return text;
}

// What is wrong with the outcome of applying many_token_specs(prefix,
// count): the simulator must hold exactly those tokens (by name, none twice),
// state one row per token with the simulator's id, no pending intent, a
// database that passes integrity_check, and each sink the value its row
// fingerprints. "" when all is well.
inline std::string convergence_problems(const ApplyWorkspace& ws, const std::string& prefix,
                                        int count) {
  std::string problems;
  std::map<std::string, std::string> ids_by_name;
  for (const auto& token : ws.control().tokens()) {
    if (!ids_by_name.emplace(token.name, token.id).second)
      problems += "token named " + token.name + " twice\n";
  }
  if (ids_by_name.size() != static_cast<size_t>(count))
    problems += "the simulator holds " + std::to_string(ids_by_name.size()) + " tokens\n";
  auto store = ws.open_state();
  auto rows = store->resources();
  if (!rows.ok()) return problems + rows.error().describe();
  if (rows->size() != static_cast<size_t>(count))
    problems += "state holds " + std::to_string(rows->size()) + " rows\n";
  for (const auto& row : *rows) {
    const std::string name = prefix + " token " + row.key.substr(prefix.size() + 1);
    auto id = ids_by_name.find(name);
    if (id == ids_by_name.end() || id->second != row.id)
      problems += row.key + " is not the simulator's " + name + "\n";
    if (row.rotate_pending || row.sink_sha256.empty())
      problems += row.key + " has no delivered value\n";
    std::error_code ec;
    if (!std::filesystem::exists(row.sink_path, ec) ||
        sha256_hex(read_file(row.sink_path)) != row.sink_sha256)
      problems += row.key + ": its sink does not hold the recorded value\n";
  }
  auto intents = store->pending_intents();
  if (!intents.ok() || !intents->empty()) problems += "intents are pending\n";
  store.reset();
  SQLite::Database raw(ws.state_path(), SQLite::OPEN_READONLY);
  if (raw.execAndGet("PRAGMA integrity_check").getString() != "ok")
    problems += "integrity_check failed\n";
  return problems;
}

// The API operations that change something (POST and DELETE), in the order
// the simulator completed them, as "Operation" or "Operation <token id>".
inline std::vector<std::string> writes(const RequestStats& stats) {
  std::vector<std::string> out;
  for (const auto& request : stats.requests) {
    if (request.method == "GET") continue;
    std::string id;
    const std::string marker = "/tokens/";
    if (size_t at = request.path.find(marker); at != std::string::npos) {
      id = request.path.substr(at + marker.size());
      id = id.substr(0, id.find('/'));
    }
    out.push_back(request.operation + (id.empty() ? "" : " " + id));
  }
  return out;
}

inline int file_mode(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

// Where `needle` occurs in the files under `root` (recursively), skipping
// `skip_dir`; "" when nowhere.
inline std::string find_in_files(const std::string& root, const std::string& needle,
                                 const std::string& skip_dir) {
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file()) continue;
    const std::string path = entry.path().string();
    if (!skip_dir.empty() && path.rfind(skip_dir + "/", 0) == 0) continue;
    if (read_file(path).find(needle) != std::string::npos) return path;
  }
  return "";
}

// A finished command's stdout and stderr, for failure messages.
inline std::string process_output(const ProcessResult& result) {
  return "stdout:\n" + result.out + "\nstderr:\n" + result.err;
}

}  // namespace tokend::testing

// Requires that `expression` (a ProcessResult, evaluated once) exited with
// `code`; shows its output when it did not.
#define REQUIRE_EXIT(expression, code)                           \
  do {                                                           \
    const ::tokend::testing::ProcessResult& run_ = (expression); \
    INFO(::tokend::testing::process_output(run_));               \
    REQUIRE(run_.exit_code == (code));                           \
  } while (false)
