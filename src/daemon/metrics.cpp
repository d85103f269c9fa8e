#include "daemon/metrics.h"

#include "daemon/process_metrics.h"
#include "plan/plan.h"
#include "util/result.h"

#include <charconv>
#include <cmath>
#include <limits>

namespace tokend::daemon {

namespace {

constexpr ErrorKind kAllErrorKinds[] = {
    ErrorKind::NotFound, ErrorKind::Invalid,     ErrorKind::Unauthorized, ErrorKind::Forbidden,
    ErrorKind::Conflict, ErrorKind::RateLimited, ErrorKind::Unavailable,  ErrorKind::Ambiguous,
    ErrorKind::Tls,      ErrorKind::Corrupt,     ErrorKind::Io,           ErrorKind::Internal};

constexpr plan::Action kAllActions[] = {
    plan::Action::Create, plan::Action::Import, plan::Action::Update, plan::Action::Replace,
    plan::Action::Delete, plan::Action::Rotate, plan::Action::Forget};

void append_labels(std::string& out, const MetricLabels& labels, const std::string* le = nullptr) {
  if (labels.empty() && le == nullptr) return;
  out += '{';
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!first) out += ',';
    first = false;
    out += name;
    out += "=\"";
    out += escape_label_value(value);
    out += '"';
  }
  if (le != nullptr) {
    if (!first) out += ',';
    out += "le=\"";
    out += *le;
    out += '"';
  }
  out += '}';
}

// HELP text: backslash and newline are escaped (quotes are not).
std::string escape_help(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string_view type_name(MetricType type) {
  switch (type) {
    case MetricType::Counter:
      return "counter";
    case MetricType::Gauge:
      return "gauge";
    case MetricType::Histogram:
      return "histogram";
  }
  return "untyped";
}

}  // namespace

std::string format_metric_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == 0) return "0";  // also for -0
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  if (ec != std::errc()) return "NaN";
  return std::string(buffer, end);
}

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

MetricsRegistry::Family* MetricsRegistry::find(std::string_view name) {
  for (Family& family : families_)
    if (family.name == name) return &family;
  return nullptr;
}

const MetricsRegistry::Family* MetricsRegistry::find(std::string_view name) const {
  for (const Family& family : families_)
    if (family.name == name) return &family;
  return nullptr;
}

void MetricsRegistry::declare(const std::string& name, const std::string& help, MetricType type,
                              std::vector<double> buckets) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (find(name) != nullptr) return;
  Family family;
  family.name = name;
  family.help = help;
  family.type = type;
  if (type == MetricType::Histogram) family.buckets = std::move(buckets);
  families_.push_back(std::move(family));
}

void MetricsRegistry::increment(std::string_view name, const MetricLabels& labels, double by) {
  std::lock_guard<std::mutex> lock(mutex_);
  Family* family = find(name);
  if (family == nullptr || family->type != MetricType::Counter || !(by >= 0)) return;
  family->values[labels] += by;
}

void MetricsRegistry::add_missing(std::string_view name, const std::vector<MetricLabels>& samples) {
  std::lock_guard<std::mutex> lock(mutex_);
  Family* family = find(name);
  if (family == nullptr || family->type != MetricType::Counter) return;
  // One forward walk for sorted samples. Any order is still right:
  // emplace_hint never makes a second sample of the same labels.
  auto at = family->values.begin();
  for (const MetricLabels& labels : samples) {
    while (at != family->values.end() && at->first < labels) ++at;
    if (at == family->values.end() || at->first != labels)
      at = std::next(family->values.emplace_hint(at, labels, 0));
  }
}

void MetricsRegistry::set(std::string_view name, const MetricLabels& labels, double value) {
  std::lock_guard<std::mutex> lock(mutex_);
  Family* family = find(name);
  if (family == nullptr || family->type != MetricType::Gauge) return;
  family->values[labels] = value;
}

void MetricsRegistry::set_total(std::string_view name, const MetricLabels& labels, double value) {
  std::lock_guard<std::mutex> lock(mutex_);
  Family* family = find(name);
  if (family == nullptr || family->type != MetricType::Counter) return;
  auto [it, inserted] = family->values.try_emplace(labels, value);
  if (!inserted && value >= it->second) it->second = value;
}

