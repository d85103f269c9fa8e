// The daemon against astro-api-sim: edits on disk, invalid edits, drift made
// outside, plan mode, --once, and bad input at startup.
#include <catch2/catch.hpp>

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <cmath>
#include <ctime>

#include <signal.h>

#include <filesystem>

#include "daemon/harness.h"
#include "sim/org.h"

using namespace tokend::testing;
using std::chrono::seconds;

namespace {

std::optional<tokend::astro::ApiToken> token_named(const SimProcess& sim, const std::string& name) {
  for (auto& token : sim.control().tokens())
    if (token.name == name) return token;
  return std::nullopt;
}

uint64_t mutating_requests(const SimProcess& sim) {
  RequestStats stats = sim.control().requests();
  uint64_t n = 0;
  for (const char* op : {"CreateApiToken", "UpdateApiToken", "UpdateApiTokenRoles",
                         "RotateApiToken", "DeleteApiToken"})
    n += stats.count(op);
  return n;
}

}  // namespace

TEST_CASE("the daemon applies a spec edited on disk within 3 s", "[integration][daemon]") {
  SimProcess sim;
  DaemonUnderTest daemon(sim);
  daemon.write_spec("ci.toml", workspace_token_toml("ci", "ci deployer"));
  daemon.start();
  REQUIRE(eventually([&] { return token_named(sim, "ci deployer").has_value(); }, seconds(10)));
  CHECK(eventually([&] { return std::filesystem::exists(daemon.sink_path("ci")); }, seconds(3)));

  // The timer never re-reads the specs: only the file watch can bring the
  // edit in, and it must within 3 s.
  size_t mark = daemon.log().size();
  daemon.write_spec("ci.toml", workspace_token_toml("ci", "ci deployer v2", "edited"));
  CHECK(eventually([&] { return token_named(sim, "ci deployer v2").has_value(); }, seconds(3)));
  CHECK(daemon.wait_for_log("msg=\"reloading configuration\" trigger=config-change", mark));
  CHECK_FALSE(token_named(sim, "ci deployer").has_value());

  // A new file is a new token.
  daemon.write_spec("etl.toml", workspace_token_toml("etl", "etl loader"));
  CHECK(eventually([&] { return token_named(sim, "etl loader").has_value(); }, seconds(3)));
  CHECK(eventually([&] { return std::filesystem::exists(daemon.sink_path("etl")); }, seconds(3)));
}

TEST_CASE("the daemon puts back a change made outside it - without being asked",
          "[integration][daemon]") {
  SimProcess sim;
  DaemonUnderTest daemon(sim);
  daemon.write_spec("ci.toml", workspace_token_toml("ci", "ci deployer", "managed"));
  daemon.start();
  REQUIRE(eventually([&] { return token_named(sim, "ci deployer").has_value(); }, seconds(10)));
  std::string id = token_named(sim, "ci deployer")->id;

  size_t mark = daemon.log().size();
  tokend::sim::TokenPatch patch;
  patch.name = "renamed by hand";
  patch.description = "tampered";
  sim.control().patch_token(id, patch);
  CHECK(eventually(
      [&] {
        auto token = sim.control().token(id);
        return token && token->name == "ci deployer" && token->description == "managed";
      },
      seconds(5)));
  CHECK(daemon.wait_for_log(
      "msg=\"changed outside astro-tokend\" address=astro_api_token.ci drift=changed", mark));
  CHECK(
      daemon.wait_for_log("msg=\"change applied\" address=astro_api_token.ci action=update", mark));
}

