// The daemon as a service: sd_notify messages on a test-owned NOTIFY_SOCKET,
// SIGTERM during a slow API call, /metrics and /readyz across cycles and an
// API outage.
#include <catch2/catch.hpp>

#include <signal.h>

#include <ctime>
#include <filesystem>

#include "daemon/harness.h"
#include "state/store.h"

using namespace tokend::testing;
using std::chrono::milliseconds;
using std::chrono::seconds;

TEST_CASE("the daemon sends READY=1 STATUS= RELOADING=1 and STOPPING=1 to NOTIFY_SOCKET",
          "[integration][daemon]") {
  SimProcess sim;
  DaemonUnderTest daemon(sim);
  daemon.write_spec("ci.toml", workspace_token_toml("ci", "ci deployer"));
  NotifyListener notify(daemon.dir() + "/notify.sock");
  daemon.start(notify.path());

  auto ready = notify.wait_for("READY=1", 0, seconds(10));
  REQUIRE(ready);
  auto status = notify.wait_for("STATUS=Last reconcile ", *ready, seconds(10));
  REQUIRE(status);
  CHECK(notify.messages()[*status].find(": 1 added, 0 changed, 0 destroyed, 0 rotated; next in ") !=
        std::string::npos);

  daemon.process().signal(SIGHUP);
  auto reloading = notify.wait_for("RELOADING=1", *status + 1, seconds(5));
  REQUIRE(reloading);
  CHECK(notify.messages()[*reloading].find("MONOTONIC_USEC=") != std::string::npos);
  CHECK(notify.wait_for("READY=1", *reloading + 1, seconds(5)));
  CHECK(daemon.wait_for_log("msg=\"reloading configuration\" trigger=sighup"));

  // A refused reload says so in STATUS=.
  size_t before_edit = notify.messages().size();
  daemon.write_spec("broken.toml", "[api_token.broken]\nname = 1\n");
  auto refused = notify.wait_for("STATUS=Reload failed (", before_edit, seconds(5));
  REQUIRE(refused);
  CHECK(notify.messages()[*refused].find("still running the configuration loaded at ") !=
        std::string::npos);

  daemon.process().signal(SIGTERM);
  CHECK(notify.wait_for("STOPPING=1", *refused + 1, seconds(5)));
  auto exit = daemon.process().wait_for_exit(seconds(5));
  REQUIRE(exit);
  CHECK(exit->exit_code == 0);
}

TEST_CASE("the daemon pings the watchdog at half its period while alive", "[integration][daemon]") {
  SimProcess sim;
  DaemonUnderTest daemon(sim);
  daemon.write_spec("ci.toml", workspace_token_toml("ci", "ci deployer"));
  NotifyListener notify(daemon.dir() + "/notify.sock");
  RunOptions options = daemon.run_options();
  options.env["NOTIFY_SOCKET"] = notify.path();
  options.env["WATCHDOG_USEC"] = "600000";  // no WATCHDOG_PID: meant for the process that reads it
  BackgroundProcess process({TOKEND_BIN, "run", "-c", daemon.config_path()}, options, "",
                            daemon.dir() + "/watchdog.log");
  auto first = notify.wait_for("WATCHDOG=1", 0, seconds(10));
  REQUIRE(first);
  auto second = notify.wait_for("WATCHDOG=1", *first + 1, seconds(2));
  REQUIRE(second);
  auto third = notify.wait_for("WATCHDOG=1", *second + 1, seconds(2));
  CHECK(third);
  process.signal(SIGTERM);
  auto exit = process.wait_for_exit(seconds(5));
  REQUIRE(exit);
  CHECK(exit->exit_code == 0);
}

