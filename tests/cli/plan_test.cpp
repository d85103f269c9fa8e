// `astro-tokend plan` and `show`: output and exit codes of the real binary
// against astro-api-sim on port 0.
#include <catch2/catch.hpp>

#include <Poco/JSON/Parser.h>
#include <sys/stat.h>

#include <filesystem>
#include <regex>
#include <string>

#include "cli/fixture.h"
#include "plan/plan_file.h"

using tokend::testing::CliWorkspace;
using tokend::testing::ProcessResult;
using tokend::testing::workspace_spec;
using tokend::testing::workspace_token;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

Poco::JSON::Object::Ptr parse_json(const std::string& text) {
  Poco::JSON::Parser parser;
  return parser.parse(text).extract<Poco::JSON::Object::Ptr>();
}

}  // namespace

TEST_CASE("plan prints creates in Terraform's phrasing - --detailed-exitcode gives 2",
          "[cli][plan]") {
  CliWorkspace ws;
  ws.write_spec("a.toml",
                workspace_spec("alpha", "alpha token") + workspace_spec("beta", "beta token"));

  ProcessResult plain = ws.tokend({"plan"});
  INFO(plain.err);
  CHECK(plain.exit_code == 0);
  CHECK(contains(plain.out,
                 "  # astro_api_token.alpha will be created\n"
                 "  + resource \"astro_api_token\" \"alpha\" {\n"));
  CHECK(contains(plain.out, "  # astro_api_token.beta will be created\n"));
  CHECK(contains(plain.out, "      + id          = (known after apply)\n"));
  CHECK(contains(plain.out, "      + token       = (sensitive value)\n"));
  CHECK(contains(plain.out, "Plan: 2 to add, 0 to change, 0 to destroy, 0 to rotate.\n"));
  CHECK(contains(plain.out, "Note: You didn't use the --out option to save this plan"));
  CHECK_FALSE(contains(plain.out, "\033["));  // not a terminal: no colour

  ProcessResult detailed = ws.tokend({"plan", "--detailed-exitcode"});
  CHECK(detailed.exit_code == 2);
  CHECK(detailed.out == plain.out);
  CHECK(detailed.err.empty());
}

TEST_CASE("plan --json prints Terraform's JSON plan shape and nothing else", "[cli][plan]") {
  CliWorkspace ws;
  ws.write_spec("a.toml", workspace_spec("alpha", "alpha token"));
  ProcessResult result = ws.tokend({"plan", "--json"});
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  auto json = parse_json(result.out);
  CHECK(json->getValue<std::string>("format_version") == "1.2");
  auto changes = json->getArray("resource_changes");
  REQUIRE(changes->size() == 1);
  auto change = changes->getObject(0);
  CHECK(change->getValue<std::string>("address") == "astro_api_token.alpha");
  CHECK(change->getObject("change")->getArray("actions")->getElement<std::string>(0) == "create");
  CHECK_FALSE(contains(result.out, "value-of"));
}

TEST_CASE("plan with nothing to do says so and exits 0 with --detailed-exitcode", "[cli][plan]") {
  CliWorkspace ws;
  ws.write_spec("a.toml", workspace_spec("alpha", "alpha token"));
  auto store = ws.open_state();
  ws.record(*store, "alpha",
            create_out_of_band(ws.control(), workspace_token("alpha", "alpha token")));

  ProcessResult result = ws.tokend({"plan", "--detailed-exitcode"});
  INFO(result.err);
  CHECK(result.exit_code == 0);
  CHECK(result.out == "No changes. Your tokens match the configuration.\n");
}