void MetricsRegistry::set_all(std::string_view name, std::map<MetricLabels, double> samples) {
  std::lock_guard<std::mutex> lock(mutex_);
  Family* family = find(name);
  if (family == nullptr || family->type != MetricType::Gauge) return;
  family->values = std::move(samples);
}

void MetricsRegistry::remove(std::string_view name, const MetricLabels& labels) {
  std::lock_guard<std::mutex> lock(mutex_);
  Family* family = find(name);
  if (family == nullptr) return;
  family->values.erase(labels);
  family->histograms.erase(labels);
}

void MetricsRegistry::observe(std::string_view name, double value, const MetricLabels& labels) {
  std::lock_guard<std::mutex> lock(mutex_);
  Family* family = find(name);
  if (family == nullptr || family->type != MetricType::Histogram) return;
  HistogramData& data = family->histograms[labels];
  data.bucket_counts.resize(family->buckets.size(), 0);
  for (size_t i = 0; i < family->buckets.size(); ++i) {
    if (value <= family->buckets[i]) {
      data.bucket_counts[i] += 1;
      break;
    }
  }
  data.sum += value;
  data.count += 1;
}

double MetricsRegistry::value(std::string_view name, const MetricLabels& labels) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const Family* family = find(name);
  if (family == nullptr) return std::numeric_limits<double>::quiet_NaN();
  if (family->type == MetricType::Histogram) {
    auto it = family->histograms.find(labels);
    return it == family->histograms.end() ? std::numeric_limits<double>::quiet_NaN()
                                          : it->second.count;
  }
  auto it = family->values.find(labels);
  return it == family->values.end() ? std::numeric_limits<double>::quiet_NaN() : it->second;
}

void MetricsRegistry::add_collector(Collector collector) {
  std::lock_guard<std::mutex> lock(mutex_);
  collectors_.push_back(std::move(collector));
}

std::string MetricsRegistry::render() {
  std::vector<Collector> collectors;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    collectors = collectors_;
  }
  for (const Collector& collect : collectors) collect(*this);
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  for (const Family& family : families_) {
    out += "# HELP " + family.name + " " + escape_help(family.help) + "\n";
    out += "# TYPE " + family.name + " ";
    out += type_name(family.type);
    out += "\n";
    if (family.type != MetricType::Histogram) {
      for (const auto& [labels, value] : family.values) {
        out += family.name;
        append_labels(out, labels);
        out += ' ';
        out += format_metric_value(value);
        out += '\n';
      }
      continue;
    }
    for (const auto& [labels, data] : family.histograms) {
      double cumulative = 0;
      for (size_t i = 0; i < family.buckets.size(); ++i) {
        cumulative += i < data.bucket_counts.size() ? data.bucket_counts[i] : 0;
        std::string le = format_metric_value(family.buckets[i]);
        out += family.name + "_bucket";
        append_labels(out, labels, &le);
        out += ' ' + format_metric_value(cumulative) + '\n';
      }
      std::string inf = "+Inf";
      out += family.name + "_bucket";
      append_labels(out, labels, &inf);
      out += ' ' + format_metric_value(data.count) + '\n';
      out += family.name + "_sum";
      append_labels(out, labels);
      out += ' ' + format_metric_value(data.sum) + '\n';
      out += family.name + "_count";
      append_labels(out, labels);
      out += ' ' + format_metric_value(data.count) + '\n';
    }
  }
  return out;
}

