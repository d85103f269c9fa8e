#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "daemon/metrics.h"
#include "daemon/process_metrics.h"
#include "support/process.h"

using namespace tokend::daemon;

TEST_CASE("metrics render the exposition format exactly", "[daemon][metrics]") {
  MetricsRegistry registry;
  registry.declare("demo_requests_total", "Requests by code.", MetricType::Counter);
  registry.declare("demo_temperature_celsius", "A gauge.", MetricType::Gauge);
  registry.declare("demo_duration_seconds", "A histogram.", MetricType::Histogram, {0.1, 1, 10});
  registry.declare("demo_empty", "Declared, never set.", MetricType::Gauge);

  registry.increment("demo_requests_total", {{"code", "500"}});
  registry.increment("demo_requests_total", {{"code", "200"}}, 2);
  registry.increment("demo_requests_total", {{"code", "200"}});
  registry.set("demo_temperature_celsius", -3.25);
  registry.observe("demo_duration_seconds", 0.05);
  registry.observe("demo_duration_seconds", 0.1);
  registry.observe("demo_duration_seconds", 5);
  registry.observe("demo_duration_seconds", 50);

  CHECK(registry.render() ==
        "# HELP demo_requests_total Requests by code.\n"
        "# TYPE demo_requests_total counter\n"
        "demo_requests_total{code=\"200\"} 3\n"
        "demo_requests_total{code=\"500\"} 1\n"
        "# HELP demo_temperature_celsius A gauge.\n"
        "# TYPE demo_temperature_celsius gauge\n"
        "demo_temperature_celsius -3.25\n"
        "# HELP demo_duration_seconds A histogram.\n"
        "# TYPE demo_duration_seconds histogram\n"
        "demo_duration_seconds_bucket{le=\"0.1\"} 2\n"
        "demo_duration_seconds_bucket{le=\"1\"} 2\n"
        "demo_duration_seconds_bucket{le=\"10\"} 3\n"
        "demo_duration_seconds_bucket{le=\"+Inf\"} 4\n"
        "demo_duration_seconds_sum 55.15\n"
        "demo_duration_seconds_count 4\n"
        "# HELP demo_empty Declared, never set.\n"
        "# TYPE demo_empty gauge\n");
}

TEST_CASE("metrics escape label values and help text", "[daemon][metrics]") {
  MetricsRegistry registry;
  registry.declare("demo_info", "Help with a \\ backslash\nand a newline.", MetricType::Gauge);
  registry.set("demo_info", {{"path", "C:\\dir"}, {"quote", "say \"hi\""}, {"text", "two\nlines"}},
               1);
  CHECK(registry.render() ==
        "# HELP demo_info Help with a \\\\ backslash\\nand a newline.\n"
        "# TYPE demo_info gauge\n"
        "demo_info{path=\"C:\\\\dir\",quote=\"say \\\"hi\\\"\",text=\"two\\nlines\"} 1\n");
  CHECK(escape_label_value("plain") == "plain");
  CHECK(escape_label_value("a\\\"\n") == "a\\\\\\\"\\n");
}