TEST_CASE("plan never changes the state: the serial and the rows stay", "[cli][plan]") {
  CliWorkspace ws;
  ws.write_spec("a.toml",
                workspace_spec("alpha", "alpha token renamed") + workspace_spec("beta", "beta"));
  auto store = ws.open_state();
  auto token = create_out_of_band(ws.control(), workspace_token("alpha", "alpha token"));
  ws.record(*store, "alpha", token);
  ws.control().patch_token(token.id, [] {
    tokend::sim::TokenPatch patch;
    patch.description = "changed outside";
    return patch;
  }());
  const int64_t serial = store->serial();
  auto rows_before = store->resources();
  REQUIRE(rows_before.ok());

  ProcessResult result = ws.tokend({"plan", "--detailed-exitcode"});
  INFO(result.err);
  CHECK(result.exit_code == 2);
  CHECK(contains(result.out, "# astro_api_token.alpha has changed"));
  CHECK(contains(result.out, "Plan: 1 to add, 1 to change, 0 to destroy, 0 to rotate."));
  CHECK(store->serial() == serial);
  auto rows_after = store->resources();
  REQUIRE(rows_after.ok());
  CHECK(*rows_after == *rows_before);
  CHECK(ws.control().requests().count("UpdateApiToken") == 0);
  CHECK(ws.control().requests().count("CreateApiToken") == 0);
}

TEST_CASE("plan with a bad spec prints diagnostics - exits 1 and makes no API call",
          "[cli][plan]") {
  CliWorkspace ws;
  ws.write_spec("a.toml",
                "[api_token.alpha]\nname = \"alpha\"\ntype = \"WORKSPACE\"\nrole = "
                "\"WORKSPACE_OWNER\"\nroles = []\nbogus = 1\n");
  ws.control().reset_requests();
  ProcessResult result = ws.tokend({"plan", "--detailed-exitcode"});
  CHECK(result.exit_code == 1);
  CHECK(result.out.empty());
  CHECK(contains(result.err, "a.toml:"));
  CHECK(contains(result.err, "error:"));
  CHECK(ws.control().requests().total == 0);
  CHECK_FALSE(std::filesystem::exists(ws.state_path()));
}

TEST_CASE("plan --json with a bad spec prints one JSON document of Terraform's diagnostics",
          "[cli][plan]") {
  CliWorkspace ws;
  ws.write_spec("a.toml",
                "[api_token.alpha]\nname = \"alpha\"\ntype = \"WORKSPACE\"\nrole = "
                "\"WORKSPACE_OWNER\"\nroles = []\nbogus = 1\n");
  ws.control().reset_requests();
  ProcessResult result = ws.tokend({"plan", "--json"});
  CHECK(result.exit_code == 1);
  auto json = parse_json(result.out);  // exactly one document: the parser takes all of stdout
  CHECK(json->getValue<std::string>("format_version") == "1.2");
  CHECK(json->has("terraform_version"));
  CHECK(json->getValue<bool>("errored"));
  CHECK_FALSE(json->getValue<bool>("applyable"));
  CHECK_FALSE(json->getValue<bool>("complete"));
  auto diagnostics = json->getArray("diagnostics");
  REQUIRE(diagnostics->size() == 2);
  auto bogus = diagnostics->getObject(1);
  CHECK(bogus->getValue<std::string>("severity") == "error");
  CHECK(contains(bogus->getValue<std::string>("summary"), "unknown key \"bogus\""));
  auto range = bogus->getObject("range");
  CHECK(contains(range->getValue<std::string>("filename"), "a.toml"));
  CHECK(range->getObject("start")->getValue<int>("line") == 6);
  CHECK(range->getObject("start")->getValue<int>("column") == 1);
  CHECK(contains(result.err, "a.toml:6:1: error: "));  // people still read stderr
  CHECK(ws.control().requests().total == 0);
}

TEST_CASE("plan --json reports an API failure as a diagnostic", "[cli][plan]") {
  CliWorkspace ws;
  ws.write_spec("a.toml", workspace_spec("alpha", "alpha token"));
  ProcessResult result =
      tokend::testing::run_tokend({"-c", ws.config_path(), "plan", "--json"}, [&] {
        tokend::testing::RunOptions options;
        options.env[tokend::testing::kBearerEnv] = "not-the-token";
        return options;
      }());
  CHECK(result.exit_code == 1);
  auto json = parse_json(result.out);
  CHECK(json->getValue<bool>("errored"));
  auto diagnostics = json->getArray("diagnostics");
  REQUIRE(diagnostics->size() == 1);
  CHECK(contains(diagnostics->getObject(0)->getValue<std::string>("summary"), "401"));
  CHECK_FALSE(diagnostics->getObject(0)->has("range"));
  CHECK_FALSE(contains(result.out, "not-the-token"));
}

