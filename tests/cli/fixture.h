// Shared set-up for the command-line tests and the plan/state integration
// tests: a temporary directory holding a daemon config that points at a
// running astro-api-sim (port 0), the real astro-tokend binary run against
// it (the bearer token passed through an environment variable, never argv),
// and helpers that seed the simulator and the state the way a test needs.
#pragma once

#include <cstdio>
#include <filesystem>
#include <map>
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

  // Rewrites astro-tokend.toml with `spec_paths` (absolute) and the API URL
  // (the sim's, unless use_api_url() named another).
  void write_config(const std::vector<std::string>& spec_paths, const std::string& extra = "") {
    spec_paths_ = spec_paths;
    std::string paths;
    for (const std::string& path : spec_paths)
      paths += (paths.empty() ? "\"" : ", \"") + path + "\"";
    config_path_ = dir_.file("astro-tokend.toml");
    write_file(config_path_,
               "[astro]\norganization_id = \"" + sim_->org_id() + "\"\napi_url = \"" +
                   (api_url_.empty() ? sim_->base_url() : api_url_) + "\"\ntoken_env = \"" +
                   kBearerEnv + "\"\ntimeout = \"10s\"\n[specs]\npaths = [" + paths +
                   "]\n[state]\npath = \"" + state_path() + "\"\n[secrets]\ndir = \"" +
                   secrets_dir() + "\"\n[log]\nlevel = \"warn\"\n" + extra);
  }

  // Points the config at `url` (e.g. a FaultProxy in front of the sim)
  // instead of the sim itself.
  void use_api_url(const std::string& url, const std::string& extra = "") {
    api_url_ = url;
    write_config(spec_paths_, extra);
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
    state::ResourceRecord row = deliver ? delivered_record(*this, key, token)
                                        : apply::record_from_token(key, token, sink_for(key), "");
    auto recorded = store.record_outcome({key, row, std::nullopt});
    if (!recorded.ok())
      throw std::runtime_error("cannot record " + key + ": " + recorded.error().describe());
  }

  // The state row of `token` managed under `key` after its value was
  // delivered: writes "value-of-<key>" to the default sink and records its
  // fingerprint.
  static state::ResourceRecord delivered_record(const CliWorkspace& ws, const std::string& key,
                                                const astro::ApiToken& token) {
    std::filesystem::create_directories(ws.secrets_dir());
    const std::string value = "value-of-" + key;
    write_file(ws.sink_for(key), value);
    return apply::record_from_token(key, token, ws.sink_for(key), sha256_hex(value));
  }

 private:
  TempDir dir_;
  std::unique_ptr<SimProcess> sim_;
  std::string config_path_;
  std::vector<std::string> spec_paths_;
  std::string api_url_;
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

// A fleet of managed tokens: `count` tokens created in the simulator out of
// band, matching specs spread over `files` spec files, and state rows with
// delivered values in their sinks, so that a plan over them is a no-op.
// A realistic mix: organization members and owners (some also on the
// workspace), workspace tokens of every built-in workspace role (some also
// deployment admins), deployment admins; most expire in 90 or 365 days with
// rotation 7 or 30 days ahead, some never. Keys are "t00001", "t00002", ….
inline void seed_managed_fleet(CliWorkspace& ws, int count, int files) {
  static const char* kWorkspaceRoles[] = {"WORKSPACE_OWNER", "WORKSPACE_OPERATOR",
                                          "WORKSPACE_AUTHOR", "WORKSPACE_MEMBER",
                                          "WORKSPACE_ACCESSOR"};
  const Role org_owner{"ORGANIZATION_OWNER", ws.sim().org_id(), EntityType::Organization};
  const Role org_member{"ORGANIZATION_MEMBER", ws.sim().org_id(), EntityType::Organization};
  const Role deployment_admin{"DEPLOYMENT_ADMIN", kSimDeploymentId, EntityType::Deployment};

  sim::BulkCreate request;
  std::vector<std::string> keys;
  std::vector<std::string> spec_text(static_cast<size_t>(files));
  for (int i = 1; i <= count; ++i) {
    char key[16];
    std::snprintf(key, sizeof key, "t%05d", i);
    keys.push_back(key);
    sim::NewToken token;
    RoleSet roles;
    switch (i % 10) {
      case 0:
      case 1:
        token.request.type = EntityType::Organization;
        roles = {i % 20 == 0 ? org_owner : org_member};
        if (i % 10 == 1)
          roles.push_back({"WORKSPACE_MEMBER", kSimWorkspaceId, EntityType::Workspace});
        break;
      case 2:
      case 3:
      case 4:
      case 5:
      case 6:
        token.request.type = EntityType::Workspace;
        roles = {{kWorkspaceRoles[i % 5], kSimWorkspaceId, EntityType::Workspace}};
        if (i % 10 == 6) roles.push_back(deployment_admin);
        break;
      default:
        token.request.type = EntityType::Deployment;
        roles = {deployment_admin};
        break;
    }
    roles = normalize_roles(roles);
    const Role primary = *primary_role(roles, token.request.type);
    token.request.name = std::string(to_string(token.request.type)) + " token " + key;
    token.request.description = "managed fleet token " + std::string(key);
    token.request.role = primary.role;
    if (token.request.type != EntityType::Organization) token.request.entity_id = primary.entity_id;
    if (i % 4 != 0) token.request.expiry_period_in_days = i % 4 == 1 ? 365 : 90;
    token.roles = roles;
    request.tokens.push_back(token);

    std::string& text = spec_text[static_cast<size_t>(i % files)];
    text += "[api_token." + std::string(key) + "]\nname = \"" + token.request.name +
            "\"\ndescription = \"" + token.request.description + "\"\ntype = \"" +
            std::string(to_string(token.request.type)) + "\"\nrole = \"" + primary.role +
            "\"\nroles = [\n";
    for (const Role& role : roles)
      text += "  { role = \"" + role.role + "\", entity_id = \"" + role.entity_id +
              "\", entity_type = \"" + std::string(to_string(role.entity_type)) + "\" },\n";
    text += "]\n";
    if (token.request.expiry_period_in_days) {
      text +=
          "expiry_period_in_days = " + std::to_string(*token.request.expiry_period_in_days) + "\n";
      text += "rotate_before_expiry_days = " + std::string(i % 4 == 1 ? "30" : "7") + "\n";
    }
    text += "\n";
  }
  for (int f = 0; f < files; ++f) {
    char name[32];
    std::snprintf(name, sizeof name, "fleet-%02d.toml", f);
    ws.write_spec(name, spec_text[static_cast<size_t>(f)]);
  }

  sim::BulkCreated created = ws.control().create_tokens(request);
  if (created.ids.size() != keys.size())
    throw std::runtime_error("the simulator created too few tokens");
  std::map<std::string, astro::ApiToken> by_id;
  for (astro::ApiToken& token : ws.control().tokens()) by_id.emplace(token.id, std::move(token));
  // One transaction for the whole fleet (one per row would cost an fsync each).
  std::vector<state::Outcome> outcomes;
  for (size_t i = 0; i < keys.size(); ++i)
    outcomes.push_back({keys[i],
                        CliWorkspace::delivered_record(ws, keys[i], by_id.at(created.ids[i])),
                        std::nullopt});
  auto store = ws.open_state();
  auto recorded = store->record_outcomes(outcomes);
  if (!recorded.ok())
    throw std::runtime_error("cannot record the fleet: " + recorded.error().describe());
}

}  // namespace tokend::testing