TEST_CASE("an invalid edit keeps the previous set in force until a valid edit",
          "[integration][daemon]") {
  SimProcess sim;
  DaemonUnderTest daemon(sim);
  daemon.write_spec("ci.toml", workspace_token_toml("ci", "ci deployer"));
  daemon.start();
  REQUIRE(eventually([&] { return token_named(sim, "ci deployer").has_value(); }, seconds(10)));
  CHECK(daemon.metric("astro_tokend_config_reload_failures_total") == 0);
  CHECK(daemon.metric("astro_tokend_config_last_reload_successful") == 1);
  const double loaded_at =
      daemon.metric("astro_tokend_config_last_reload_success_timestamp_seconds").value_or(0);
  CHECK(std::abs(loaded_at - static_cast<double>(std::time(nullptr))) < 60);

  // A half-valid set: a broken file next to a new valid one. The broken one
  // is written first, so every reload sees it.
  size_t mark = daemon.log().size();
  daemon.write_spec(
      "broken.toml",
      "[api_token.broken]\nname = \"broken\"\ntype = \"NOPE\"\nrole = \"WORKSPACE_OWNER\"\n"
      "roles = []\n");
  daemon.write_spec("fresh.toml", workspace_token_toml("fresh", "fresh token"));
  REQUIRE(daemon.wait_for_log("configuration reload refused", mark));
  std::string log = daemon.log().substr(mark);
  CHECK(log.find("level=error msg=\"invalid configuration\" at=" + daemon.spec_path("broken.toml") +
                 ":3:") != std::string::npos);
  CHECK(daemon.metric("astro_tokend_config_reload_failures_total") == 1);
  CHECK(daemon.metric("astro_tokend_config_last_reload_successful") == 0);
  CHECK(daemon.metric("astro_tokend_config_last_reload_success_timestamp_seconds") == loaded_at);
  auto status = Poco::JSON::Parser()
                    .parse(daemon.get("/status.json").body)
                    .extract<Poco::JSON::Object::Ptr>();
  CHECK_FALSE(status->getObject("daemon")->getValue<bool>("last_reload_ok"));
  CHECK(status->getObject("daemon")->getValue<std::string>("reload_error").find("broken.toml:3:") !=
        std::string::npos);

  // The old set keeps running (cycles go on) and nothing of the new one is applied.
  size_t refused_at = daemon.log().size();
  REQUIRE(daemon.wait_for_log("msg=\"reconcile finished\"", refused_at));
  size_t later = *daemon.wait_for_log("msg=\"reconcile finished\"", refused_at);
  REQUIRE(daemon.wait_for_log("msg=\"reconcile finished\"", later));
  CHECK_FALSE(token_named(sim, "fresh token").has_value());
  CHECK(token_named(sim, "ci deployer").has_value());

  // The next valid edit recovers.
  daemon.write_spec("broken.toml", workspace_token_toml("broken", "was broken"));
  CHECK(
      eventually([&] { return token_named(sim, "fresh token") && token_named(sim, "was broken"); },
                 seconds(3)));
  CHECK(daemon.wait_for_log("msg=\"configuration reloaded\"", refused_at));
  CHECK(daemon.metric("astro_tokend_config_reload_failures_total") == 1);
  CHECK(daemon.metric("astro_tokend_config_last_reload_successful") == 1);
}

TEST_CASE("plan mode reports drift and changes nothing", "[integration][daemon]") {
  SimProcess sim;
  DaemonConfig config;
  config.mode = "plan";
  DaemonUnderTest daemon(sim, config);
  daemon.write_spec("ci.toml", workspace_token_toml("ci", "ci deployer"));
  size_t tokens_before = sim.control().tokens().size();
  daemon.start();
  size_t first = *daemon.wait_for_log("msg=\"reconcile finished\"");
  REQUIRE(daemon.wait_for_log("msg=\"reconcile finished\"", first));
  CHECK(daemon.log().find(
            "msg=\"change pending (plan mode)\" address=astro_api_token.ci action=create") !=
        std::string::npos);
  CHECK(daemon.metric("astro_tokend_drifted_tokens") == 1);
  CHECK(daemon.metric("astro_tokend_reconciles_total{result=\"success\"}") >= 2);
  CHECK(mutating_requests(sim) == 0);
  CHECK(sim.control().tokens().size() == tokens_before);
  CHECK_FALSE(std::filesystem::exists(daemon.sink_path("ci")));
}

TEST_CASE("run --once reconciles once and says whether it worked", "[integration][daemon]") {
  SimProcess sim;
  DaemonUnderTest daemon(sim);
  daemon.write_spec("ci.toml", workspace_token_toml("ci", "ci deployer"));
  auto once = run_tokend({"run", "--once", "-c", daemon.config_path()}, daemon.run_options());
  INFO(once.err);
  CHECK(once.exit_code == 0);
  CHECK(token_named(sim, "ci deployer").has_value());
  CHECK(once.err.find("msg=\"reconcile finished\" result=success trigger=startup added=1") !=
        std::string::npos);

  sim.stop();
  auto down = run_tokend({"run", "--once", "-c", daemon.config_path()}, daemon.run_options());
  CHECK(down.exit_code == 1);
  CHECK(down.err.find("Error: reconcile failure") != std::string::npos);
}

TEST_CASE("bad input at startup is reported and no API call is made", "[integration][daemon]") {
  SimProcess sim;
  DaemonUnderTest daemon(sim);
  daemon.write_spec("bad.toml",
                    "[api_token.bad]\nname = \"bad\"\ntype = \"WORKSPACE\"\nrole = \"NOPE\"\n");
  auto result = run_tokend({"run", "-c", daemon.config_path()}, daemon.run_options());
  CHECK(result.exit_code == 1);
  CHECK(result.err.find(daemon.spec_path("bad.toml") + ":") != std::string::npos);
  CHECK(sim.control().requests().total == 0);
}