TEST_CASE("plan reports a workspace that does not exist at its token", "[cli][plan]") {
  CliWorkspace ws;
  ws.write_spec("a.toml",
                "[api_token.alpha]\nname = \"alpha\"\ntype = \"WORKSPACE\"\nrole = "
                "\"WORKSPACE_OWNER\"\nroles = [ { role = \"WORKSPACE_OWNER\", entity_id = "
                "\"cnosuchworkspace0000000000\", entity_type = \"WORKSPACE\" } ]\n");
  ProcessResult result = ws.tokend({"plan", "--detailed-exitcode"});
  CHECK(result.exit_code == 1);
  CHECK(result.out.empty());
  CHECK(contains(result.err,
                 "a.toml:1:1: error: astro_api_token.alpha: workspace "
                 "\"cnosuchworkspace0000000000\" does not exist in organization"));
  CHECK(ws.control().requests().count("ListWorkspaces") == 1);
}

TEST_CASE(
    "plan and validate --remote report the missing deployment of a DAG role in the one deployments "
    "lookup",
    "[cli][plan]") {
  CliWorkspace ws;
  const std::string deployment = "clyn6kxud003x01mtxmccegnh";  // the simulator's
  ws.write_spec("a.toml",
                "[api_token.dags]\nname = \"dags\"\ntype = \"DEPLOYMENT\"\nrole = "
                "\"DEPLOYMENT_ADMIN\"\nroles = [\n"
                "  { role = \"DEPLOYMENT_ADMIN\", entity_id = \"" +
                    deployment +
                    "\", entity_type = \"DEPLOYMENT\" },\n"
                    "  { role = \"DAG_VIEWER\", entity_id = \"etl\", entity_type = \"DAG\", "
                    "deployment_id = \"" +
                    deployment +
                    "\" },\n"
                    "  { role = \"DAG_AUTHOR\", entity_id = \"finance\", entity_type = "
                    "\"DAG_TAG\", deployment_id = \"cnosuchdeployment000000000\" },\n]\n");
  const std::string expected =
      "a.toml:1:1: error: astro_api_token.dags: deployment \"cnosuchdeployment000000000\" (the "
      "deployment_id of its DAG_TAG role on \"finance\") does not exist in organization";
  ProcessResult planned = ws.tokend({"plan", "--detailed-exitcode"});
  CHECK(planned.exit_code == 1);
  CHECK(planned.out.empty());
  CHECK(contains(planned.err, expected));
  CHECK(ws.control().requests().count("ListDeployments") == 1);

  ws.control().reset_requests();
  ProcessResult validated = ws.tokend({"validate", "--remote"});
  CHECK(validated.exit_code == 1);
  CHECK(contains(validated.err, expected));
  CHECK(ws.control().requests().count("ListDeployments") == 1);
  CHECK(ws.control().requests().count("CreateApiToken") == 0);
}

TEST_CASE("plan fails naming a token whose prevent_destroy forbids its replacement",
          "[cli][plan]") {
  CliWorkspace ws;
  ws.write_spec("a.toml", workspace_spec("alpha", "alpha token",
                                         "expiry_period_in_days = 30\n[api_token.alpha.lifecycle]\n"
                                         "prevent_destroy = true\n"));
  auto store = ws.open_state();
  ws.record(*store, "alpha",
            create_out_of_band(ws.control(), workspace_token("alpha", "alpha token")));
  ProcessResult result = ws.tokend({"plan", "--detailed-exitcode"});
  CHECK(result.exit_code == 1);
  CHECK(result.out.empty());
  CHECK(contains(result.err, "Error: astro_api_token.alpha has lifecycle.prevent_destroy set"));

  ProcessResult json = ws.tokend({"plan", "--json"});
  CHECK(json.exit_code == 1);
  auto document = parse_json(json.out);
  CHECK(document->getValue<bool>("errored"));
  CHECK_FALSE(document->getValue<bool>("applyable"));
  REQUIRE(document->getArray("diagnostics")->size() == 1);
  CHECK(contains(document->getArray("diagnostics")->getObject(0)->getValue<std::string>("summary"),
                 "astro_api_token.alpha has lifecycle.prevent_destroy set"));
}

