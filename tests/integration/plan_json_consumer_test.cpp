// The JSON plan read by third-party Terraform plan tooling: the npm package
// @ahmadnassri/terraform-unidiff (installed by scripts/setup.sh into tools/)
// validates the document against its schema of Terraform's plan format and
// prints a diff per change and a summary. It runs on a plan with every
// action, and on what the real binary prints against astro-api-sim.
#include <catch2/catch.hpp>

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "cli/fixture.h"
#include "plan/fixtures.h"
#include "plan/render_json.h"
#include "support/process.h"

using tokend::testing::CliWorkspace;
using tokend::testing::ProcessResult;
using tokend::testing::TempDir;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Runs terraform-unidiff on `json` (written to a file, as the tool wants).
ProcessResult unidiff(const TempDir& dir, const std::string& json) {
  const std::string bin = TOKEND_UNIDIFF_BIN;
  INFO("terraform-unidiff at " << bin << " (run scripts/setup.sh to install it)");
  REQUIRE(std::filesystem::exists(bin));
  const std::string path = dir.file("plan.json");
  tokend::testing::write_file(path, json);
  return tokend::testing::run_process({bin, path});
}

// "Plan: A to add, C to change, D to destroy" counted from the document's
// resource_changes the way the tool counts: each "create", "update" and
// "delete" in an entry's actions.
std::string expected_summary(const std::string& json) {
  Poco::JSON::Parser parser;
  auto root = parser.parse(json).extract<Poco::JSON::Object::Ptr>();
  auto changes = root->getArray("resource_changes");
  int add = 0, change = 0, destroy = 0;
  for (size_t i = 0; i < changes->size(); ++i) {
    auto actions =
        changes->getObject(static_cast<unsigned>(i))->getObject("change")->getArray("actions");
    for (size_t j = 0; j < actions->size(); ++j) {
      const std::string action = actions->getElement<std::string>(static_cast<unsigned>(j));
      add += action == "create";
      change += action == "update";
      destroy += action == "delete";
    }
  }
  return "Plan: " + std::to_string(add) + " to add, " + std::to_string(change) + " to change, " +
         std::to_string(destroy) + " to destroy";
}

}  // namespace

TEST_CASE("terraform-unidiff reads the JSON plan of every action", "[integration][plan]") {
  const tokend::plan::Plan plan = tokend::plan::compute(tokend::plan::testing::all_actions_input());
  const std::string json = tokend::plan::render_json(plan);
  TempDir dir;

  ProcessResult read = unidiff(dir, json);
  INFO(read.err);
  REQUIRE(read.exit_code == 0);
  CHECK(expected_summary(json) == "Plan: 4 to add, 5 to change, 3 to destroy");
  CHECK(contains(read.out, expected_summary(json) + "\n"));
  // One unified diff per listed change (the import is an update here).
  for (const tokend::plan::Change& change : plan.changes) {
    INFO(change.address());
    CHECK(contains(read.out, "Index: " + change.address() + "\n"));
  }
  CHECK(contains(read.out, "+name: c_update renamed\n"));
  CHECK_FALSE(contains(read.out, "l_noop"));

  // The tool does check: without terraform_version it refuses the document.
  const std::string key = "\"terraform_version\"";
  std::string without = json;
  without.replace(without.find(key), key.size(), "\"terraform_release\"");
  ProcessResult refused = unidiff(dir, without);
  CHECK(refused.exit_code == 1);
  CHECK(contains(refused.err, "invalid Terraform Plan JSON data"));
}

TEST_CASE("terraform-unidiff reads what plan --json and show --json print", "[integration][plan]") {
  CliWorkspace ws;
  ws.write_spec("a.toml", tokend::testing::workspace_spec("alpha", "alpha token") +
                              tokend::testing::workspace_spec("beta", "beta token"));
  ProcessResult planned = ws.tokend({"plan", "--json", "--out", ws.dir().file("saved.plan")});
  INFO(planned.err);
  REQUIRE(planned.exit_code == 0);
  ProcessResult shown = ws.tokend({"show", "--json", ws.dir().file("saved.plan")});
  REQUIRE(shown.exit_code == 0);
  CHECK(shown.out == planned.out);

  TempDir dir;
  ProcessResult read = unidiff(dir, planned.out);
  INFO(read.err);
  REQUIRE(read.exit_code == 0);
  CHECK(contains(read.out, "Index: astro_api_token.alpha\n"));
  CHECK(contains(read.out, "Index: astro_api_token.beta\n"));
  CHECK(contains(read.out, "Plan: 2 to add, 0 to change, 0 to destroy\n"));
}
