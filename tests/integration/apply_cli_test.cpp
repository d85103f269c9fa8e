// The apply command's refusals and approvals against astro-api-sim: the
// mass-delete guard, saved plans (stale and current), the writer lock, bad
// input, and Terraform's approval prompt on a terminal.
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "apply/engine.h"
#include "astro/http_client.h"
#include "integration/apply_fixture.h"
#include "plan/plan_file.h"
#include "spec/loader.h"

using namespace tokend;
using namespace tokend::testing;

namespace {

// Saves the plan astro-tokend would make now, computed in this process
// through the library (as `plan --out` does), to `path`.
void save_current_plan(ApplyWorkspace& ws, const std::string& path) {
  auto desired = spec::load_desired_state(ws.config_path());
  REQUIRE(desired.ok());
  astro::HttpClientOptions options;
  options.api_url = ws.sim().base_url();
  options.organization_id = ws.sim().org_id();
  options.bearer_token = SecretValue(ws.sim().bearer_token());
  auto client = astro::HttpClient::create(std::move(options), null_logger());
  REQUIRE(client.ok());
  auto store = ws.open_state();
  apply::FileSink sink;
  SystemClock clock;
  apply::ProcessHookRunner hooks;
  apply::Dependencies deps{**client, *store, sink, clock, null_logger(), hooks};
  auto prepared = apply::prepare_plan(deps, *desired.value, {});
  REQUIRE(prepared.ok());
  REQUIRE(prepared->recovery.empty());
  write_file(path, plan::save_plan(prepared->plan));
}

int64_t serial_of(const ApplyWorkspace& ws) { return ws.open_state()->serial(); }

// Runs argv on a pseudo-terminal; once "Enter a value: " appears, types
// `answer` and a newline. Returns everything printed and the exit code.
struct TerminalRun {
  std::string output;
  int exit_code = -1;
};
TerminalRun run_on_terminal(const std::vector<std::string>& argv, const RunOptions& options,
                            const std::string& answer) {
  // The inherited environment without NO_COLOR and TERM, then TERM=xterm and options.env.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    if (entry.rfind("NO_COLOR=", 0) == 0 || entry.rfind("TERM=", 0) == 0) continue;
    env_strings.push_back(entry);
  }
  env_strings.push_back("TERM=xterm");
  for (const auto& [name, value] : options.env) env_strings.push_back(name + "=" + value);
  std::vector<char*> cargv, cenv;
  std::vector<std::string> argv_copy = argv;
  for (auto& a : argv_copy) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  for (auto& e : env_strings) cenv.push_back(e.data());
  cenv.push_back(nullptr);

  int master = -1;
  pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
  REQUIRE(pid >= 0);
  if (pid == 0) {
    execve(cargv[0], cargv.data(), cenv.data());
    _exit(127);
  }
  TerminalRun run;
  bool answered = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd fd{master, POLLIN, 0};
    if (poll(&fd, 1, 100) <= 0) continue;
    char buffer[4096];
    ssize_t n = read(master, buffer, sizeof buffer);
    if (n <= 0) break;  // EIO once the child has exited
    run.output.append(buffer, static_cast<size_t>(n));
    if (!answered && run.output.find("Enter a value:") != std::string::npos) {
      const std::string line = answer + "\n";
      REQUIRE(write(master, line.data(), line.size()) == static_cast<ssize_t>(line.size()));
      answered = true;
    }
  }
  close(master);
  int status = 0;
  pid_t reaped = 0;
  while ((reaped = waitpid(pid, &status, WNOHANG)) == 0 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (reaped == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return run;
  }
  if (WIFEXITED(status)) run.exit_code = WEXITSTATUS(status);
  return run;
}

}  // namespace

TEST_CASE("emptying the spec directory destroys nothing and says why", "[integration][apply]") {
  ApplyWorkspace ws;
  ws.copy_example_specs();
  REQUIRE_EXIT(ws.apply(), 0);
  const int64_t serial = serial_of(ws);
  ws.remove_spec("deployment.toml");
  ws.remove_spec("organization.toml");
  ws.remove_spec("workspace.toml");
  ws.control().reset_requests();

  ProcessResult refused = ws.apply();
  REQUIRE_EXIT(refused, 1);
  CHECK_THAT(refused.err, Catch::Contains("Refusing to destroy all 5 managed tokens"));
  CHECK_THAT(refused.err, Catch::Contains("The spec directories may be empty or missing"));
  CHECK_THAT(refused.err, Catch::Contains("--allow-mass-delete"));
  CHECK(writes(ws.control().requests()).empty());
  CHECK(ws.tokens_by_name().size() == 5);
  CHECK(serial_of(ws) == serial);

  ProcessResult allowed = ws.apply({"--allow-mass-delete"});
  REQUIRE_EXIT(allowed, 0);
  CHECK_THAT(
      allowed.out,
      Catch::Contains("Apply complete! Resources: 0 added, 0 changed, 5 destroyed, 0 rotated."));
  CHECK(ws.tokens_by_name().empty());
  CHECK(ws.rows().empty());
}