TEST_CASE("plan --refresh=false makes no API call at all", "[cli][plan]") {
  CliWorkspace ws;
  ws.write_spec("a.toml", workspace_spec("alpha", "alpha token") + workspace_spec("beta", "beta"));
  auto store = ws.open_state();
  auto token = create_out_of_band(ws.control(), workspace_token("alpha", "alpha token"));
  ws.record(*store, "alpha", token);
  REQUIRE(ws.control().delete_token(token.id));  // a refresh would notice this
  ws.control().reset_requests();

  ProcessResult result = ws.tokend({"plan", "--refresh=false", "--detailed-exitcode"});
  INFO(result.err);
  CHECK(result.exit_code == 2);
  CHECK(contains(result.out, "Plan: 1 to add, 0 to change, 0 to destroy, 0 to rotate."));
  CHECK_FALSE(contains(result.out, "has been deleted"));
  CHECK(ws.control().requests().total == 0);

  ProcessResult refreshed = ws.tokend({"plan", "--refresh=true"});
  CHECK(contains(refreshed.out, "# astro_api_token.alpha has been deleted"));
  CHECK(contains(refreshed.out, "Plan: 2 to add, 0 to change, 0 to destroy, 0 to rotate."));
}

TEST_CASE("plan --rotate plans a rotation whatever the age and refuses unknown addresses",
          "[cli][plan]") {
  CliWorkspace ws;
  ws.write_spec("a.toml", workspace_spec("alpha", "alpha token") + workspace_spec("beta", "beta"));
  auto store = ws.open_state();
  ws.record(*store, "alpha",
            create_out_of_band(ws.control(), workspace_token("alpha", "alpha token")));
  ws.record(*store, "beta", create_out_of_band(ws.control(), workspace_token("beta", "beta")));

  ProcessResult none = ws.tokend({"plan", "--detailed-exitcode"});
  CHECK(none.exit_code == 0);
  ProcessResult rotate =
      ws.tokend({"plan", "--rotate", "astro_api_token.beta", "--detailed-exitcode"});
  INFO(rotate.err);
  CHECK(rotate.exit_code == 2);
  CHECK(contains(rotate.out,
                 "  # astro_api_token.beta will be rotated\n"
                 "  # (because its rotation was requested with --rotate)\n"));
  CHECK_FALSE(contains(rotate.out, "astro_api_token.alpha"));
  CHECK(contains(rotate.out, "Plan: 0 to add, 0 to change, 0 to destroy, 1 to rotate."));
  ProcessResult json = ws.tokend({"plan", "--json", "--rotate", "astro_api_token.beta"});
  CHECK(json.exit_code == 0);
  CHECK(contains(json.out, "\"rotate_reason\": \"requested\""));

  ProcessResult unknown =
      ws.tokend({"plan", "--rotate", "astro_api_token.nope", "--rotate", "beta"});
  CHECK(unknown.exit_code == 1);
  CHECK(contains(unknown.err,
                 "Error: --rotate astro_api_token.nope names no token in the configuration\n"));
  CHECK(contains(unknown.err,
                 "Error: invalid --rotate \"beta\": expected an address such as "
                 "astro_api_token.<key>\n"));
  ProcessResult saved =
      ws.tokend({"apply", ws.dir().file("x.plan"), "--rotate", "astro_api_token.beta"});
  CHECK(saved.exit_code == 1);
  CHECK(contains(saved.err, "--target, --rotate and --refresh cannot be used with a saved plan"));
}

