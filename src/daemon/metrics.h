// A small Prometheus metrics registry: counters, gauges and histograms with
// labels, rendered in the text exposition format 0.0.4. No library; the
// daemon's HTTP server serves render() at /metrics.
//
// Thread-safe: every method takes the registry's mutex. Values are doubles.
// Names and label names must be valid Prometheus names (a precondition, not
// checked); label values may hold any text and are escaped when rendered.
// Operations on a name that was never declared, or of the wrong type, are
// ignored.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tokend::daemon {

enum class MetricType { Counter, Gauge, Histogram };

// Label name/value pairs, rendered in the order given.
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class MetricsRegistry {
 public:
  // Declares a family. Families render in declaration order, their samples
  // sorted by label values. `buckets` (histograms only) are upper bounds in
  // increasing order; +Inf is implied. Declaring a name again does nothing.
  void declare(const std::string& name, const std::string& help, MetricType type,
               std::vector<double> buckets = {});

  // Counter: adds `by` (>= 0) to the sample, creating it at 0 first.
  void increment(std::string_view name, const MetricLabels& labels = {}, double by = 1);
  // Gauge: sets the sample.
  void set(std::string_view name, const MetricLabels& labels, double value);
  void set(std::string_view name, double value) { set(name, {}, value); }
  // Gauge or counter: removes the sample (it is then absent from render()).
  void remove(std::string_view name, const MetricLabels& labels = {});
  // Histogram: counts `value` in its buckets, sum and count.
  void observe(std::string_view name, double value, const MetricLabels& labels = {});

  // The value of a counter or gauge sample, or of a histogram's count;
  // nullopt-like NaN when absent. For tests and status lines.
  double value(std::string_view name, const MetricLabels& labels = {}) const;

  // Every family: `# HELP`, `# TYPE`, then its samples, each line ending in
  // "\n". A family with no samples shows only its HELP and TYPE lines.
  std::string render() const;

 private:
  struct HistogramData {
    std::vector<double> bucket_counts;  // per bound, not cumulative
    double sum = 0;
    double count = 0;
  };
  struct Family {
    std::string name;
    std::string help;
    MetricType type = MetricType::Counter;
    std::vector<double> buckets;
    std::map<MetricLabels, double> values;
    std::map<MetricLabels, HistogramData> histograms;
  };
  Family* find(std::string_view name);
  const Family* find(std::string_view name) const;

  mutable std::mutex mutex_;
  std::vector<Family> families_;
};

// A sample value as the exposition format spells it: "NaN", "+Inf", "-Inf",
// or the shortest decimal that reads back as the same double ("1", "0.25",
// "1.5e-07").
std::string format_metric_value(double value);

// A label value escaped for the exposition format: backslash, double quote
// and newline become \\, \" and \n.
std::string escape_label_value(std::string_view value);

// The daemon's metric names (all prefixed astro_tokend_).
namespace metric {
inline constexpr const char* kReconciles = "astro_tokend_reconciles_total";  // {result}
inline constexpr const char* kErrors = "astro_tokend_errors_total";          // {kind}
inline constexpr const char* kReconcileDuration = "astro_tokend_reconcile_duration_seconds";
inline constexpr const char* kManagedTokens = "astro_tokend_managed_tokens";
inline constexpr const char* kDriftedTokens = "astro_tokend_drifted_tokens";
inline constexpr const char* kNearestExpiry = "astro_tokend_nearest_expiry_seconds";
inline constexpr const char* kApiRequests = "astro_tokend_api_requests_total";  // {operation,code}
inline constexpr const char* kActions = "astro_tokend_actions_total";           // {action,result}
inline constexpr const char* kLastSuccess =
    "astro_tokend_last_successful_reconcile_timestamp_seconds";
inline constexpr const char* kReloadFailures = "astro_tokend_config_reload_failures_total";
inline constexpr const char* kBuildInfo = "astro_tokend_build_info";  // {version}
}  // namespace metric

// Declares every daemon metric with its help text, sets build_info{version}
// to 1, and starts reconciles_total at 0 for each result (success, failure,
// refused) and reload failures at 0, so that rate() works from the first
// scrape. astro_tokend_nearest_expiry_seconds and the last-success timestamp
// stay absent until there is a value to report.
void declare_daemon_metrics(MetricsRegistry& registry, std::string_view version);

}  // namespace tokend::daemon