TEST_CASE("more deletions than max_deletes_per_run are refused", "[integration][apply]") {
  ApplyWorkspaceOptions options;
  options.max_deletes_per_run = 2;
  ApplyWorkspace ws(options);
  ws.copy_example_specs();
  REQUIRE_EXIT(ws.apply(), 0);
  ws.remove_spec("organization.toml");
  ws.rename_spec_key("workspace.toml", "workspace_token", "workspace_token_kept");
  ws.control().reset_requests();
  ProcessResult refused = ws.apply();
  REQUIRE_EXIT(refused, 1);
  CHECK_THAT(
      refused.err,
      Catch::Contains("Refusing to destroy 3 tokens: that is more than max_deletes_per_run (2). "
                      "Nothing was changed. If this is intended, run again with "
                      "--allow-mass-delete."));
  CHECK(writes(ws.control().requests()).empty());
}

TEST_CASE("a saved plan is applied only while it is current", "[integration][apply]") {
  ApplyWorkspace ws;
  ws.copy_example_specs();
  REQUIRE_EXIT(ws.apply(), 0);
  ws.edit_spec("workspace.toml", "name        = \"workspace api token\"",
               "name        = \"renamed\"");
  const std::string plan_file = ws.dir().file("rename.plan");

  SECTION("current: applied as saved, without asking") {
    save_current_plan(ws, plan_file);
    ws.control().reset_requests();
    ProcessResult applied = ws.tokend({"apply", plan_file});
    REQUIRE_EXIT(applied, 0);
    CHECK_THAT(
        applied.out,
        Catch::Contains("Apply complete! Resources: 0 added, 1 changed, 0 destroyed, 0 rotated."));
    CHECK(writes(ws.control().requests()) ==
          std::vector<std::string>{"UpdateApiToken " + ws.row("workspace_token").id});
    // Applying it twice is refused: the state moved on.
    ProcessResult again = ws.tokend({"apply", plan_file});
    REQUIRE_EXIT(again, 1);
    CHECK_THAT(
        again.err,
        Catch::Contains("Saved plan is stale: the state has changed since the plan was created"));
  }
  SECTION("stale: the state changed") {
    save_current_plan(ws, plan_file);
    REQUIRE_EXIT(ws.apply(), 0);
    const int64_t serial = serial_of(ws);
    ws.control().reset_requests();
    ProcessResult stale = ws.tokend({"apply", plan_file});
    REQUIRE_EXIT(stale, 1);
    CHECK_THAT(stale.err,
               Catch::Contains(
                   "Error: Saved plan is stale: the state has changed since the plan was created"));
    CHECK(ws.control().requests().total == 0);
    CHECK(serial_of(ws) == serial);
  }
  SECTION("stale: the specs changed") {
    save_current_plan(ws, plan_file);
    ws.edit_spec("workspace.toml", "name        = \"renamed\"", "name        = \"renamed again\"");
    ws.control().reset_requests();
    ProcessResult stale = ws.tokend({"apply", plan_file});
    REQUIRE_EXIT(stale, 1);
    CHECK_THAT(
        stale.err,
        Catch::Contains(
            "Saved plan is stale: the token specs have changed since the plan was created."));
    CHECK(ws.control().requests().total == 0);
  }
  SECTION("not a plan file") {
    write_file(plan_file, "{\"hello\": 1}\n");
    ProcessResult bad = ws.tokend({"apply", plan_file});
    REQUIRE_EXIT(bad, 1);
    CHECK_THAT(bad.err, Catch::Contains("plan file"));
  }
}

TEST_CASE("a second apply fails fast naming the holder of the lock", "[integration][apply]") {
  ApplyWorkspace ws;
  ws.copy_example_specs();
  // Slow answers keep the first apply busy.
  ws.control().set_faults({add_latency("*", 400)});
  BackgroundProcess first(ws.argv({"apply", "--auto-approve"}), ws.run_options(),
                          ws.dir().file("first.out"), ws.dir().file("first.err"));
  // The lock is taken before the first request.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (ws.control().requests().total == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(ws.control().requests().total > 0);

  const auto started = std::chrono::steady_clock::now();
  ProcessResult second = ws.apply();
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5));
  REQUIRE_EXIT(second, 1);
  CHECK_THAT(second.err, Catch::Contains("state is locked by pid " + std::to_string(first.pid())));
  CHECK_THAT(second.err, Catch::Contains("(apply)"));

  auto finished = first.wait_for_exit(std::chrono::seconds(30));
  REQUIRE(finished);
  CHECK(finished->exit_code == 0);
  ws.keep_output(read_file(ws.dir().file("first.out")) + read_file(ws.dir().file("first.err")));
  CHECK(ws.tokens_by_name().size() == 5);
}