TEST_CASE("plan --target plans only the named addresses and refuses unknown ones", "[cli][plan]") {
  CliWorkspace ws;
  ws.write_spec("a.toml", workspace_spec("alpha", "alpha") + workspace_spec("beta", "beta"));
  auto store = ws.open_state();
  ws.record(*store, "gone", create_out_of_band(ws.control(), workspace_token("gone", "gone")));

  ProcessResult one = ws.tokend({"plan", "--target", "astro_api_token.beta"});
  INFO(one.err);
  CHECK(one.exit_code == 0);
  CHECK(contains(one.out, "# astro_api_token.beta will be created"));
  CHECK_FALSE(contains(one.out, "astro_api_token.alpha"));
  CHECK(contains(one.out, "Plan: 1 to add, 0 to change, 0 to destroy, 0 to rotate."));
  CHECK(contains(one.err, "Resource targeting is in effect"));

  ProcessResult state_only = ws.tokend({"plan", "--target", "astro_api_token.gone"});
  CHECK(state_only.exit_code == 0);
  CHECK(contains(state_only.out, "# astro_api_token.gone will be destroyed"));
  CHECK(contains(state_only.out, "Plan: 0 to add, 0 to change, 1 to destroy, 0 to rotate."));

  ProcessResult two =
      ws.tokend({"plan", "--target", "astro_api_token.alpha", "--target", "astro_api_token.beta"});
  CHECK(contains(two.out, "Plan: 2 to add, 0 to change, 0 to destroy, 0 to rotate."));

  ws.control().reset_requests();
  ProcessResult unknown =
      ws.tokend({"plan", "--target", "astro_api_token.nope", "--target", "beta"});
  CHECK(unknown.exit_code == 1);
  CHECK(unknown.out.empty());
  CHECK(contains(
      unknown.err,
      "Error: --target astro_api_token.nope names no token in the configuration or the state\n"));
  CHECK(contains(unknown.err,
                 "Error: invalid --target \"beta\": expected an address such as "
                 "astro_api_token.<key>\n"));
  CHECK(ws.control().requests().total == 0);
}