void declare_daemon_metrics(MetricsRegistry& registry, std::string_view version) {
  registry.declare(metric::kReconciles, "Reconcile cycles by result (success, failure, refused).",
                   MetricType::Counter);
  registry.declare(metric::kErrors, "Errors by kind (API, state and per-token failures).",
                   MetricType::Counter);
  registry.declare(metric::kReconcileDuration, "Wall time of reconcile cycles.",
                   MetricType::Histogram, {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300});
  registry.declare(metric::kReconcileInterval,
                   "The configured time between reconcile cycles (reconcile.interval), for rules "
                   "that compare ages with it.",
                   MetricType::Gauge);
  registry.declare(metric::kManagedTokens, "Tokens recorded in state after the last cycle.",
                   MetricType::Gauge);
  registry.declare(metric::kDriftedTokens,
                   "Tokens that differed from their spec and were not put right by the last cycle "
                   "(in plan mode: every pending change).",
                   MetricType::Gauge);
  registry.declare(
      metric::kNearestExpiry,
      "Seconds until the nearest managed token expires (negative when one has expired); "
      "absent when no managed token expires.",
      MetricType::Gauge);
  registry.declare(metric::kTokenExpiry,
                   "Unix time the managed token's current value expires; absent for a token that "
                   "never expires.",
                   MetricType::Gauge);
  registry.declare(metric::kTokenLastRotation,
                   "Unix time of the managed token's last rotation, or of its creation when it "
                   "was never rotated.",
                   MetricType::Gauge);
  registry.declare(metric::kTokenRotationDue,
                   "Unix time the managed token's next rotation is planned for; absent when no "
                   "rotation is planned.",
                   MetricType::Gauge);
  registry.declare(metric::kDeliveryHookFailures,
                   "Delivery hooks (on_delivery) that failed, by token.", MetricType::Counter);
  registry.declare(metric::kApiRequests,
                   "Astro API requests (each retry counts) by operation and HTTP status code "
                   "(\"none\" when no answer arrived).",
                   MetricType::Counter);
  registry.declare(metric::kApiRequestDuration,
                   "Wall time of Astro API requests (each retry counts) by operation.",
                   MetricType::Histogram, {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30});
  registry.declare(metric::kActions, "Applied changes by action and result (ok, failed).",
                   MetricType::Counter);
  registry.declare(metric::kLastSuccess, "Unix time of the last successful reconcile cycle.",
                   MetricType::Gauge);
  registry.declare(metric::kReloadFailures,
                   "Configuration reloads refused because the new config or specs were invalid.",
                   MetricType::Counter);
  registry.declare(metric::kReloadSuccessful,
                   "Whether the last configuration load or reload succeeded (1) or was refused "
                   "(0).",
                   MetricType::Gauge);
  registry.declare(metric::kReloadSuccessTimestamp,
                   "Unix time of the last successful configuration load or reload.",
                   MetricType::Gauge);
  registry.declare(metric::kLeader,
                   "Whether this daemon is the one that reconciles (1) or stands by (0); always 1 "
                   "without a shared state backend.",
                   MetricType::Gauge);
  registry.declare(metric::kBuildInfo, "Build information; the value is always 1.",
                   MetricType::Gauge);
  registry.declare(metric::kProcessCpu, "Total user and system CPU time spent in seconds.",
                   MetricType::Counter);
  registry.declare(metric::kProcessResident, "Resident memory size in bytes.", MetricType::Gauge);
  registry.declare(metric::kProcessVirtual, "Virtual memory size in bytes.", MetricType::Gauge);
  registry.declare(metric::kProcessOpenFds, "Number of open file descriptors.", MetricType::Gauge);
  registry.declare(metric::kProcessMaxFds, "Maximum number of open file descriptors.",
                   MetricType::Gauge);
  registry.declare(metric::kProcessStartTime,
                   "Start time of the process since unix epoch in seconds.", MetricType::Gauge);

  for (const char* result : {"success", "failure", "refused"})
    registry.increment(metric::kReconciles, {{"result", result}}, 0);
  for (ErrorKind kind : kAllErrorKinds)
    registry.increment(metric::kErrors, {{"kind", std::string(to_string(kind))}}, 0);
  for (plan::Action action : kAllActions)
    for (const char* result : {"ok", "failed"})
      registry.increment(metric::kActions,
                         {{"action", std::string(plan::to_string(action))}, {"result", result}}, 0);
  registry.increment(metric::kReloadFailures, {}, 0);
  registry.set(metric::kLeader, 1);
  registry.set(metric::kBuildInfo, {{"version", std::string(version)}}, 1);
  registry.add_collector(collect_process_metrics);
}

}  // namespace tokend::daemon