TEST_CASE("SIGTERM during a slow create lets it finish and commit - then exits 0",
          "[integration][daemon]") {
  SimProcess sim;
  DaemonConfig config;
  config.parallelism = 1;
  DaemonUnderTest daemon(sim, config);
  for (const char* key : {"a", "b", "c"})
    daemon.write_spec(std::string(key) + ".toml",
                      workspace_token_toml(key, std::string("slow ") + key));
  tokend::sim::FaultRule slow;
  slow.operation = "*";
  slow.latency_ms = 500;
  sim.control().set_faults({slow});
  daemon.start();

  // The first create is in flight once its start is logged.
  REQUIRE(daemon.wait_for_log("msg=\"change started\" address=astro_api_token.", 0, seconds(15)));
  daemon.process().signal(SIGTERM);
  auto signalled = std::chrono::steady_clock::now();
  auto exit = daemon.process().wait_for_exit(seconds(5));
  REQUIRE(exit);
  CHECK(exit->exit_code == 0);
  CHECK(std::chrono::steady_clock::now() - signalled < seconds(5));
  sim.control().clear_faults();

  // What the simulator holds and what state recorded agree, and the create
  // that was in flight is among them.
  auto store = tokend::state::StateStore::open(daemon.state_path());
  REQUIRE(store.ok());
  auto rows = (*store)->resources();
  REQUIRE(rows.ok());
  std::vector<tokend::astro::ApiToken> ours;
  for (auto& token : sim.control().tokens())
    if (token.name.rfind("slow ", 0) == 0) ours.push_back(token);
  INFO(daemon.log());
  REQUIRE(rows->size() >= 1);
  CHECK(rows->size() == ours.size());
  CHECK(rows->size() < 3);  // SIGTERM stopped the changes that had not started
  for (const auto& row : rows.value()) {
    bool found = false;
    for (const auto& token : ours) found = found || token.id == row.id;
    CHECK(found);
    CHECK(std::filesystem::exists(daemon.sink_path(row.key)));
  }
  CHECK(daemon.log().find("msg=stopping signal=SIGTERM") != std::string::npos);
}

