// `astro-tokend history [--limit N] [--json]` through the real binary, over
// runs recorded directly in the state.
#include <catch2/catch.hpp>

#include <Poco/JSON/Parser.h>

#include <filesystem>
#include <string>

#include "cli/fixture.h"
#include "state/store.h"

using tokend::testing::CliWorkspace;
using tokend::testing::ProcessResult;

namespace {

const std::string kGoldenDir = std::string(TOKEND_SOURCE_DIR) + "/tests/data/cli";

// Three finished runs: an apply that created two tokens (one failed), a
// timer run with nothing to do, and a refused run.
void record_runs(tokend::state::StateStore& store) {
  using tokend::state::ActionRecord;
  using tokend::state::RunRecord;
  namespace state = tokend::state;
  auto add = [&](RunRecord run, const std::vector<ActionRecord>& actions) {
    auto id = store.begin_run(run);
    REQUIRE(id.ok());
    for (const ActionRecord& action : actions) REQUIRE(store.record_action(*id, action).ok());
    run.id = *id;
    REQUIRE(store.finish_run(run).ok());
  };
  RunRecord apply;
  apply.trigger = "cli";
  apply.command = "apply";
  apply.started_at = *tokend::parse_rfc3339("2026-03-01T12:00:00Z");
  apply.finished_at = *tokend::parse_rfc3339("2026-03-01T12:00:02Z");
  apply.to_add = 2;
  apply.failed = 1;
  apply.api_calls = 5;
  apply.duration_seconds = 1.25;
  apply.result = state::RunResult::Failed;
  apply.message = "1 action failed";
  add(apply,
      {ActionRecord{"astro_api_token.a", "create", true, "", 0.4},
       ActionRecord{"astro_api_token.b", "create", false, "workspace not found (HTTP 404)", 0.2}});

  RunRecord timer;
  timer.trigger = "timer";
  timer.command = "run";
  timer.started_at = *tokend::parse_rfc3339("2026-03-01T12:05:00Z");
  timer.finished_at = *tokend::parse_rfc3339("2026-03-01T12:05:00Z");
  timer.api_calls = 1;
  timer.duration_seconds = 0.08;
  timer.result = state::RunResult::NoOp;
  add(timer, {});

  RunRecord refused;
  refused.trigger = "config-change";
  refused.command = "run";
  refused.started_at = *tokend::parse_rfc3339("2026-03-01T12:10:00Z");
  refused.finished_at = *tokend::parse_rfc3339("2026-03-01T12:10:01Z");
  refused.to_destroy = 7;
  refused.api_calls = 1;
  refused.duration_seconds = 0.5;
  refused.result = state::RunResult::Refused;
  refused.message = "would delete 7 tokens";
  add(refused, {});
}

}  // namespace

TEST_CASE("history lists runs newest first with their figures", "[cli][history]") {
  CliWorkspace ws;
  record_runs(*ws.open_state());
  ProcessResult result = ws.tokend({"history"});
  INFO(result.err);
  CHECK(result.exit_code == 0);
  CHECK(result.out == tokend::testing::read_file(kGoldenDir + "/history.txt"));

  ProcessResult limited = ws.tokend({"history", "--limit", "1"});
  CHECK(limited.exit_code == 0);
  // The header and the newest run only.
  CHECK(limited.out.find("config-change") != std::string::npos);
  CHECK(limited.out.find("timer") == std::string::npos);
  CHECK(limited.out.find("apply") == std::string::npos);
}

TEST_CASE("history --json carries every run and its actions", "[cli][history]") {
  CliWorkspace ws;
  record_runs(*ws.open_state());
  ProcessResult result = ws.tokend({"history", "--json"});
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  Poco::JSON::Parser parser;
  auto root = parser.parse(result.out).extract<Poco::JSON::Object::Ptr>();
  auto runs = root->getArray("runs");
  REQUIRE(runs->size() == 3);
  CHECK(runs->getObject(0)->getValue<std::string>("result") == "refused");
  CHECK(runs->getObject(0)->getValue<std::string>("message") == "would delete 7 tokens");
  CHECK(runs->getObject(0)->getValue<int>("to_destroy") == 7);
  CHECK(runs->getObject(1)->getValue<std::string>("trigger") == "timer");
  auto apply = runs->getObject(2);
  CHECK(apply->getValue<std::string>("command") == "apply");
  CHECK(apply->getValue<std::string>("started_at") == "2026-03-01T12:00:00Z");
  CHECK(apply->getValue<std::string>("finished_at") == "2026-03-01T12:00:02Z");
  CHECK(apply->getValue<int>("api_calls") == 5);
  CHECK(apply->getValue<int>("failed") == 1);
  CHECK(apply->getValue<double>("duration_seconds") == Approx(1.25));
  auto actions = apply->getArray("actions");
  REQUIRE(actions->size() == 2);
  CHECK(actions->getObject(0)->getValue<std::string>("address") == "astro_api_token.a");
  CHECK(actions->getObject(0)->getValue<bool>("ok"));
  CHECK_FALSE(actions->getObject(1)->getValue<bool>("ok"));
  CHECK(actions->getObject(1)->getValue<std::string>("message") ==
        "workspace not found (HTTP 404)");
  CHECK(runs->getObject(1)->getArray("actions")->size() == 0);

  ProcessResult limited = ws.tokend({"history", "--json", "--limit", "2"});
  CHECK(parser.parse(limited.out).extract<Poco::JSON::Object::Ptr>()->getArray("runs")->size() ==
        2);
}

TEST_CASE("history without a state says so and creates nothing", "[cli][history]") {
  CliWorkspace ws;
  ProcessResult result = ws.tokend({"history"});
  CHECK(result.exit_code == 0);
  CHECK(result.out == "No runs recorded yet.\n");
  ProcessResult json = ws.tokend({"history", "--json"});
  CHECK(json.out == "{\n  \"runs\": []\n}\n");
  CHECK_FALSE(std::filesystem::exists(ws.state_path()));

  ProcessResult bad = ws.tokend({"history", "--limit", "0"});
  CHECK(bad.exit_code == 1);
  CHECK(bad.err == "Error: --limit must be at least 1, got 0\n");
}