TEST_CASE("a second run or an apply on the same state exits 1 naming the holder",
          "[integration][daemon]") {
  SimProcess sim;
  DaemonUnderTest daemon(sim);
  daemon.write_spec("ci.toml", workspace_token_toml("ci", "ci deployer"));
  daemon.start();
  auto second = run_tokend({"run", "-c", daemon.config_path()}, daemon.run_options());
  INFO(second.err);
  CHECK(second.exit_code == 1);
  CHECK(second.err.find("locked by pid " + std::to_string(daemon.pid())) != std::string::npos);
  CHECK(second.err.find("(run)") != std::string::npos);

  auto apply =
      run_tokend({"apply", "--auto-approve", "-c", daemon.config_path()}, daemon.run_options());
  INFO(apply.err);
  CHECK(apply.exit_code == 1);
  CHECK(apply.err.find("locked by pid " + std::to_string(daemon.pid())) != std::string::npos);
  CHECK(daemon.process().running());
}

TEST_CASE("the daemon logs JSON lines when asked", "[integration][daemon]") {
  SimProcess sim;
  DaemonConfig config;
  config.log_format = "json";
  DaemonUnderTest daemon(sim, config);
  daemon.write_spec("ci.toml", workspace_token_toml("ci", "ci deployer"));
  daemon.start();
  REQUIRE(daemon.wait_for_log("\"msg\":\"reconcile finished\""));
  std::string log = daemon.log();
  size_t lines = 0;
  for (size_t at = 0; at < log.size();) {
    size_t end = log.find('\n', at);
    if (end == std::string::npos) break;
    std::string line = log.substr(at, end - at);
    INFO(line);
    CHECK(line.front() == '{');
    CHECK(line.back() == '}');
    CHECK(line.find("\"level\":") != std::string::npos);
    ++lines;
    at = end + 1;
  }
  CHECK(lines >= 3);
  CHECK(log.find(sim.bearer_token()) == std::string::npos);
}

TEST_CASE("a failing token backs off without holding back the others", "[integration][daemon]") {
  SimProcess sim;
  DaemonConfig config;
  config.parallelism = 1;  // changes run in key order: "a" meets the fault, "b" does not
  DaemonUnderTest daemon(sim, config);
  daemon.write_spec("a.toml", workspace_token_toml("a", "token a"));
  daemon.write_spec("b.toml", workspace_token_toml("b", "token b"));
  tokend::sim::FaultRule refuse_once;
  refuse_once.operation = "CreateApiToken";
  refuse_once.status = 400;
  refuse_once.count = 1;
  sim.control().set_faults({refuse_once});
  daemon.start();

  REQUIRE(daemon.wait_for_log("msg=\"change failed\" address=astro_api_token.a action=create"));
  CHECK(eventually([&] { return token_named(sim, "token b").has_value(); }, seconds(5)));
  // The next cycles (every second) leave "a" out while its backoff (about 10 s) runs.
  size_t mark = daemon.log().size();
  auto held = daemon.wait_for_log(
      "msg=\"change held back while its token backs off\" address=astro_api_token.a", mark,
      seconds(5));
  REQUIRE(held);
  auto finished =
      daemon.wait_for_log("msg=\"reconcile finished\" result=success", *held, seconds(5));
  REQUIRE(finished);
  std::string log = daemon.log();
  std::string line = log.substr(*finished, log.find('\n', *finished) - *finished);
  CHECK(line.find(" backing_off=1 ") != std::string::npos);
  CHECK_FALSE(token_named(sim, "token a").has_value());
  CHECK(sim.control().requests().count("CreateApiToken") == 2);
  CHECK(daemon.metric("astro_tokend_errors_total{kind=\"Invalid\"}") == 1);
  CHECK(daemon.metric("astro_tokend_drifted_tokens") == 1);
}

TEST_CASE("refused credentials are logged loudly and the interval is kept",
          "[integration][daemon]") {
  SimProcess sim;
  DaemonUnderTest daemon(sim);
  daemon.write_spec("ci.toml", workspace_token_toml("ci", "ci deployer"));
  RunOptions options = daemon.run_options();
  for (auto& [name, value] : options.env) value = "not-the-bearer-token";
  BackgroundProcess process({TOKEND_BIN, "run", "-c", daemon.config_path()}, options, "",
                            daemon.dir() + "/stderr.log");
  REQUIRE(daemon.wait_for_log(
      "level=error msg=\"the Astro API refused the daemon's credentials; check the API "
      "token and its role\" kind=Unauthorized"));
  size_t first = *daemon.wait_for_log("msg=\"reconcile finished\" result=failure");
  auto second = daemon.wait_for_log("msg=\"reconcile finished\" result=failure", first, seconds(5));
  CHECK(second);
  std::string log = daemon.log();
  CHECK(log.find("next_in=1s") != std::string::npos);
  CHECK(log.find("backing off the whole cycle") == std::string::npos);
  CHECK(log.find("not-the-bearer-token") == std::string::npos);
  process.signal(SIGTERM);
  auto exit = process.wait_for_exit(seconds(5));
  REQUIRE(exit);
  CHECK(exit->exit_code == 0);
}