TEST_CASE("/metrics parses as Prometheus text and its counters move across cycles",
          "[integration][daemon]") {
  SimProcess sim;
  DaemonUnderTest daemon(sim);
  daemon.write_spec("ci.toml",
                    workspace_token_toml("ci", "ci deployer") + "expiry_period_in_days = 30\n");
  daemon.start();
  // The first cycle has finished once it is counted (the gauges move within it).
  REQUIRE(eventually(
      [&] {
        return daemon.metric("astro_tokend_managed_tokens") == 1.0 &&
               daemon.metric("astro_tokend_reconciles_total{result=\"success\"}") >= 1.0;
      },
      seconds(10)));

  double successes =
      daemon.metric("astro_tokend_reconciles_total{result=\"success\"}").value_or(-1);
  double lists =
      daemon.metric("astro_tokend_api_requests_total{operation=\"ListApiTokens\",code=\"200\"}")
          .value_or(-1);
  CHECK(successes >= 1);
  CHECK(lists >= 1);
  CHECK(daemon.metric(
            "astro_tokend_api_requests_total{operation=\"CreateApiToken\",code=\"200\"}") == 1);
  CHECK(daemon.metric("astro_tokend_actions_total{action=\"create\",result=\"ok\"}") == 1);
  CHECK(eventually(
      [&] {
        return daemon.metric("astro_tokend_reconciles_total{result=\"success\"}") >= successes + 2;
      },
      seconds(5)));
  CHECK(
      daemon.metric("astro_tokend_api_requests_total{operation=\"ListApiTokens\",code=\"200\"}") >=
      lists + 2);
  CHECK(daemon.metric("astro_tokend_reconciles_total{result=\"failure\"}") == 0);
  CHECK(daemon.metric("astro_tokend_drifted_tokens") == 0);
  CHECK(daemon.metric("astro_tokend_build_info{version=\"0.1.0\"}") == 1);
  CHECK(daemon.metric("astro_tokend_reconcile_duration_seconds_count") >= successes + 2);
  double expiry = daemon.metric("astro_tokend_nearest_expiry_seconds").value_or(0);
  CHECK(expiry > 30 * 86400 - 120);
  CHECK(expiry <= 30 * 86400);
  double last =
      daemon.metric("astro_tokend_last_successful_reconcile_timestamp_seconds").value_or(0);
  CHECK(std::abs(last - static_cast<double>(std::time(nullptr))) < 60);

  // The whole page, read by the Prometheus project's own parser.
  auto page = daemon.get("/metrics");
  REQUIRE(page.status == 200);
  CHECK(page.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
  write_file(daemon.dir() + "/metrics.txt", page.body);
  write_file(daemon.dir() + "/parse.py",
             "import sys\nfrom prometheus_client.parser import text_string_to_metric_families\n"
             "for f in text_string_to_metric_families(open(sys.argv[1]).read()):\n"
             "    print(f.type, f.name, len(f.samples))\n");
  auto parsed =
      run_process({"/usr/bin/python3", daemon.dir() + "/parse.py", daemon.dir() + "/metrics.txt"});
  INFO(parsed.err);
  CHECK(parsed.exit_code == 0);
  CHECK(parsed.out.find("counter astro_tokend_reconciles ") != std::string::npos);
  CHECK(parsed.out.find("histogram astro_tokend_reconcile_duration_seconds ") != std::string::npos);
  CHECK(parsed.out.find("gauge astro_tokend_nearest_expiry_seconds 1\n") != std::string::npos);
  CHECK(parsed.out.find("counter astro_tokend_api_requests ") != std::string::npos);
  CHECK(daemon.get("/healthz").status == 200);
}

// The simulator goes down and comes back on the same port (a second
// astro-api-sim bound to the first one's port, with the same --data file),
// so the daemon recovers by itself with its config untouched, as it would
// after a real outage.
TEST_CASE("/readyz turns unready while the API is down and ready after it returns",
          "[integration][daemon]") {
  TempDir sim_dir;
  SimOptions sim_options;
  sim_options.bearer_token = "integration-bearer-token";
  sim_options.data_file = sim_dir.file("sim.json");
  SimProcess sim(sim_options);
  DaemonUnderTest daemon(sim);
  daemon.write_spec("ci.toml", workspace_token_toml("ci", "ci deployer"));
  daemon.start();
  REQUIRE(eventually([&] { return daemon.get("/readyz").status == 200; }, seconds(10)));

  const int port = sim.port();
  REQUIRE(sim.stop() == 0);
  CHECK(eventually([&] { return daemon.get("/readyz").status == 503; }, seconds(10)));
  CHECK(daemon.get("/readyz").body.find("more than two intervals") != std::string::npos);
  CHECK(daemon.get("/healthz").status == 200);
  CHECK(
      daemon.wait_for_log("msg=\"API unreachable; backing off the whole cycle\"", 0, seconds(15)));
  CHECK(daemon.metric("astro_tokend_reconciles_total{result=\"failure\"}") >= 1);
  CHECK(daemon.metric("astro_tokend_errors_total{kind=\"Unavailable\"}") >= 1);

  RunOptions sim_run;
  sim_run.env["TOKEND_TEST_SIM_TOKEN"] = sim_options.bearer_token;
  BackgroundProcess again(
      {TOKEND_SIM_BIN, "--listen", "127.0.0.1:" + std::to_string(port), "--port-file",
       sim_dir.file("port"), "--org", kSimOrgId, "--bearer-token-env", "TOKEND_TEST_SIM_TOKEN",
       "--data", sim_options.data_file},
      sim_run, "", sim_dir.file("sim-again.log"));
  REQUIRE(wait_for_file(sim_dir.file("port"), seconds(10)));
  CHECK(eventually([&] { return daemon.get("/readyz").status == 200; }, seconds(20)));
  CHECK(daemon.get("/readyz").body == "ok\n");
}
