// The daemon as a service: sd_notify messages on a test-owned NOTIFY_SOCKET,
// SIGTERM during a slow API call, /metrics and /readyz across cycles and an
// API outage.
#include <catch2/catch.hpp>

#include <signal.h>

#include <cmath>
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
  // Well inside the half second a change in flight is given to be answered
  // after SIGTERM (RequestWatch::kWriteGraceOnStop), also under sanitizers.
  slow.latency_ms = 150;
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

// Prometheus's own linter (promtool, from Debian's prometheus package,
// installed by scripts/setup.sh) accepts a real scrape: every family has help
// and a type, counters end in _total, units are base units. The scrape
// carries every family the daemon declares, and the process_* samples.
TEST_CASE("promtool check metrics accepts a scrape of the running daemon",
          "[integration][daemon][metrics]") {
  SimProcess sim;
  DaemonUnderTest daemon(sim);
  daemon.write_spec("ci.toml",
                    workspace_token_toml("ci", "ci deployer") + "expiry_period_in_days = 30\n");
  daemon.start();
  REQUIRE(
      eventually([&] { return daemon.metric("astro_tokend_managed_tokens") == 1.0; }, seconds(10)));
  auto page = daemon.get("/metrics");
  REQUIRE(page.status == 200);

  RunOptions options;
  options.stdin_data = page.body;
  ProcessResult checked = run_process({"/usr/bin/promtool", "check", "metrics"}, options);
  INFO(page.body);
  INFO(checked.out << checked.err);
  CHECK(checked.exit_code == 0);
  CHECK(checked.err.empty());

  for (const char* family : {"astro_tokend_reconciles_total",
                             "astro_tokend_errors_total",
                             "astro_tokend_reconcile_duration_seconds",
                             "astro_tokend_reconcile_interval_seconds",
                             "astro_tokend_managed_tokens",
                             "astro_tokend_drifted_tokens",
                             "astro_tokend_nearest_expiry_seconds",
                             "astro_tokend_token_expiry_timestamp_seconds",
                             "astro_tokend_token_last_rotation_timestamp_seconds",
                             "astro_tokend_token_rotation_due_timestamp_seconds",
                             "astro_tokend_delivery_hook_failures_total",
                             "astro_tokend_api_requests_total",
                             "astro_tokend_api_request_duration_seconds",
                             "astro_tokend_actions_total",
                             "astro_tokend_last_successful_reconcile_timestamp_seconds",
                             "astro_tokend_config_reload_failures_total",
                             "astro_tokend_config_last_reload_successful",
                             "astro_tokend_config_last_reload_success_timestamp_seconds",
                             "astro_tokend_leader",
                             "astro_tokend_build_info",
                             "process_cpu_seconds_total",
                             "process_resident_memory_bytes",
                             "process_virtual_memory_bytes",
                             "process_open_fds",
                             "process_max_fds",
                             "process_start_time_seconds"}) {
    INFO(family);
    CHECK(page.body.find("# HELP " + std::string(family) + " ") != std::string::npos);
    CHECK(page.body.find("# TYPE " + std::string(family) + " ") != std::string::npos);
  }
  // Counters start at 0 before their first event.
  CHECK(daemon.metric("astro_tokend_errors_total{kind=\"Unavailable\"}") == 0);
  CHECK(daemon.metric("astro_tokend_actions_total{action=\"delete\",result=\"failed\"}") == 0);
  CHECK(daemon.metric("astro_tokend_config_reload_failures_total") == 0);
  CHECK(daemon.metric("astro_tokend_leader") == 1);
  // Wired by the daemon: the interval, the per-token gauges, the API latency.
  CHECK(daemon.metric("astro_tokend_reconcile_interval_seconds") == 1);
  const double expiry =
      daemon.metric("astro_tokend_token_expiry_timestamp_seconds{address=\"astro_api_token.ci\"}")
          .value_or(0);
  CHECK(std::abs(expiry - (static_cast<double>(std::time(nullptr)) + 30 * 86400)) < 120);
  CHECK(daemon.metric(
            "astro_tokend_token_last_rotation_timestamp_seconds{address=\"astro_api_token.ci\"}") <=
        static_cast<double>(std::time(nullptr)));
  CHECK(daemon.metric(
            "astro_tokend_token_rotation_due_timestamp_seconds{address=\"astro_api_token.ci\"}") ==
        expiry);  // no rotate_before_expiry_days: it rotates at expiry
  CHECK(daemon.metric(
            "astro_tokend_delivery_hook_failures_total{address=\"astro_api_token.ci\"}") == 0);
  CHECK(
      daemon.metric("astro_tokend_api_request_duration_seconds_count{operation=\"ListApiTokens\"}")
          .value_or(0) >= 1);
  // The process, as /proc/self tells at the scrape.
  const double now = static_cast<double>(std::time(nullptr));
  const double started = daemon.metric("process_start_time_seconds").value_or(0);
  CHECK(started > now - 600);
  CHECK(started <= now + 1);
  CHECK(daemon.metric("process_resident_memory_bytes").value_or(0) > 1e6);
  CHECK(daemon.metric("process_virtual_memory_bytes").value_or(0) >=
        daemon.metric("process_resident_memory_bytes").value_or(0));
  CHECK(daemon.metric("process_open_fds").value_or(0) >= 3);
  CHECK(daemon.metric("process_max_fds").value_or(0) >= daemon.metric("process_open_fds"));
  CHECK(daemon.metric("process_cpu_seconds_total").value_or(-1) >= 0);
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