TEST_CASE("metric values use the exposition spellings", "[daemon][metrics]") {
  CHECK(format_metric_value(0) == "0");
  CHECK(format_metric_value(-0.0) == "0");
  CHECK(format_metric_value(42) == "42");
  CHECK(format_metric_value(0.1) == "0.1");
  CHECK(format_metric_value(1764331203) == "1764331203");
  CHECK(format_metric_value(1.5e-7) == "1.5e-07");
  CHECK(format_metric_value(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(format_metric_value(-std::numeric_limits<double>::infinity()) == "-Inf");
  CHECK(format_metric_value(std::numeric_limits<double>::quiet_NaN()) == "NaN");
}

TEST_CASE("metrics ignore wrong operations and can remove a sample", "[daemon][metrics]") {
  MetricsRegistry registry;
  registry.declare("demo_total", "c", MetricType::Counter);
  registry.declare("demo_gauge", "g", MetricType::Gauge);
  registry.increment("demo_total", {}, -1);  // counters never go down
  registry.set("demo_total", {}, 7);         // not a gauge
  registry.increment("undeclared_total");
  registry.declare("demo_total", "declared again", MetricType::Gauge);  // ignored
  CHECK(std::isnan(registry.value("demo_total")));
  registry.increment("demo_total");
  CHECK(registry.value("demo_total") == 1);

  registry.set("demo_gauge", 5);
  CHECK(registry.value("demo_gauge") == 5);
  registry.remove("demo_gauge");
  CHECK(std::isnan(registry.value("demo_gauge")));
  CHECK(registry.render() ==
        "# HELP demo_total c\n# TYPE demo_total counter\ndemo_total 1\n"
        "# HELP demo_gauge g\n# TYPE demo_gauge gauge\n");
}

TEST_CASE("add_missing creates zero samples and keeps existing ones, in any order",
          "[daemon][metrics]") {
  MetricsRegistry registry;
  registry.declare("hook_failures_total", "c", MetricType::Counter);
  registry.declare("demo_gauge", "g", MetricType::Gauge);
  registry.increment("hook_failures_total", {{"address", "b"}}, 2);
  registry.add_missing("hook_failures_total",
                       {{{"address", "a"}}, {{"address", "b"}}, {{"address", "d"}}});
  registry.add_missing("hook_failures_total", {{{"address", "c"}}, {{"address", "a"}}});
  registry.add_missing("demo_gauge", {{{"address", "a"}}});  // not a counter: ignored
  CHECK(registry.value("hook_failures_total", {{"address", "a"}}) == 0);
  CHECK(registry.value("hook_failures_total", {{"address", "b"}}) == 2);
  CHECK(registry.render() ==
        "# HELP hook_failures_total c\n# TYPE hook_failures_total counter\n"
        "hook_failures_total{address=\"a\"} 0\nhook_failures_total{address=\"b\"} 2\n"
        "hook_failures_total{address=\"c\"} 0\nhook_failures_total{address=\"d\"} 0\n"
        "# HELP demo_gauge g\n# TYPE demo_gauge gauge\n");
}

TEST_CASE("the daemon's metrics start with every result at zero", "[daemon][metrics]") {
  MetricsRegistry registry;
  declare_daemon_metrics(registry, "1.2.3");
  for (const char* result : {"success", "failure", "refused"})
    CHECK(registry.value(metric::kReconciles, {{"result", result}}) == 0);
  CHECK(registry.value(metric::kReloadFailures) == 0);
  CHECK(registry.value(metric::kBuildInfo, {{"version", "1.2.3"}}) == 1);
  CHECK(std::isnan(registry.value(metric::kNearestExpiry)));
  std::string text = registry.render();
  CHECK(text.find("# TYPE astro_tokend_reconcile_duration_seconds histogram\n") !=
        std::string::npos);
  CHECK(text.find("astro_tokend_build_info{version=\"1.2.3\"} 1\n") != std::string::npos);
}

// An independent reader: the Prometheus project's own Python parser
// (Debian's python3-prometheus-client, installed by scripts/setup.sh) must
// accept the daemon's full exposition, with escaped labels, and read back
// the values written.
TEST_CASE("the daemon's exposition parses with the Prometheus client's parser",
          "[daemon][metrics]") {
  MetricsRegistry registry;
  declare_daemon_metrics(registry, "0.1.0");
  registry.increment(metric::kReconciles, {{"result", "success"}}, 3);
  registry.increment(metric::kErrors, {{"kind", "Unavailable"}});
  registry.observe(metric::kReconcileDuration, 0.2);
  registry.observe(metric::kReconcileDuration, 7);
  registry.set(metric::kManagedTokens, 12);
  registry.set(metric::kDriftedTokens, 1);
  registry.set(metric::kNearestExpiry, 86400);
  registry.increment(metric::kApiRequests, {{"operation", "ListApiTokens"}, {"code", "200"}}, 4);
  registry.increment(metric::kApiRequests, {{"operation", "CreateApiToken"}, {"code", "none"}});
  registry.increment(metric::kActions, {{"action", "create"}, {"result", "ok"}});
  registry.set(metric::kLastSuccess, 1764331203);
  registry.increment(metric::kReloadFailures);
  registry.declare("astro_tokend_test_labels", "Escaping check.", MetricType::Gauge);
  registry.set("astro_tokend_test_labels", {{"value", "a \"quoted\" \\ back\nslash"}}, 2);

  tokend::testing::TempDir dir;
  tokend::testing::write_file(dir.file("metrics.txt"), registry.render());
  tokend::testing::write_file(dir.file("parse.py"), R"PY(
import sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1]).read()
for family in text_string_to_metric_families(text):
    for s in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        print(f"{family.type} {s.name}{{{labels}}} {s.value!r}")
)PY");
  auto result = tokend::testing::run_process(
      {"/usr/bin/python3", dir.file("parse.py"), dir.file("metrics.txt")});
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  const std::string& out = result.out;
  INFO(out);
  CHECK(out.find("counter astro_tokend_reconciles_total{result=success} 3.0\n") !=
        std::string::npos);
  CHECK(out.find("counter astro_tokend_reconciles_total{result=refused} 0.0\n") !=
        std::string::npos);
  CHECK(out.find("histogram astro_tokend_reconcile_duration_seconds_bucket{le=+Inf} 2.0\n") !=
        std::string::npos);
  CHECK(out.find("histogram astro_tokend_reconcile_duration_seconds_bucket{le=0.25} 1.0\n") !=
        std::string::npos);
  CHECK(out.find("histogram astro_tokend_reconcile_duration_seconds_sum{} 7.2\n") !=
        std::string::npos);
  CHECK(
      out.find("counter astro_tokend_api_requests_total{code=200,operation=ListApiTokens} 4.0\n") !=
      std::string::npos);
  CHECK(
      out.find("gauge astro_tokend_last_successful_reconcile_timestamp_seconds{} 1764331203.0\n") !=
      std::string::npos);
  CHECK(out.find("counter astro_tokend_config_reload_failures_total{} 1.0\n") != std::string::npos);
  CHECK(out.find("gauge astro_tokend_test_labels{value=a \"quoted\" \\ back\nslash} 2.0\n") !=
        std::string::npos);
}