TEST_CASE("bad input changes nothing", "[integration][apply]") {
  ApplyWorkspace ws;
  ws.copy_example_specs();
  REQUIRE_EXIT(ws.apply(), 0);
  const int64_t serial = serial_of(ws);
  ws.control().reset_requests();

  SECTION("an invalid spec") {
    ws.edit_spec("workspace.toml",
                 "type        = \"WORKSPACE\"\nrole        = "
                 "\"WORKSPACE_OWNER\"\n\n[[api_token.workspace_token.roles]]",
                 "type        = \"WORKSPAC\"\nrole        = "
                 "\"WORKSPACE_OWNER\"\n\n[[api_token.workspace_token.roles]]");
    ws.edit_spec("organization.toml", "name        = \"organization api token\"",
                 "name        = \"\"");
    ProcessResult bad = ws.apply();
    REQUIRE_EXIT(bad, 1);
    CHECK_THAT(bad.err, Catch::Contains(ws.spec_dir() + "/workspace.toml:"));
    CHECK_THAT(bad.err, Catch::Contains(ws.spec_dir() + "/organization.toml:"));
    CHECK_THAT(bad.err, Catch::Contains("errors."));
    CHECK(ws.control().requests().total == 0);
  }
  SECTION("a workspace that does not exist") {
    ws.rename_spec_key("workspace.toml", "workspace_token", "workspace_token_2");
    std::string text = ws.read_spec("workspace.toml");
    text +=
        "\n[api_token.elsewhere]\nname = \"elsewhere\"\ntype = \"WORKSPACE\"\nrole = "
        "\"WORKSPACE_OWNER\"\n"
        "roles = [{ role = \"WORKSPACE_OWNER\", entity_id = \"cnosuchworkspace000000000\", "
        "entity_type = "
        "\"WORKSPACE\" }]\n";
    ws.write_spec("workspace.toml", text);
    ProcessResult bad = ws.apply();
    REQUIRE_EXIT(bad, 1);
    CHECK_THAT(bad.err, Catch::Contains("workspace \"cnosuchworkspace000000000\" does not exist"));
    CHECK(writes(ws.control().requests()).empty());
  }
  SECTION("an unknown --target") {
    ProcessResult bad = ws.apply({"--target", "astro_api_token.nosuch"});
    REQUIRE_EXIT(bad, 1);
    CHECK_THAT(bad.err, Catch::Contains("--target astro_api_token.nosuch names no token"));
    CHECK(ws.control().requests().total == 0);
  }
  SECTION("no terminal: the answer is read from stdin, and only \"yes\" approves") {
    ws.edit_spec("workspace.toml", "name        = \"workspace api token\"",
                 "name        = \"renamed\"");
    for (const char* answer : {"", "no\n", "Yes\n", "yes please\n", "\n", "y\n"}) {
      INFO("stdin: \"" << answer << "\"");
      tokend::testing::RunOptions options;
      options.stdin_data = answer;
      ProcessResult refused = ws.tokend({"apply"}, options);
      REQUIRE_EXIT(refused, 1);
      CHECK_THAT(refused.out, Catch::Contains("Only 'yes' will be accepted to approve."));
      CHECK_THAT(refused.out, Catch::EndsWith("Apply cancelled.\n"));
    }
    CHECK(writes(ws.control().requests()).empty());
  }
  CHECK(serial_of(ws) == serial);
  CHECK(ws.tokens_by_name().size() == 5);
}

TEST_CASE("apply without a terminal proceeds on \"yes\" from stdin", "[integration][apply]") {
  ApplyWorkspace ws;
  ws.copy_example_specs();
  tokend::testing::RunOptions options;
  options.stdin_data = "yes\n";
  ProcessResult approved = ws.tokend({"apply"}, options);
  REQUIRE_EXIT(approved, 0);
  CHECK_THAT(approved.out, Catch::Contains("Enter a value: "));
  CHECK_THAT(approved.out, Catch::Contains("Apply complete! Resources: 5 added"));
  CHECK(ws.control().tokens().size() == 5);
}

