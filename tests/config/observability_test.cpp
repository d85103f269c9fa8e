// The alert rules and the dashboard that ship in config/: promtool (from
// Debian's prometheus package, installed by scripts/setup.sh) checks the
// rules and runs their unit tests; every metric the rules and the dashboard
// use must be one the daemon declares, so neither can drift from the code.
#include <catch2/catch.hpp>

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/metrics.h"
#include "support/process.h"

using tokend::testing::ProcessResult;
using tokend::testing::run_process;

namespace {

const std::string kConfigDir = std::string(TOKEND_SOURCE_DIR) + "/config";
const std::string kPromtool = "/usr/bin/promtool";

// The daemon's families by name, with their type, as its /metrics declares them.
std::map<std::string, std::string> declared_families() {
  tokend::daemon::MetricsRegistry registry;
  tokend::daemon::declare_daemon_metrics(registry, "0.0.0");
  std::map<std::string, std::string> families;
  std::istringstream lines(registry.render());
  for (std::string line; std::getline(lines, line);) {
    std::smatch match;
    if (std::regex_match(line, match, std::regex(R"(# TYPE (\S+) (\S+))")))
      families[match[1]] = match[2];
  }
  return families;
}

// The astro_tokend_* and process_* names in `text` that name no declared
// family (a histogram's _bucket, _sum and _count series name their family).
std::set<std::string> undeclared_metrics(const std::string& text) {
  static const std::map<std::string, std::string> families = declared_families();
  std::set<std::string> unknown;
  const std::regex name(R"(\b(astro_tokend_[a-z0-9_]+|process_[a-z0-9_]+)\b)");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), name); it != std::sregex_iterator();
       ++it) {
    std::string metric = (*it)[1];
    if (families.count(metric)) continue;
    bool histogram_series = false;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string s = suffix;
      if (metric.size() > s.size() && metric.compare(metric.size() - s.size(), s.size(), s) == 0) {
        auto family = families.find(metric.substr(0, metric.size() - s.size()));
        histogram_series = family != families.end() && family->second == "histogram";
      }
      if (histogram_series) break;
    }
    if (!histogram_series) unknown.insert(metric);
  }
  return unknown;
}

void collect_exprs(const Poco::Dynamic::Var& value, std::vector<std::string>& exprs) {
  if (value.type() == typeid(Poco::JSON::Object::Ptr)) {
    auto object = value.extract<Poco::JSON::Object::Ptr>();
    for (const auto& [key, member] : *object) {
      if (key == "expr" && member.isString())
        exprs.push_back(member.extract<std::string>());
      else
        collect_exprs(member, exprs);
    }
  } else if (value.type() == typeid(Poco::JSON::Array::Ptr)) {
    auto array = value.extract<Poco::JSON::Array::Ptr>();
    for (size_t i = 0; i < array->size(); ++i)
      collect_exprs(array->get(static_cast<unsigned>(i)), exprs);
  }
}

}  // namespace

TEST_CASE("the alert rules pass promtool check rules and their unit tests", "[config][metrics]") {
  ProcessResult checked =
      run_process({kPromtool, "check", "rules", kConfigDir + "/prometheus/astro-tokend.rules.yml"});
  INFO(checked.out << checked.err);
  CHECK(checked.exit_code == 0);
  CHECK(checked.out.find("SUCCESS: 7 rules found") != std::string::npos);

  tokend::testing::RunOptions options;
  options.cwd = kConfigDir + "/prometheus";
  ProcessResult tested =
      run_process({kPromtool, "test", "rules", "astro-tokend.test.yml"}, options);
  INFO(tested.out << tested.err);
  CHECK(tested.exit_code == 0);
  CHECK(tested.out.find("SUCCESS") != std::string::npos);
}

TEST_CASE("the alert rules use only metrics the daemon declares", "[config][metrics]") {
  const std::string rules =
      tokend::testing::read_file(kConfigDir + "/prometheus/astro-tokend.rules.yml");
  REQUIRE_FALSE(rules.empty());
  for (const std::string& metric : undeclared_metrics(rules))
    FAIL_CHECK("config/prometheus/astro-tokend.rules.yml uses "
               << metric << ", which the daemon does not declare (src/daemon/metrics.cpp)");
  // Each rule the operating guide documents is there.
  for (const char* alert :
       {"AstroTokendDown", "AstroTokendAbsent", "AstroTokendTokenRotationOverdue",
        "AstroTokendTokenExpiringSoon", "AstroTokendReconcileFailing",
        "AstroTokendNoSuccessfulReconcile", "AstroTokendConfigReloadFailing"}) {
    INFO(alert);
    CHECK(rules.find("- alert: " + std::string(alert) + "\n") != std::string::npos);
  }
}

TEST_CASE("the Grafana dashboard is valid JSON querying only metrics the daemon declares",
          "[config][metrics]") {
  const std::string text = tokend::testing::read_file(kConfigDir + "/grafana/astro-tokend.json");
  Poco::JSON::Parser parser;
  Poco::Dynamic::Var parsed = parser.parse(text);
  REQUIRE(parsed.type() == typeid(Poco::JSON::Object::Ptr));
  auto dashboard = parsed.extract<Poco::JSON::Object::Ptr>();
  CHECK(dashboard->getValue<std::string>("uid") == "astro-tokend");
  auto panels = dashboard->getArray("panels");
  REQUIRE(panels->size() > 0);
  std::set<int> ids;
  int graphs = 0;
  for (size_t i = 0; i < panels->size(); ++i) {
    auto panel = panels->getObject(static_cast<unsigned>(i));
    const std::string title = panel->getValue<std::string>("title");
    INFO(title);
    CHECK(ids.insert(panel->getValue<int>("id")).second);
    if (panel->getValue<std::string>("type") == "row") continue;
    ++graphs;
    std::vector<std::string> exprs;
    collect_exprs(panel->get("targets"), exprs);
    CHECK_FALSE(exprs.empty());
  }
  CHECK(graphs >= 20);

  std::vector<std::string> exprs;
  collect_exprs(parsed, exprs);
  std::string all;
  for (const std::string& expr : exprs) all += expr + "\n";
  for (const std::string& metric : undeclared_metrics(all))
    FAIL_CHECK("config/grafana/astro-tokend.json queries "
               << metric << ", which the daemon does not declare (src/daemon/metrics.cpp)");
  // The dashboard shows the per-token families.
  for (const char* family :
       {"astro_tokend_token_expiry_timestamp_seconds",
        "astro_tokend_token_last_rotation_timestamp_seconds",
        "astro_tokend_token_rotation_due_timestamp_seconds",
        "astro_tokend_api_request_duration_seconds_bucket", "process_resident_memory_bytes"})
    CHECK(all.find(family) != std::string::npos);
}

TEST_CASE("the drift check itself spots an undeclared metric", "[config][metrics]") {
  CHECK(undeclared_metrics("rate(astro_tokend_reconciles_total[5m])").empty());
  CHECK(undeclared_metrics("astro_tokend_reconcile_duration_seconds_bucket").empty());
  CHECK(undeclared_metrics("astro_tokend_managed_tokens_bucket") ==
        std::set<std::string>{"astro_tokend_managed_tokens_bucket"});  // not a histogram
  CHECK(undeclared_metrics("astro_tokend_tokens_expiring + process_thread_count") ==
        std::set<std::string>{"astro_tokend_tokens_expiring", "process_thread_count"});
}
