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

#include <functional>
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
  // Counter: creates each sample of `samples` that does not exist yet, at 0
  // (the series is there before its first event); an existing sample keeps
  // its value. Cheapest with `samples` sorted.
  void add_missing(std::string_view name, const std::vector<MetricLabels>& samples);
  // Gauge: sets the sample.
  void set(std::string_view name, const MetricLabels& labels, double value);
  // Counter: sets the sample to a total counted elsewhere (a collector
  // reading the kernel's CPU time); ignored for a value below the current one.
  void set_total(std::string_view name, const MetricLabels& labels, double value);
  void set(std::string_view name, double value) { set(name, {}, value); }
  // Gauge: replaces every sample of the family with `samples` at once (a
  // scrape sees the old set or the new one, never a mix).
  void set_all(std::string_view name, std::map<MetricLabels, double> samples);
  // Gauge or counter: removes the sample (it is then absent from render()).
  void remove(std::string_view name, const MetricLabels& labels = {});
  // Histogram: counts `value` in its buckets, sum and count.
  void observe(std::string_view name, double value, const MetricLabels& labels = {});

  // The value of a counter or gauge sample, or of a histogram's count;
  // nullopt-like NaN when absent. For tests and status lines.
  double value(std::string_view name, const MetricLabels& labels = {}) const;

  // Called by render() each time before rendering, outside the registry's
  // lock, to set the samples of families read at scrape time (process_*).
  // Collectors run in the order added and must be thread-safe.
  using Collector = std::function<void(MetricsRegistry&)>;
  void add_collector(Collector collector);

  // Runs the collectors, then renders every family: `# HELP`, `# TYPE`, then
  // its samples, each line ending in "\n". A family with no samples shows
  // only its HELP and TYPE lines.
  std::string render();

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
  std::vector<Collector> collectors_;  // guarded by mutex_ (copied out to run)
};

// A sample value as the exposition format spells it: "NaN", "+Inf", "-Inf",
// or the shortest decimal that reads back as the same double ("1", "0.25",
// "1.5e-07").
std::string format_metric_value(double value);

// A label value escaped for the exposition format: backslash, double quote
// and newline become \\, \" and \n.
std::string escape_label_value(std::string_view value);

// The daemon's metric names (astro_tokend_…, and the process_* names every
// Prometheus client exports).
namespace metric {
inline constexpr const char* kReconciles = "astro_tokend_reconciles_total";  // {result}
inline constexpr const char* kErrors = "astro_tokend_errors_total";          // {kind}
inline constexpr const char* kReconcileDuration = "astro_tokend_reconcile_duration_seconds";
inline constexpr const char* kReconcileInterval = "astro_tokend_reconcile_interval_seconds";
inline constexpr const char* kManagedTokens = "astro_tokend_managed_tokens";
inline constexpr const char* kDriftedTokens = "astro_tokend_drifted_tokens";
inline constexpr const char* kNearestExpiry = "astro_tokend_nearest_expiry_seconds";
// Per managed token, {address}:
inline constexpr const char* kTokenExpiry = "astro_tokend_token_expiry_timestamp_seconds";
inline constexpr const char* kTokenLastRotation =
    "astro_tokend_token_last_rotation_timestamp_seconds";
inline constexpr const char* kTokenRotationDue =
    "astro_tokend_token_rotation_due_timestamp_seconds";
inline constexpr const char* kDeliveryHookFailures =
    "astro_tokend_delivery_hook_failures_total";                                // {address}
inline constexpr const char* kApiRequests = "astro_tokend_api_requests_total";  // {operation,code}
inline constexpr const char* kApiRequestDuration =
    "astro_tokend_api_request_duration_seconds";                       // {operation}
inline constexpr const char* kActions = "astro_tokend_actions_total";  // {action,result}
inline constexpr const char* kLastSuccess =
    "astro_tokend_last_successful_reconcile_timestamp_seconds";
inline constexpr const char* kReloadFailures = "astro_tokend_config_reload_failures_total";
inline constexpr const char* kReloadSuccessful = "astro_tokend_config_last_reload_successful";
inline constexpr const char* kReloadSuccessTimestamp =
    "astro_tokend_config_last_reload_success_timestamp_seconds";
inline constexpr const char* kLeader = "astro_tokend_leader";
inline constexpr const char* kBuildInfo = "astro_tokend_build_info";  // {version}
inline constexpr const char* kProcessCpu = "process_cpu_seconds_total";
inline constexpr const char* kProcessResident = "process_resident_memory_bytes";
inline constexpr const char* kProcessVirtual = "process_virtual_memory_bytes";
inline constexpr const char* kProcessOpenFds = "process_open_fds";
inline constexpr const char* kProcessMaxFds = "process_max_fds";
inline constexpr const char* kProcessStartTime = "process_start_time_seconds";
}  // namespace metric

// Declares every daemon metric with its help text and type, so that each
// appears in the first scrape, and gives what can be known before the first
// event a value: build_info{version} 1; reconciles_total at 0 for each result
// (success, failure, refused), errors_total at 0 for each ErrorKind,
// actions_total at 0 for each action and result (ok, failed), reload failures
// at 0; leader 1 (a daemon without a shared state backend always leads); and
// a collector for the process_* families (read from /proc/self at each
// scrape). Per-token families, the reload gauges, the interval and the
// timestamps stay absent until the daemon has a value for them.
void declare_daemon_metrics(MetricsRegistry& registry, std::string_view version);

}  // namespace tokend::daemon