TEST_CASE("apply asks on a terminal and proceeds only on yes", "[integration][apply]") {
  ApplyWorkspace ws;
  ws.copy_example_specs();
  SECTION("no") {
    TerminalRun run = run_on_terminal(ws.argv({"--no-color", "apply"}), ws.run_options(), "no");
    INFO(run.output);
    CHECK(run.exit_code == 1);
    CHECK_THAT(run.output, Catch::Contains("Do you want to perform these actions?"));
    CHECK_THAT(run.output, Catch::Contains("Only 'yes' will be accepted to approve."));
    CHECK_THAT(run.output, Catch::Contains("Apply cancelled."));
    CHECK(ws.control().tokens().empty());
    CHECK(writes(ws.control().requests()).empty());
  }
  SECTION("yes") {
    TerminalRun run = run_on_terminal(ws.argv({"--no-color", "apply"}), ws.run_options(), "yes");
    INFO(run.output);
    CHECK(run.exit_code == 0);
    CHECK_THAT(run.output, Catch::Contains("Apply complete! Resources: 5 added"));
    CHECK(ws.control().tokens().size() == 5);
    CHECK(run.output.find("\033[") == std::string::npos);  // --no-color
  }
  SECTION("in colour, with the rotation symbol") {
    REQUIRE_EXIT(ws.apply(), 0);
    std::filesystem::remove(ws.sink_for("workspace_token"));
    TerminalRun run = run_on_terminal(ws.argv({"apply"}), ws.run_options(), "yes");
    INFO(run.output);
    CHECK(run.exit_code == 0);
    CHECK_THAT(run.output, Catch::Contains("\033["));
    CHECK_THAT(run.output, Catch::Contains("↻"));
  }
}

TEST_CASE("apply records the run in history", "[integration][apply]") {
  ApplyWorkspace ws;
  ws.copy_example_specs();
  REQUIRE_EXIT(ws.apply(), 0);
  auto runs = ws.open_state()->runs(0);
  REQUIRE(runs.ok());
  REQUIRE(runs->size() == 1);
  const state::RunRecord& run = runs->front();
  CHECK(run.trigger == "cli");
  CHECK(run.command == "apply");
  CHECK(run.result == state::RunResult::Ok);
  CHECK(run.to_add == 5);
  CHECK(run.failed == 0);
  // list, the workspace and deployment lookups, 5 creates, 3 role updates
  CHECK(run.api_calls == static_cast<int>(ws.control().requests().total));
  CHECK(run.actions.size() == 5);
  CHECK(run.finished_at);
}

TEST_CASE("history means the same for apply and for a daemon cycle", "[integration][apply]") {
  ApplyWorkspace ws;
  ws.copy_example_specs();
  ws.control().reset_requests();
  REQUIRE_EXIT(ws.apply(), 0);
  const int apply_requests = static_cast<int>(ws.control().requests().total);

  // One out-of-band rename for the daemon to put back.
  auto before = ws.open_state()->resources();
  REQUIRE(before.ok());
  REQUIRE_FALSE(before->empty());
  sim::TokenPatch rename;
  rename.name = "renamed by hand";
  ws.control().patch_token(before->front().id, rename);
  ws.control().reset_requests();
  REQUIRE_EXIT(ws.tokend({"run", "--once"}), 0);
  const int cycle_requests = static_cast<int>(ws.control().requests().total);

  // And a cycle with nothing to do.
  ws.control().reset_requests();
  REQUIRE_EXIT(ws.tokend({"run", "--once"}), 0);
  const int idle_requests = static_cast<int>(ws.control().requests().total);

  auto runs = ws.open_state()->runs(0);
  REQUIRE(runs.ok());
  REQUIRE(runs->size() == 3);
  const state::RunRecord& idle = (*runs)[0];
  const state::RunRecord& cycle = (*runs)[1];
  const state::RunRecord& apply = (*runs)[2];
  CHECK(apply.command == "apply");
  CHECK(apply.trigger == "cli");
  CHECK(cycle.command == "run");
  CHECK(cycle.trigger == "startup");
  // api_calls: every request of the run, its refresh included, for both.
  CHECK(apply.api_calls == apply_requests);
  CHECK(cycle.api_calls == cycle_requests);
  CHECK(idle.api_calls == idle_requests);
  CHECK(apply.result == state::RunResult::Ok);
  CHECK(cycle.result == state::RunResult::Ok);
  CHECK(cycle.to_change == 1);
  REQUIRE(cycle.actions.size() == 1);
  CHECK(cycle.actions[0].action == "update");
  CHECK(idle.result == state::RunResult::NoOp);
  for (const state::RunRecord* run : {&apply, &cycle, &idle}) {
    CHECK(run->finished_at);
    CHECK(run->duration_seconds >= 0);
  }

  // The history command shows them in the same columns.
  ProcessResult shown = ws.tokend({"history", "--no-color"});
  REQUIRE(shown.exit_code == 0);
  CHECK_THAT(shown.out, Catch::Contains("run") && Catch::Contains("apply") &&
                            Catch::Contains("no-op") && Catch::Contains("startup"));
}
