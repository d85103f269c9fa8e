#include "daemon/daemon.h"

#include <signal.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "daemon/cycle.h"
#include "daemon/health.h"
#include "daemon/http_server.h"
#include "daemon/metrics.h"
#include "daemon/reload.h"
#include "daemon/schedule.h"
#include "daemon/signals.h"
#include "daemon/text.h"
#include "daemon/watcher.h"
#include "runtime/runtime.h"
#include "spec/loader.h"
#include "util/duration.h"
#include "version.h"

namespace tokend::daemon {

namespace {

using std::chrono::milliseconds;

// Quiet period and longest delay of the reload debounce: a burst of edits
// is acted on 400 ms after it ends, and never later than 1.5 s after it began.
constexpr milliseconds kDebounceQuiet{400};
constexpr milliseconds kDebounceMax{1500};

// Per-token backoff: 10 s doubling to 10 min, ±20 %. Whole-cycle backoff
// (API unreachable): the same start, capped at the interval.
constexpr BackoffPolicy kTokenBackoff{milliseconds(10000), milliseconds(600000), 0.2};
constexpr BackoffPolicy kCycleBackoff{milliseconds(10000), milliseconds(600000), 0.2};

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

}  // namespace

// Everything the daemon's threads share, and the loop that owns the rest.
//
// Threads: the caller's thread runs the loop (and each cycle, whose apply
// workers call the observers); the SignalListener, ChangeWatcher,
// WatchdogPinger and HealthServer threads only post events (events_mutex_),
// read metrics (the registry's own mutex) or readiness (health_mutex_), and
// log through the runtime's logger under runtime_mutex_.
class Daemon {
 public:
  Daemon(spec::DesiredState desired, const DaemonOptions& options, std::ostream& log_stream)
      : options_(options),
        log_stream_(log_stream),
        desired_(std::move(desired)),
        notifier_(options.notifier != nullptr ? *options.notifier : systemd_notifier_),
        random_(std::random_device{}()) {
    declare_daemon_metrics(metrics_, kVersion);
  }
  // Stops the threads before what they use goes away.
  ~Daemon() {
    server_.reset();
    watcher_.reset();
    watchdog_.reset();
    signals_.reset();
    {
      std::lock_guard<std::mutex> guard(runtime_mutex_);
      runtime_.reset();
    }
    lock_.reset();
  }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  Status run();

 private:
  // ---- wiring ----------------------------------------------------------
  Result<std::unique_ptr<state::WriterLease>> take_lock(const spec::Config& config);
  Result<std::unique_ptr<runtime::Runtime>> open_generation(const spec::Config& config);
  Result<std::unique_ptr<HealthServer>> start_server(const std::string& listen);
  void watch_paths(const std::vector<std::string>& spec_paths);
  Logger& logger() { return runtime_->logger(); }
  void beat() {
    if (watchdog_) watchdog_->beat();
  }
  double unit_random() { return std::uniform_real_distribution<double>(0.0, 1.0)(random_); }

  // ---- events (any thread) ---------------------------------------------
  void on_signal(int signal_number);
  void on_change(const std::string& path);

  // ---- the loop's work ---------------------------------------------------
  CycleOutcome cycle(const std::string& trigger);
  void after_cycle(const CycleOutcome& outcome, milliseconds duration);
  bool reload(const std::string& trigger, const std::string& path);
  void refuse_reload(const std::vector<spec::Diagnostic>& diagnostics);
  void refuse_reload(const Error& error);
  void notify_status();

  const DaemonOptions options_;
  std::ostream& log_stream_;
  spec::DesiredState desired_;  // the set in force (loop only)
  SystemdNotifier systemd_notifier_;
  Notifier& notifier_;
  MetricsRegistry metrics_;                  // thread-safe
  const SystemMonotonicClock steady_clock_;  // thread-safe
  std::atomic<bool> stop_{false};            // raised by SIGTERM/SIGINT; read by apply_plan