TEST_CASE("collectors set their samples at each render", "[daemon][metrics]") {
  MetricsRegistry registry;
  registry.declare("demo_seconds_total", "A total kept elsewhere.", MetricType::Counter);
  registry.declare("demo_level", "Read at scrape time.", MetricType::Gauge);
  double kept = 1.5;
  int calls = 0;
  registry.add_collector([&](MetricsRegistry& r) {
    ++calls;
    r.set_total("demo_seconds_total", {}, kept);
    r.set("demo_level", {}, calls);
  });
  CHECK(registry.render() ==
        "# HELP demo_seconds_total A total kept elsewhere.\n# TYPE demo_seconds_total counter\n"
        "demo_seconds_total 1.5\n# HELP demo_level Read at scrape time.\n"
        "# TYPE demo_level gauge\ndemo_level 1\n");
  kept = 2.25;
  CHECK(registry.render().find("demo_seconds_total 2.25\n") != std::string::npos);
  CHECK(calls == 2);
  CHECK(registry.value("demo_level") == 2);
  kept = 1;  // a total never goes down
  registry.render();
  CHECK(registry.value("demo_seconds_total") == 2.25);
  registry.set("demo_seconds_total", {}, 9);  // set() is for gauges
  CHECK(registry.value("demo_seconds_total") == 2.25);
}

TEST_CASE("the daemon declares every family and starts its counters at zero", "[daemon][metrics]") {
  MetricsRegistry registry;
  declare_daemon_metrics(registry, "1.2.3");
  const std::string text = registry.render();
  struct Family {
    const char* name;
    const char* type;
  };
  for (const Family& family : std::vector<Family>{
           {metric::kReconcileInterval, "gauge"},
           {metric::kTokenExpiry, "gauge"},
           {metric::kTokenLastRotation, "gauge"},
           {metric::kTokenRotationDue, "gauge"},
           {metric::kDeliveryHookFailures, "counter"},
           {metric::kApiRequestDuration, "histogram"},
           {metric::kReloadSuccessful, "gauge"},
           {metric::kReloadSuccessTimestamp, "gauge"},
           {metric::kLeader, "gauge"},
           {metric::kProcessCpu, "counter"},
           {metric::kProcessResident, "gauge"},
           {metric::kProcessVirtual, "gauge"},
           {metric::kProcessOpenFds, "gauge"},
           {metric::kProcessMaxFds, "gauge"},
           {metric::kProcessStartTime, "gauge"},
       }) {
    INFO(family.name);
    CHECK(text.find("# TYPE " + std::string(family.name) + " " + family.type + "\n") !=
          std::string::npos);
  }
  for (const char* kind :
       {"NotFound", "Invalid", "Unauthorized", "Forbidden", "Conflict", "RateLimited",
        "Unavailable", "Ambiguous", "Tls", "Corrupt", "Io", "Internal"})
    CHECK(registry.value(metric::kErrors, {{"kind", kind}}) == 0);
  for (const char* action : {"create", "import", "update", "replace", "delete", "rotate", "forget"})
    for (const char* result : {"ok", "failed"})
      CHECK(registry.value(metric::kActions, {{"action", action}, {"result", result}}) == 0);
  CHECK(registry.value(metric::kLeader) == 1);
  CHECK(std::isnan(registry.value(metric::kReloadSuccessful)));
  // The process collector ran: this test process has a start time and open files.
  CHECK(registry.value(metric::kProcessStartTime) > 1e9);
  CHECK(registry.value(metric::kProcessOpenFds) >= 3);
  CHECK(registry.value(metric::kProcessResident) > 0);
}

TEST_CASE("process metrics are read from /proc/self/stat's fields", "[daemon][metrics]") {
  // A process whose name holds spaces and a parenthesis.
  const std::string stat =
      "4242 (astro tokend) x) S 1 4242 4242 0 -1 4194560 1500 0 0 0 250 50 0 0 20 0 3 0 "
      "120000 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n";
  auto sample = parse_proc_stat(stat, 100, 4096, 1700000000);
  REQUIRE(sample);
  CHECK(sample->cpu_seconds == 3.0);                  // (250 + 50) / 100
  CHECK(sample->start_time_seconds == 1700001200.0);  // btime + 120000 / 100
  CHECK(sample->virtual_bytes == 104857600.0);
  CHECK(sample->resident_bytes == 2560.0 * 4096);
  CHECK_FALSE(parse_proc_stat("4242 (short) S 1 2 3", 100, 4096, 0));
  CHECK_FALSE(parse_proc_stat("no parenthesis at all", 100, 4096, 0));
  CHECK_FALSE(parse_proc_stat(stat, 0, 4096, 0));

  CHECK(parse_boot_time("cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n") == 1700000000.0);
  CHECK_FALSE(parse_boot_time("cpu  1 2 3\n"));
  CHECK_FALSE(parse_boot_time("btime soon\n"));
}
