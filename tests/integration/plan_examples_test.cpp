// The example config and specs of config/ against astro-api-sim on port 0:
// plan, import, drift, saved plans and exit codes, through the real binary.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "plan/plan_file.h"
#include "spec/loader.h"
#include "state/store.h"
#include "support/process.h"
#include "support/sim.h"

namespace fs = std::filesystem;
using tokend::testing::ProcessResult;
using tokend::testing::RunOptions;
using tokend::testing::SimProcess;
using tokend::testing::TempDir;

namespace {

const std::string kExampleDir = std::string(TOKEND_SOURCE_DIR) + "/config";
const std::vector<std::string> kExampleKeys = {
    "deployment_token_with_dag_roles", "organization_token",
    "organization_token_with_multiple_roles", "workspace_token",
    "workspace_token_with_deployment_role"};

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// config/ copied into a temporary directory with api_url pointing at the
// simulator; relative paths (tokens.d, ../.tokend/…) then resolve inside it.
class ExampleSetup {
 public:
  ExampleSetup() {
    tokend::testing::SimOptions options;
    options.rate_limits = false;
    sim_ = std::make_unique<SimProcess>(options);
    fs::create_directories(dir_.file("etc/tokens.d"));
    for (const auto& entry : fs::directory_iterator(kExampleDir + "/tokens.d"))
      fs::copy_file(entry.path(), dir_.file("etc/tokens.d/" + entry.path().filename().string()));
    std::string config = tokend::testing::read_file(kExampleDir + "/astro-tokend.toml");
    const std::string example_url = "\"http://127.0.0.1:8787\"";
    const size_t at = config.find(example_url);
    REQUIRE(at != std::string::npos);
    config.replace(at, example_url.size(), "\"" + sim_->base_url() + "\"");
    tokend::testing::write_file(config_path(), config);
  }

  SimProcess& sim() { return *sim_; }
  tokend::testing::SimControl control() const { return sim_->control(); }
  std::string config_path() const { return dir_.file("etc/astro-tokend.toml"); }
  std::string state_path() const { return dir_.file(".tokend/state.db"); }
  std::string file(const std::string& name) const { return dir_.file(name); }

  ProcessResult tokend(const std::vector<std::string>& args) const {
    std::vector<std::string> argv{"-c", config_path()};
    argv.insert(argv.end(), args.begin(), args.end());
    RunOptions options;
    options.env["ASTRO_API_TOKEN"] = sim_->bearer_token();
    options.unset_env = {"CREDENTIALS_DIRECTORY"};
    return tokend::testing::run_tokend(argv, options);
  }

  // Creates the example tokens in the simulator out of band (as someone did
  // with Terraform before), from the loaded example specs; ids by key.
  std::map<std::string, std::string> create_example_tokens() const {
    auto desired = tokend::spec::load_desired_state(config_path());
    REQUIRE(desired.ok());
    tokend::sim::BulkCreate request;
    for (const auto& spec : desired.value->tokens) {
      tokend::sim::NewToken token;
      token.request.name = spec.attrs.name;
      token.request.description = spec.attrs.description;
      token.request.type = spec.attrs.type;
      token.request.role = spec.attrs.role;
      token.request.expiry_period_in_days = spec.attrs.expiry_period_in_days;
      auto primary = tokend::primary_role(spec.attrs.roles, spec.attrs.type);
      REQUIRE(primary);
      if (spec.attrs.type != tokend::EntityType::Organization)
        token.request.entity_id = primary->entity_id;
      token.roles = spec.attrs.roles;
      request.tokens.push_back(token);
    }
    auto created = control().create_tokens(request);
    REQUIRE(created.ids.size() == desired.value->tokens.size());
    std::map<std::string, std::string> ids;
    for (size_t i = 0; i < created.ids.size(); ++i)
      ids[desired.value->tokens[i].key] = created.ids[i];
    return ids;
  }

 private:
  TempDir dir_;
  std::unique_ptr<SimProcess> sim_;
};

uint64_t api_writes(const tokend::testing::RequestStats& stats) {
  uint64_t n = 0;
  for (const char* op : {"CreateApiToken", "UpdateApiToken", "UpdateApiTokenRoles",
                         "RotateApiToken", "DeleteApiToken"})
    n += stats.count(op);
  return n;
}

}  // namespace

TEST_CASE("the example specs plan five creates in Terraform's phrasing", "[integration][plan]") {
  ExampleSetup setup;
  ProcessResult result = setup.tokend({"plan", "--detailed-exitcode"});
  INFO(result.err);
  CHECK(result.exit_code == 2);
  for (const std::string& key : kExampleKeys)
    CHECK(contains(result.out, "  # astro_api_token." + key +
                                   " will be created\n  + resource \"astro_api_token\" \"" + key +
                                   "\" {\n"));
  CHECK(contains(result.out,
                 "Resource actions are indicated with the following symbols:\n  + create\n"));
  CHECK(contains(result.out, "(known after apply)"));
  CHECK(contains(result.out, "      + token                 = (sensitive value)\n"));
  CHECK(contains(result.out, "\nPlan: 5 to add, 0 to change, 0 to destroy, 0 to rotate.\n"));

  auto stats = setup.control().requests();
  CHECK(stats.count("ListApiTokens") == 1);
  CHECK(stats.count("ListWorkspaces") == 1);
  CHECK(stats.count("ListDeployments") == 1);
  CHECK(stats.count("GetApiToken") == 0);
  CHECK(api_writes(stats) == 0);

  ProcessResult plain = setup.tokend({"plan"});
  CHECK(plain.exit_code == 0);
}