TEST_CASE("plan --out saves a 0600 plan file that show renders as plan did", "[cli][plan]") {
  CliWorkspace ws;
  ws.write_spec("a.toml", workspace_spec("alpha", "alpha token"));
  const std::string file = ws.dir().file("saved.plan");

  ProcessResult saved = ws.tokend({"plan", "--out", file});
  INFO(saved.err);
  REQUIRE(saved.exit_code == 0);
  CHECK(contains(saved.out, "\nSaved the plan to: " + file +
                                "\n\nTo perform exactly these actions, run "
                                "the following command to apply:\n    astro-tokend -c \"" +
                                ws.config_path() + "\" apply \"" + file + "\"\n"));
  CHECK_FALSE(contains(saved.out, "You didn't use the --out option"));
  struct stat info {};
  REQUIRE(stat(file.c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0600);

  auto loaded = tokend::plan::load_plan(tokend::testing::read_file(file));
  REQUIRE(loaded.ok());
  CHECK(loaded->changes.size() == 1);
  auto store = ws.open_state();
  CHECK(tokend::plan::check_plan_current(*loaded, store->lineage(), store->serial(),
                                         loaded->spec_hash)
            .ok());

  ws.control().reset_requests();
  ProcessResult shown = tokend::testing::run_tokend({"show", file});
  CHECK(shown.exit_code == 0);
  const std::string plan_part = saved.out.substr(0, saved.out.rfind("\n---"));
  CHECK(shown.out == plan_part);
  CHECK(ws.control().requests().total == 0);

  // --json keeps stdout pure JSON; the note goes to stderr.
  const std::string json_file = ws.dir().file("saved-json.plan");
  ProcessResult json = ws.tokend({"plan", "--json", "--out", json_file});
  REQUIRE(json.exit_code == 0);
  CHECK(parse_json(json.out)->getArray("resource_changes")->size() == 1);
  CHECK(contains(json.err, "Saved the plan to: " + json_file));
  ProcessResult shown_json = tokend::testing::run_tokend({"show", "--json", json_file});
  CHECK(shown_json.exit_code == 0);
  CHECK(shown_json.out == json.out);
}

TEST_CASE("show refuses a missing or malformed plan file", "[cli][plan]") {
  tokend::testing::TempDir dir;
  ProcessResult missing = tokend::testing::run_tokend({"show", dir.file("nope.plan")});
  CHECK(missing.exit_code == 1);
  CHECK(missing.out.empty());
  CHECK(contains(missing.err, "Error: cannot read plan file " + dir.file("nope.plan")));

  tokend::testing::write_file(dir.file("bad.plan"), "{\"astro_tokend_plan\": 99}");
  ProcessResult bad = tokend::testing::run_tokend({"show", dir.file("bad.plan")});
  CHECK(bad.exit_code == 1);
  CHECK(bad.out.empty());
  CHECK(contains(bad.err, "Error: " + dir.file("bad.plan") + ": "));

  ProcessResult no_file = tokend::testing::run_tokend({"show"});
  CHECK(no_file.exit_code == 1);
}

TEST_CASE("plan reports an API it cannot use and exits 1", "[cli][plan]") {
  CliWorkspace ws;
  ws.write_spec("a.toml", workspace_spec("alpha", "alpha token"));
  ProcessResult result =
      tokend::testing::run_tokend({"-c", ws.config_path(), "plan", "--detailed-exitcode"}, [&] {
        tokend::testing::RunOptions options;
        options.env[tokend::testing::kBearerEnv] = "not-the-token";
        return options;
      }());
  CHECK(result.exit_code == 1);
  CHECK(result.out.empty());
  CHECK(contains(result.err, "Error: "));
  CHECK(contains(result.err, "401"));
  CHECK_FALSE(contains(result.err, "not-the-token"));
}

TEST_CASE("plan prints the client's retries as sentences - not as log lines", "[cli][plan]") {
  CliWorkspace ws;
  ws.write_spec("a.toml", workspace_spec("alpha", "alpha token"));
  ws.control().set_faults({tokend::testing::fail_next("ListApiTokens", 503, 2)});
  ProcessResult result = ws.tokend({"plan"});
  INFO(result.err);
  CHECK(result.exit_code == 0);
  CHECK(contains(result.out, "Plan: 1 to add"));
  const std::regex retries(
      R"(Retrying ListApiTokens in [0-9.]+m?s after HTTP 503 \(attempt 2 of 5\)\n)"
      R"(Retrying ListApiTokens in [0-9.]+m?s after HTTP 503 \(attempt 3 of 5\)\n)");
  CHECK(std::regex_match(result.err, retries));
  CHECK_FALSE(contains(result.err, "level="));
}

TEST_CASE("every plan-family command answers --help", "[cli][plan]") {
  for (const auto& args : std::vector<std::vector<std::string>>{{"plan", "--help"},
                                                                {"show", "--help"},
                                                                {"state", "--help"},
                                                                {"state", "list", "--help"},
                                                                {"state", "show", "--help"},
                                                                {"state", "rm", "--help"},
                                                                {"import", "--help"},
                                                                {"history", "--help"},
                                                                {"validate", "--help"}}) {
    ProcessResult result = tokend::testing::run_tokend(args);
    INFO(args[0]);
    CHECK(result.exit_code == 0);
    CHECK(contains(result.out, "Usage:"));
  }
  ProcessResult plan_help = tokend::testing::run_tokend({"plan", "--help"});
  for (const char* flag :
       {"--out", "--json", "--detailed-exitcode", "--target", "--rotate", "--refresh"})
    CHECK(contains(plan_help.out, flag));
  CHECK(contains(tokend::testing::run_tokend({"validate", "--help"}).out, "--remote"));
}
