// Shared set-up for the command-line tests and the plan/state integration
// tests: a temporary directory holding a daemon config that points at a
// running astro-api-sim (port 0), the real astro-tokend binary run against
// it (the bearer token passed through an environment variable, never argv),
// and helpers that seed the simulator and the state the way a test needs.
#pragma once

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "apply/recovery.h"
#include "state/store.h"
#include "support/process.h"
#include "support/sim.h"
#include "util/hash.h"

namespace tokend::testing {

// The environment variable the generated configs name in token_env.
inline constexpr const char* kBearerEnv = "TOKEND_CLI_TEST_API_TOKEN";

struct CliOptions {
  bool sim_rate_limits = false;  // the published limits, or none (faster)
};

class CliWorkspace {
 public:
  explicit CliWorkspace(CliOptions options = {}) {
    SimOptions sim_options;
    sim_options.rate_limits = options.sim_rate_limits;
    sim_ = std::make_unique<SimProcess>(sim_options);
    write_config({dir_.file("specs")});
    std::filesystem::create_directories(dir_.file("specs"));
  }

  SimProcess& sim() { return *sim_; }
  SimControl control() const { return sim_->control(); }
  const TempDir& dir() const { return dir_; }
  const std::string& config_path() const { return config_path_; }
  std::string state_path() const { return dir_.file("state/state.db"); }
  std::string secrets_dir() const { return dir_.file("tokens"); }
  std::string sink_for(const std::string& key) const {
    return secrets_dir() + "/" + key + ".token";
  }

  // Rewrites astro-tokend.toml with `spec_paths` (absolute) and the sim's URL.
  void write_config(const std::vector<std::string>& spec_paths, const std::string& extra = "") {
    std::string paths;
    for (const std::string& path : spec_paths)
      paths += (paths.empty() ? "\"" : ", \"") + path + "\"";
    config_path_ = dir_.file("astro-tokend.toml");
    write_file(config_path_, "[astro]\norganization_id = \"" + sim_->org_id() + "\"\napi_url = \"" +
                                 sim_->base_url() + "\"\ntoken_env = \"" + kBearerEnv +
                                 "\"\ntimeout = \"10s\"\n[specs]\npaths = [" + paths +
                                 "]\n[state]\npath = \"" + state_path() +
                                 "\"\n[secrets]\ndir = \"" + secrets_dir() +
                                 "\"\n[log]\nlevel = \"warn\"\n" + extra);
  }

  // Writes specs/NAME (a token spec file in the default spec directory).
  void write_spec(const std::string& name, const std::string& toml) const {
    write_file(dir_.file("specs/" + name), toml);
  }

  // Runs astro-tokend -c CONFIG ARGS… with the bearer token in the environment.
  ProcessResult tokend(const std::vector<std::string>& args, RunOptions options = {}) const {
    std::vector<std::string> argv{"-c", config_path_};
    argv.insert(argv.end(), args.begin(), args.end());
    options.env[kBearerEnv] = sim_->bearer_token();
    return run_tokend(argv, options);
  }

  std::unique_ptr<state::StateStore> open_state() const {
    std::filesystem::create_directories(std::filesystem::path(state_path()).parent_path());
    auto store = state::StateStore::open(state_path());
    if (!store.ok()) throw std::runtime_error("cannot open state: " + store.error().describe());
    return std::move(store.value());
  }

  // Records `token` as managed under `key`, with a delivered value written to
  // its default sink (so a plan sees the sink as matching), or as imported
  // (no value delivered) when `deliver` is false.
  void record(state::StateStore& store, const std::string& key, const astro::ApiToken& token,
              bool deliver = true) const {
    std::string fingerprint;
    if (deliver) {
      std::filesystem::create_directories(secrets_dir());
      const std::string value = "value-of-" + key;
      write_file(sink_for(key), value);
      fingerprint = sha256_hex(value);
    }
    auto recorded = store.record_outcome(
        {key, apply::record_from_token(key, token, sink_for(key), fingerprint), std::nullopt});
    if (!recorded.ok())
      throw std::runtime_error("cannot record " + key + ": " + recorded.error().describe());
  }

 private:
  TempDir dir_;
  std::unique_ptr<SimProcess> sim_;
  std::string config_path_;
};

// A WORKSPACE token spec on the simulator's default workspace.
inline std::string workspace_spec(const std::string& key, const std::string& name,
                                  const std::string& extra = "") {
  return "[api_token." + key + "]\nname = \"" + name + "\"\ndescription = \"" + key +
         " description\"\ntype = \"WORKSPACE\"\nrole = \"WORKSPACE_OWNER\"\nroles = [\n  { role = "
         "\"WORKSPACE_OWNER\", entity_id = \"" +
         kSimWorkspaceId + "\", entity_type = \"WORKSPACE\" },\n]\n" + extra + "\n";
}

// The simulator's token matching workspace_spec(key, name), created out of band.
inline sim::NewToken workspace_token(const std::string& key, const std::string& name) {
  sim::NewToken token;
  token.request.name = name;
  token.request.description = key + " description";
  token.request.type = EntityType::Workspace;
  token.request.role = "WORKSPACE_OWNER";
  token.request.entity_id = kSimWorkspaceId;
  return token;
}

// Creates `token` in the simulator (no API request is logged) and returns it as the API reports it.
inline astro::ApiToken create_out_of_band(const SimControl& control, const sim::NewToken& token) {
  sim::BulkCreate request;
  request.tokens = {token};
  sim::BulkCreated created = control.create_tokens(request);
  if (created.ids.size() != 1) throw std::runtime_error("the simulator created no token");
  std::optional<astro::ApiToken> found = control.token(created.ids[0]);
  if (!found) throw std::runtime_error("the simulator lost token " + created.ids[0]);
  return *found;
}

}  // namespace tokend::testing