  // What depends on the config. Replaced only by the loop; runtime_ under
  // runtime_mutex_ (other threads lock it to log).
  std::mutex runtime_mutex_;
  std::unique_ptr<state::WriterLease> lock_;
  std::unique_ptr<runtime::Runtime> runtime_;
  std::unique_ptr<HealthServer> server_;
  std::unique_ptr<ChangeWatcher> watcher_;
  std::unique_ptr<WatchdogPinger> watchdog_;  // set before any other thread runs
  std::unique_ptr<SignalListener> signals_;

  // Events posted by other threads.
  std::mutex events_mutex_;
  std::condition_variable events_;
  bool stop_requested_ = false;
  int stop_signal_ = 0;
  bool sighup_ = false;
  Debouncer debouncer_{kDebounceQuiet, kDebounceMax};
  std::string changed_path_;

  // Readiness inputs, read by the HTTP server.
  std::mutex health_mutex_;
  std::optional<SteadyTime> last_success_;
  milliseconds health_interval_{0};
  milliseconds health_jitter_{0};

  // Loop only.
  TokenBackoff token_backoff_{kTokenBackoff};
  int unreachable_cycles_ = 0;
  std::mt19937_64 random_;
  std::string reload_note_;  // "Reload failed …; " while a refused reload is the latest
  std::string last_summary_ = "First reconcile running";
  std::string next_text_;  // "next in 5m" / "retry in 20s", for STATUS=
  std::string next_in_;    // "5m", for the log
  Timestamp loaded_at_{};
};

// ---- wiring -----------------------------------------------------------------

Result<std::unique_ptr<state::WriterLease>> Daemon::take_lock(const spec::Config& config) {
  return runtime::take_writer_lock(config, "run");
}

Result<std::unique_ptr<runtime::Runtime>> Daemon::open_generation(const spec::Config& config) {
  runtime::RuntimeOptions runtime_options;
  runtime_options.command = "run";
  runtime_options.need_client = true;
  runtime_options.take_lock = false;  // the daemon holds lock_ itself, across runtime rebuilds
  runtime_options.create_state_dir = true;
  runtime_options.observer = [this](astro::Operation op, int http_status) {
    metrics_.increment(metric::kApiRequests,
                       {{"operation", std::string(astro::to_string(op))},
                        {"code", http_status > 0 ? std::to_string(http_status) : "none"}});
    beat();
  };
  return runtime::open_runtime(config, runtime_options, log_stream_);
}

Result<std::unique_ptr<HealthServer>> Daemon::start_server(const std::string& listen) {
  HealthEndpoints endpoints;
  endpoints.metrics = [this] { return metrics_.render(); };
  endpoints.readiness = [this] {
    std::lock_guard<std::mutex> lock(health_mutex_);
    return decide_readiness(last_success_, steady_clock_.now(), health_interval_, health_jitter_);
  };
  return HealthServer::start(listen, std::move(endpoints));
}

void Daemon::watch_paths(const std::vector<std::string>& spec_paths) {
  if (!watcher_) return;
  for (const std::string& problem : watcher_->watch(desired_.config.path, spec_paths))
    logger().warn("cannot watch for changes; SIGHUP still reloads", {{"error", problem}});
}

// ---- events -----------------------------------------------------------------

void Daemon::on_signal(int signal_number) {
  if (signal_number == SIGHUP) {
    std::lock_guard<std::mutex> lock(events_mutex_);
    sighup_ = true;
  } else {
    if (!stop_.exchange(true) && !options_.once) notifier_.notify("STOPPING=1");
    std::lock_guard<std::mutex> lock(events_mutex_);
    stop_requested_ = true;
    stop_signal_ = signal_number;
  }
  events_.notify_all();
}

void Daemon::on_change(const std::string& path) {
  {
    std::lock_guard<std::mutex> lock(events_mutex_);
    debouncer_.note(steady_clock_.now());
    changed_path_ = path;
  }
  events_.notify_all();
}

// ---- the loop -----------------------------------------------------------------

Status Daemon::run() {
  block_daemon_signals();
  auto signals = SignalListener::start([this](int signal_number) { on_signal(signal_number); });
  if (!signals.ok()) return signals.error();
  signals_ = std::move(signals.value());

  if (!options_.once) {
    if (auto period = watchdog_period()) {
      watchdog_ = std::make_unique<WatchdogPinger>(notifier_, *period, [this](milliseconds silent) {
        std::lock_guard<std::mutex> lock(runtime_mutex_);
        if (runtime_)
          runtime_->logger().error("the main loop made no progress; withholding the watchdog ping",
                                   {{"silent_for", rounded_duration(silent)}});
      });
    }
  }

  auto lock = take_lock(desired_.config);
  if (!lock.ok()) return lock.error();
  lock_ = std::move(lock.value());
  auto runtime = open_generation(desired_.config);
  if (!runtime.ok()) return runtime.error();
  {
    std::lock_guard<std::mutex> guard(runtime_mutex_);
    runtime_ = std::move(runtime.value());
  }
  loaded_at_ = runtime_->clock().now();
  {
    std::lock_guard<std::mutex> guard(health_mutex_);
    health_interval_ = desired_.config.interval;
    health_jitter_ = desired_.config.jitter;
  }

  if (!options_.once && !desired_.config.listen.empty()) {
    auto server = start_server(desired_.config.listen);
    if (!server.ok()) return server.error();
    server_ = std::move(server.value());
  }
  if (!options_.once) {
    auto watcher = ChangeWatcher::start([this](const std::string& path) { on_change(path); });
    if (watcher.ok())
      watcher_ = std::move(watcher.value());
    else
      logger().warn("cannot watch for changes; SIGHUP still reloads",
                    {{"error", watcher.error().message}});
    watch_paths(desired_.config.spec_paths);
  }

  const spec::Config& config = desired_.config;
  logger().info("daemon started",
                {{"version", kVersion},
                 {"config", config.path},
                 {"tokens", std::to_string(desired_.tokens.size())},
                 {"mode", config.mode == spec::ReconcileMode::Apply ? "apply" : "plan"},
                 {"interval", format_duration(config.interval)},
                 {"jitter", format_duration(config.jitter)},
                 {"once", options_.once ? "true" : "false"}});
  if (server_) logger().info("serving metrics", {{"listen", server_->address()}});

  if (options_.once) {
    auto started = steady_clock_.now();
    CycleOutcome outcome = cycle("startup");
    after_cycle(outcome, std::chrono::duration_cast<milliseconds>(steady_clock_.now() - started));
    if (outcome.result == CycleResult::Success) return ok_status();
    return Error::internal("reconcile " + std::string(to_string(outcome.result)) +
                           (outcome.error.empty() ? "" : ": " + outcome.error));
  }

  notifier_.notify("READY=1\nSTATUS=Configuration loaded; first reconcile running");

  SteadyTime next_cycle = steady_clock_.now();
  std::string timer_trigger = "startup";
  for (;;) {
    enum class Work { Stop, Reload, Cycle } work = Work::Cycle;
    std::string trigger, changed_path;
    {
      std::unique_lock<std::mutex> lock_events(events_mutex_);
      for (;;) {
        SteadyTime now = steady_clock_.now();
        if (stop_requested_) {
          work = Work::Stop;
          break;
        }
        if (sighup_) {
          sighup_ = false;
          debouncer_.reset();
          work = Work::Reload;
          trigger = "sighup";
          break;
        }
        if (debouncer_.ready(now)) {
          debouncer_.reset();
          work = Work::Reload;
          trigger = "config-change";
          changed_path = changed_path_;
          break;
        }
        if (now >= next_cycle) {
          work = Work::Cycle;
          trigger = timer_trigger;
          break;
        }
        SteadyTime deadline = next_cycle;
        if (auto due = debouncer_.due()) deadline = std::min(deadline, *due);
        if (watchdog_) {
          watchdog_->beat();
          deadline = std::min(deadline, now + milliseconds(5000));
        }
        events_.wait_until(lock_events, deadline);
      }
    }
    beat();
    if (work == Work::Stop) break;
    if (work == Work::Reload && !reload(trigger, changed_path)) continue;

    auto started = steady_clock_.now();
    CycleOutcome outcome = cycle(trigger);
    auto finished = steady_clock_.now();
    timer_trigger = "timer";
    milliseconds delay;
    if (outcome.unreachable) {
      ++unreachable_cycles_;
      delay = cycle_retry_delay(kCycleBackoff, unreachable_cycles_, desired_.config.interval,
                                unit_random());
      logger().warn("API unreachable; backing off the whole cycle",
                    {{"consecutive_failures", std::to_string(unreachable_cycles_)},
                     {"retry_in", rounded_duration(delay)}});
    } else {
      unreachable_cycles_ = 0;
      delay = jittered_interval(desired_.config.interval, desired_.config.jitter, unit_random());
    }
    next_cycle = finished + delay;
    next_in_ = rounded_duration(delay);
    next_text_ = (outcome.unreachable ? "retry in " : "next in ") + next_in_;
    after_cycle(outcome, std::chrono::duration_cast<milliseconds>(finished - started));
  }

  int signal_number = 0;
  {
    std::lock_guard<std::mutex> lock_events(events_mutex_);
    signal_number = stop_signal_;
  }
  logger().info("stopping", {{"signal", signal_number == SIGINT ? "SIGINT" : "SIGTERM"}});
  server_.reset();
  watcher_.reset();
  watchdog_.reset();
  logger().info("stopped");
  {
    std::lock_guard<std::mutex> guard(runtime_mutex_);
    runtime_.reset();
  }
  lock_.reset();
  signals_.reset();
  return ok_status();
}

// ---- one cycle -----------------------------------------------------------

CycleOutcome Daemon::cycle(const std::string& trigger) {
  CycleContext context{runtime_->dependencies(),
                       steady_clock_,
                       metrics_,
                       token_backoff_,
                       [this] { return runtime_->requests().total(); },
                       [this] { return unit_random(); },
                       [this] { beat(); },
                       &stop_};
  return run_cycle(context, desired_, trigger);
}

void Daemon::after_cycle(const CycleOutcome& outcome, milliseconds duration) {
  std::vector<LogField> fields = {{"result", std::string(to_string(outcome.result))},
                                  {"trigger", outcome.trigger}};
  if (outcome.plan_mode) {
    fields.push_back({"mode", "plan"});
    fields.push_back({"pending", std::to_string(outcome.pending)});
  } else {
    fields.push_back({"added", std::to_string(outcome.applied.add)});
    fields.push_back({"changed", std::to_string(outcome.applied.change)});
    fields.push_back({"destroyed", std::to_string(outcome.applied.destroy)});
    fields.push_back({"rotated", std::to_string(outcome.applied.rotate)});
    fields.push_back({"failed", std::to_string(outcome.failed)});
    fields.push_back({"backing_off", std::to_string(outcome.backing_off)});
  }
  fields.push_back({"drift", std::to_string(outcome.drift)});
  fields.push_back({"duration", seconds_text(std::chrono::duration<double>(duration).count())});
  if (outcome.stopped) fields.push_back({"stopped", "true"});
  if (!next_in_.empty() && !stop_.load()) fields.push_back({"next_in", next_in_});
  logger().log(outcome.result == CycleResult::Success ? LogLevel::Info : LogLevel::Warn,
               "reconcile finished", fields);
  metrics_.increment(metric::kReconciles, {{"result", std::string(to_string(outcome.result))}});
  metrics_.observe(metric::kReconcileDuration, std::chrono::duration<double>(duration).count());
  if (outcome.result == CycleResult::Success) {
    metrics_.set(metric::kLastSuccess,
                 static_cast<double>(runtime_->clock().now().time_since_epoch().count()));
    std::lock_guard<std::mutex> guard(health_mutex_);
    last_success_ = steady_clock_.now();
  }
  last_summary_ = outcome.summary;
  notify_status();
}

void Daemon::notify_status() {
  if (options_.once) return;
  std::string status = reload_note_ + last_summary_;
  if (!next_text_.empty()) status += "; " + next_text_;
  for (char& c : status)
    if (c == '\n') c = ' ';
  notifier_.notify("STATUS=" + status);
}

// ---- reloads -----------------------------------------------------------------

void Daemon::refuse_reload(const std::vector<spec::Diagnostic>& diagnostics) {
  for (const spec::Diagnostic& diagnostic : diagnostics)
    logger().error("invalid configuration",
                   {{"at", position_text(diagnostic.pos)}, {"error", diagnostic.message}});
  metrics_.increment(metric::kReloadFailures);
  std::size_t n = diagnostics.size();
  reload_note_ = "Reload failed (" + std::to_string(n) + (n == 1 ? " error" : " errors") +
                 "), still running the configuration loaded at " + clock_text(loaded_at_) + ". ";
  logger().warn("configuration reload refused; the previous configuration stays in force",
                {{"errors", std::to_string(n)}});

  // Keep watching what the new config names too, so that fixing a spec in a
  // newly listed directory is noticed.
  std::vector<std::string> paths = desired_.config.spec_paths;
  spec::Loaded<spec::Config> config = spec::load_config(desired_.config.path);
  if (config.value)
    for (const std::string& path : config.value->spec_paths) paths.push_back(path);
  watch_paths(paths);
  notifier_.notify("READY=1");
  notify_status();
}

void Daemon::refuse_reload(const Error& error) {
  refuse_reload(std::vector<spec::Diagnostic>{
      spec::Diagnostic{{desired_.config.path, 0, 0}, error.describe(), ""}});
}

bool Daemon::reload(const std::string& trigger, const std::string& path) {
  notifier_.notify("RELOADING=1\n" + monotonic_usec_field());
  if (path.empty())
    logger().info("reloading configuration", {{"trigger", trigger}});
  else
    logger().info("reloading configuration", {{"trigger", trigger}, {"path", path}});

  spec::Loaded<spec::DesiredState> loaded = spec::load_desired_state(desired_.config.path);
  ReloadDecision decision = decide_reload(desired_, loaded);
  if (!decision.accept) {
    refuse_reload(decision.diagnostics);
    return false;
  }
  const spec::Config& next = loaded.value->config;

  // Build everything new before touching what runs: a failure keeps it all.
  std::unique_ptr<state::WriterLease> new_lock;
  std::unique_ptr<runtime::Runtime> new_runtime;
  std::unique_ptr<HealthServer> new_server;
  if (decision.move_lock) {
    auto taken = take_lock(next);
    if (!taken.ok()) {
      refuse_reload(taken.error());
      return false;
    }
    new_lock = std::move(taken.value());
  }
  if (decision.rebuild_runtime) {
    auto opened = open_generation(next);
    if (!opened.ok()) {
      refuse_reload(opened.error());
      return false;
    }
    new_runtime = std::move(opened.value());
  }
  if (decision.restart_server && !next.listen.empty()) {
    auto started = start_server(next.listen);
    if (!started.ok()) {
      refuse_reload(started.error());
      return false;
    }
    new_server = std::move(started.value());
  }

  // Switch.
  std::unique_ptr<runtime::Runtime> old_runtime;
  if (new_runtime) {
    std::lock_guard<std::mutex> guard(runtime_mutex_);
    old_runtime = std::move(runtime_);
    runtime_ = std::move(new_runtime);
  }
  old_runtime.reset();
  if (new_lock) lock_ = std::move(new_lock);  // releases the old lock
  if (decision.restart_server) {
    server_ = std::move(new_server);
    if (server_)
      logger().info("serving metrics", {{"listen", server_->address()}});
    else
      logger().info("metrics server stopped ([server] listen is empty)");
  }
  desired_ = std::move(*loaded.value);
  loaded_at_ = runtime_->clock().now();
  {
    std::lock_guard<std::mutex> guard(health_mutex_);
    health_interval_ = desired_.config.interval;
    health_jitter_ = desired_.config.jitter;
  }
  watch_paths(desired_.config.spec_paths);
  reload_note_.clear();

  std::vector<std::string> changed = decision.changes.names();
  if (decision.specs_changed) changed.push_back("tokens");
  logger().info("configuration reloaded",
                {{"trigger", trigger},
                 {"changed", changed.empty() ? "nothing" : join(changed, ",")},
                 {"tokens", std::to_string(desired_.tokens.size())}});
  notifier_.notify("READY=1\nSTATUS=Configuration reloaded; reconciling");
  return true;
}

Status run_daemon(spec::DesiredState desired, const DaemonOptions& options,
                  std::ostream& log_stream) {
  Daemon daemon(std::move(desired), options, log_stream);
  return daemon.run();
}

}  // namespace tokend::daemon