TEST_CASE("imported example tokens plan empty - a rename outside shows as drift and an update",
          "[integration][plan]") {
  ExampleSetup setup;
  const std::map<std::string, std::string> ids = setup.create_example_tokens();
  setup.control().reset_requests();

  for (const auto& [key, id] : ids) {
    ProcessResult imported = setup.tokend({"import", "astro_api_token." + key, id});
    INFO(imported.err);
    REQUIRE(imported.exit_code == 0);
    CHECK(contains(imported.out, "Import successful!"));
  }
  auto stats = setup.control().requests();
  CHECK(stats.count("GetApiToken") == 5);
  CHECK(api_writes(stats) == 0);

  ProcessResult listed = setup.tokend({"state", "list"});
  CHECK(listed.out ==
        "astro_api_token.deployment_token_with_dag_roles\n"
        "astro_api_token.organization_token\n"
        "astro_api_token.organization_token_with_multiple_roles\n"
        "astro_api_token.workspace_token\n"
        "astro_api_token.workspace_token_with_deployment_role\n");

  auto store = tokend::state::StateStore::open(setup.state_path());
  REQUIRE(store.ok());
  const int64_t serial = (*store)->serial();

  SECTION("nothing changed: no changes, exit 0") {
    ProcessResult plan = setup.tokend({"plan", "--detailed-exitcode"});
    INFO(plan.err);
    CHECK(plan.exit_code == 0);
    CHECK(plan.out == "No changes. Your tokens match the configuration.\n");
  }

  SECTION("renamed outside: drift, an update, exit 2") {
    tokend::sim::TokenPatch rename;
    rename.name = "renamed by hand";
    setup.control().patch_token(ids.at("workspace_token"), rename);
    setup.control().reset_requests();

    ProcessResult plan = setup.tokend({"plan", "--detailed-exitcode"});
    INFO(plan.err);
    CHECK(plan.exit_code == 2);
    CHECK(contains(plan.out, "Note: Objects have changed outside of astro-tokend\n"));
    CHECK(contains(plan.out, "  # astro_api_token.workspace_token has changed\n"));
    CHECK(contains(plan.out, "= \"workspace api token\" -> \"renamed by hand\"\n"));
    CHECK(contains(plan.out, "  # astro_api_token.workspace_token will be updated in-place\n"));
    CHECK(contains(plan.out, "= \"renamed by hand\" -> \"workspace api token\"\n"));
    CHECK(contains(plan.out, "\nPlan: 0 to add, 1 to change, 0 to destroy, 0 to rotate.\n"));
    stats = setup.control().requests();
    CHECK(stats.count("ListApiTokens") == 1);
    CHECK(stats.count("ListWorkspaces") == 0);  // every id is held by a listed token
    CHECK(stats.count("ListDeployments") == 0);
    CHECK(stats.total == 1);
  }

  SECTION("bad input: exit 1, no API call") {
    std::ofstream(setup.file("etc/tokens.d/workspace.toml"), std::ios::app)
        << "\n[api_token.broken]\nname = \"\"\n";
    setup.control().reset_requests();
    ProcessResult plan = setup.tokend({"plan", "--detailed-exitcode"});
    CHECK(plan.exit_code == 1);
    CHECK(plan.out.empty());
    CHECK(contains(plan.err, "workspace.toml:"));
    CHECK(setup.control().requests().total == 0);
  }

  SECTION("a saved plan round-trips through show and goes stale when the state changes") {
    tokend::sim::TokenPatch describe;
    describe.description = "changed by hand";
    setup.control().patch_token(ids.at("organization_token"), describe);
    const std::string plan_file = setup.file("changes.plan");
    ProcessResult saved = setup.tokend({"plan", "--out", plan_file, "--detailed-exitcode"});
    INFO(saved.err);
    REQUIRE(saved.exit_code == 2);
    CHECK(contains(saved.out, "Saved the plan to: " + plan_file + "\n"));

    ProcessResult shown = tokend::testing::run_tokend({"show", plan_file});
    CHECK(shown.exit_code == 0);
    CHECK(shown.out == saved.out.substr(0, saved.out.rfind("\n---")));
    ProcessResult shown_json = tokend::testing::run_tokend({"show", "--json", plan_file});
    ProcessResult planned_json = setup.tokend({"plan", "--json"});
    CHECK(shown_json.exit_code == 0);
    CHECK(contains(shown_json.out, "\"address\": \"astro_api_token.organization_token\""));
    CHECK(planned_json.out.find("\"resource_changes\"") != std::string::npos);

    auto loaded = tokend::plan::load_plan(tokend::testing::read_file(plan_file));
    REQUIRE(loaded.ok());
    CHECK(loaded->serial == serial);
    CHECK(loaded->lineage == (*store)->lineage());
    CHECK(tokend::plan::check_plan_current(*loaded, (*store)->lineage(), (*store)->serial(),
                                           loaded->spec_hash)
              .ok());

    ProcessResult removed = setup.tokend({"state", "rm", "astro_api_token.workspace_token"});
    REQUIRE(removed.exit_code == 0);
    auto stale = tokend::plan::check_plan_current(*loaded, (*store)->lineage(), (*store)->serial(),
                                                  loaded->spec_hash);
    REQUIRE_FALSE(stale.ok());
    CHECK(stale.error().message ==
          "Saved plan is stale: the state has changed since the plan was "
          "created (serial " +
              std::to_string(serial) + ", now " + std::to_string(serial + 1) + ").");

    // A state made afresh has another lineage.
    store = tokend::state::StateStore::open(":memory:");
    REQUIRE(store.ok());
    auto other = tokend::plan::check_plan_current(*loaded, (*store)->lineage(), loaded->serial,
                                                  loaded->spec_hash);
    REQUIRE_FALSE(other.ok());
    CHECK(contains(other.error().message, "different state lineage"));
  }

  CHECK(api_writes(setup.control().requests()) == 0);
}
