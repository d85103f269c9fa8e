#include "daemon/daemon.h"

#include <signal.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "daemon/cycle.h"
#include "daemon/health.h"
#include "daemon/http_server.h"
#include "daemon/leadership.h"
#include "daemon/metrics.h"
#include "daemon/reload.h"
#include "daemon/schedule.h"
#include "daemon/signals.h"
#include "daemon/status.h"
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
    election_.reset();
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
  // Takes outcome.tokens for the status page (publish_cycle), leaving it empty.
  void after_cycle(CycleOutcome& outcome, milliseconds duration);
  bool reload(const std::string& trigger, const std::string& path);
  void refuse_reload(const std::vector<spec::Diagnostic>& diagnostics);
  void refuse_reload(const Error& error);
  void notify_status();
  // Whether this daemon may run a cycle: always on SQLite; on PostgreSQL
  // only as the leader and before its lease's local deadline (not after
  // waking up from a stall, nor when it could not renew).
  bool may_reconcile() const {
    return leader_ && (!lease_ || std::chrono::steady_clock::now() < lease_->deadline());
  }
  // PostgreSQL: opens the lease and starts the election (after the runtime).
  Status start_election();
  void log_from_any_thread(LogLevel level, const std::string& message,
                           const std::vector<LogField>& fields = {});
  void publish_loaded_config();
  // Moves outcome.tokens into the status page.
  void publish_cycle(CycleOutcome& outcome, milliseconds duration);

  const DaemonOptions options_;
  std::ostream& log_stream_;
  spec::DesiredState desired_;  // the set in force (loop only)
  SystemdNotifier systemd_notifier_;
  Notifier& notifier_;
  MetricsRegistry metrics_;                  // thread-safe
  StatusBoard status_;                       // thread-safe; read by the HTTP server
  const SystemClock wall_clock_;             // thread-safe
  const SystemMonotonicClock steady_clock_;  // thread-safe
  std::atomic<bool> stop_{false};            // raised by SIGTERM/SIGINT; read by apply_plan

  // What depends on the config. Replaced only by the loop; runtime_ under
  // runtime_mutex_ (other threads lock it to log).
  std::mutex runtime_mutex_;
  std::unique_ptr<state::WriterLease> lock_;   // SQLite: the writer lock, held throughout
  std::unique_ptr<state::LeaderLease> lease_;  // PostgreSQL: the lease leaders hold
  std::unique_ptr<LeaderElection> election_;   // PostgreSQL: keeps lease_ (its own thread)
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
  bool leadership_changed_ = false;  // the election took or lost the lease
  Debouncer debouncer_{kDebounceQuiet, kDebounceMax};
  std::string changed_path_;

  // Readiness inputs, read by the HTTP server.
  std::mutex health_mutex_;
  std::optional<SteadyTime> last_success_;
  milliseconds health_interval_{0};
  milliseconds health_jitter_{0};

  // Leadership (PostgreSQL; always the leader on SQLite). leader_ is set by
  // the election's thread; the loop fences the runtime with the epoch.
  std::atomic<bool> leader_{true};
  std::mutex leader_mutex_;
  std::string leader_note_;  // "standing by (leader: host pid)", for STATUS=

  // Loop only.
  int64_t fenced_epoch_ = 0;
  TokenBackoff token_backoff_{kTokenBackoff};
  // The state of the last cycle that changed no state; dropped with the
  // runtime it was read through and at each new term.
  std::optional<state::StateSnapshot> known_state_;
  int unreachable_cycles_ = 0;
  std::mt19937_64 random_;
  std::string reload_note_;  // "Reload failed …; " while a refused reload is the latest
  std::string last_summary_ = "First reconcile running";
  std::string next_text_;                   // "next in 5m" / "retry in 20s", for STATUS=
  std::string next_in_;                     // "5m", for the log
  std::optional<Timestamp> next_cycle_at_;  // for the status page
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
  runtime_options.bind_organization = true;  // and refuses a state of another organization
  runtime_options.create_state_dir = true;
  runtime_options.stop = &stop_;                 // SIGTERM cuts the client's waits short
  runtime_options.remember_fingerprints = true;  // the same sinks, every cycle
  runtime_options.observer = [this](astro::Operation op, int http_status,
                                    std::chrono::duration<double> elapsed) {
    const std::string operation(astro::to_string(op));
    metrics_.increment(metric::kApiRequests,
                       {{"operation", operation},
                        {"code", http_status > 0 ? std::to_string(http_status) : "none"}});
    metrics_.observe(metric::kApiRequestDuration, elapsed.count(), {{"operation", operation}});
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
  endpoints.status_html = [this] {
    return render_status_html(status_.snapshot(), wall_clock_.now());
  };
  endpoints.status_json = [this] {
    return render_status_json(status_.snapshot(), wall_clock_.now());
  };
  return HealthServer::start(listen, std::move(endpoints));
}

void Daemon::watch_paths(const std::vector<std::string>& spec_paths) {
  if (!watcher_) return;
  for (const std::string& problem : watcher_->watch(desired_.config.path, spec_paths))
    logger().warn("cannot watch for changes; SIGHUP still reloads", {{"error", problem}});
}

void Daemon::log_from_any_thread(LogLevel level, const std::string& message,
                                 const std::vector<LogField>& fields) {
  std::lock_guard<std::mutex> guard(runtime_mutex_);
  if (runtime_) runtime_->logger().log(level, message, fields);
}

Status Daemon::start_election() {
  LeadershipEvents events;
  events.became_leader = [this](int64_t epoch) {
    log_from_any_thread(LogLevel::Info, "became leader (epoch " + std::to_string(epoch) + ")");
    {
      std::lock_guard<std::mutex> guard(leader_mutex_);
      leader_note_.clear();
    }
    leader_ = true;
    metrics_.set(metric::kLeader, 1);
    {
      std::lock_guard<std::mutex> lock(events_mutex_);
      leadership_changed_ = true;
    }
    events_.notify_all();
  };
  events.lost = [this](const std::string& why) {
    leader_ = false;
    metrics_.set(metric::kLeader, 0);
    log_from_any_thread(LogLevel::Warn, "lost leadership", {{"reason", why}});
    {
      std::lock_guard<std::mutex> guard(leader_mutex_);
      leader_note_ = "Standing by (lost leadership)";
    }
    {
      std::lock_guard<std::mutex> lock(events_mutex_);
      leadership_changed_ = true;
    }
    events_.notify_all();
  };
  events.standing_by = [this](const state::LockHolder& leader) {
    const std::string who = leader.host + " " + std::to_string(leader.pid);
    log_from_any_thread(LogLevel::Info, "standing by (leader: " + who + ")",
                        {{"leader_since", format_rfc3339(leader.since)}});
    {
      std::lock_guard<std::mutex> guard(leader_mutex_);
      leader_note_ = "Standing by (leader: " + who + ")";
    }
    {
      std::lock_guard<std::mutex> lock(events_mutex_);
      leadership_changed_ = true;
    }
    events_.notify_all();
  };
  events.unreachable = [this](const Error& error, bool leading) {
    log_from_any_thread(LogLevel::Warn, "cannot reach the state database",
                        {{"role", leading ? "leader" : "standby"}, {"error", error.message}});
    metrics_.increment(metric::kErrors, {{"kind", "state"}});
  };
  election_ = std::make_unique<LeaderElection>(*lease_, runtime::lease_timings(desired_.config),
                                               std::move(events));
  return ok_status();
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

  const bool shared_state = desired_.config.state_backend == spec::StateBackend::Postgres;
  if (!shared_state) {
    auto lock = take_lock(desired_.config);
    if (!lock.ok()) return lock.error();
    lock_ = std::move(lock.value());
  } else {
    auto lease = state::open_leader_lease(runtime::store_location(desired_.config), "run",
                                          runtime::lease_timings(desired_.config));
    if (!lease.ok()) return lease.error();
    lease_ = std::move(lease.value());
    leader_ = false;
  }
  metrics_.set(metric::kLeader, leader_ ? 1 : 0);
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
  status_.update([&](StatusSnapshot& status) {
    status.version = kVersion;
    status.started_at = loaded_at_;
  });
  publish_loaded_config();

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
                 {"tokens", desired_.tokens.size()},
                 {"mode", config.mode == spec::ReconcileMode::Apply ? "apply" : "plan"},
                 {"interval", format_duration(config.interval)},
                 {"jitter", format_duration(config.jitter)},
                 {"once", options_.once}});
  if (server_)
    logger().info("serving metrics", {{"listen", server_->address()},
                                      {"status_page", "http://" + server_->address() + "/"}});
  if (lease_) {
    if (options_.once) {
      // One cycle: take the lease once, or stop naming who leads.
      auto taken = lease_->try_acquire();
      if (!taken.ok()) return taken.error();
      if (!*taken) {
        auto holder = lease_->holder();
        return Error::conflict("state is locked by " +
                               (holder ? holder->describe() : std::string("another process")));
      }
      leader_ = true;
      metrics_.set(metric::kLeader, 1);
    } else if (Status started = start_election(); !started.ok()) {
      return started;
    }
  }

  if (options_.once) {
    auto started = steady_clock_.now();
    CycleOutcome outcome = cycle("startup");
    after_cycle(outcome, std::chrono::duration_cast<milliseconds>(steady_clock_.now() - started));
    if (outcome.result == CycleResult::Success) return ok_status();
    return Error::internal("reconcile " + std::string(to_string(outcome.result)) +
                           (outcome.error.empty() ? "" : ": " + outcome.error));
  }

  notifier_.notify("READY=1\nSTATUS=Configuration loaded; first reconcile running");
  status_.update([](StatusSnapshot& status) { status.state = "running"; });

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
        if (leadership_changed_) {
          leadership_changed_ = false;
          if (leader_) {
            work = Work::Cycle;
            trigger = "leadership";
            break;
          }
          notify_status();
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
          if (!may_reconcile()) {
            // A standby reconciles nothing, nor does a leader past its
            // lease's deadline (it woke up after a stall, or could not
            // renew); the election wakes the loop when it leads again.
            next_cycle = now + desired_.config.interval;
            continue;
          }
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
    if (!may_reconcile()) {
      // Reloaded as a standby: the specs are in force for when it leads.
      next_cycle = steady_clock_.now() + desired_.config.interval;
      continue;
    }

    auto started = steady_clock_.now();
    CycleOutcome outcome = cycle(trigger);
    auto finished = steady_clock_.now();
    timer_trigger = "timer";
    milliseconds delay;
    if (outcome.unreachable) {
      ++unreachable_cycles_;
      delay = cycle_retry_delay(kCycleBackoff, unreachable_cycles_, desired_.config.interval,
                                unit_random());
      logger().warn(
          "API unreachable; backing off the whole cycle",
          {{"consecutive_failures", unreachable_cycles_}, {"retry_in", rounded_duration(delay)}});
    } else {
      unreachable_cycles_ = 0;
      delay = jittered_interval(desired_.config.interval, desired_.config.jitter, unit_random());
    }
    next_cycle = finished + delay;
    next_cycle_at_ = wall_clock_.now() + std::chrono::duration_cast<std::chrono::seconds>(delay);
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
  election_.reset();  // gives the lease up: a standby takes over at once
  status_.update([](StatusSnapshot& status) { status.state = "stopping"; });
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
  if (lease_ && lease_->epoch() != fenced_epoch_) {
    // A new term: every state write checks this epoch, every API write the lease.
    fenced_epoch_ = lease_->epoch();
    known_state_.reset();
    runtime_->fence(*lease_);
  }
  CycleContext context{runtime_->dependencies(),
                       steady_clock_,
                       metrics_,
                       token_backoff_,
                       [this] { return runtime_->requests().total(); },
                       [this] { return unit_random(); },
                       [this] { beat(); },
                       &stop_,
                       &known_state_};
  CycleOutcome outcome = run_cycle(context, desired_, trigger);
  // The wait until the next cycle is longer than servers keep idle
  // connections open; the daemon holds no API socket while it waits.
  runtime_->client().close_idle_connections();
  return outcome;
}

void Daemon::after_cycle(CycleOutcome& outcome, milliseconds duration) {
  std::vector<LogField> fields = {{"result", std::string(to_string(outcome.result))},
                                  {"trigger", outcome.trigger}};
  if (outcome.plan_mode) {
    fields.push_back({"mode", "plan"});
    fields.push_back({"pending", outcome.pending});
  } else {
    fields.push_back({"added", outcome.applied.add});
    fields.push_back({"changed", outcome.applied.change});
    fields.push_back({"destroyed", outcome.applied.destroy});
    fields.push_back({"rotated", outcome.applied.rotate});
    fields.push_back({"failed", outcome.failed});
    fields.push_back({"backing_off", outcome.backing_off});
  }
  fields.push_back({"drift", outcome.drift});
  fields.push_back({"duration", seconds_text(std::chrono::duration<double>(duration).count())});
  if (outcome.stopped) fields.push_back({"stopped", true});
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
  publish_cycle(outcome, duration);
  notify_status();
}

void Daemon::publish_loaded_config() {
  const spec::Config& config = desired_.config;
  const double interval = std::chrono::duration<double>(config.interval).count();
  metrics_.set(metric::kReconcileInterval, interval);
  metrics_.set(metric::kReloadSuccessful, 1);
  metrics_.set(metric::kReloadSuccessTimestamp,
               static_cast<double>(loaded_at_.time_since_epoch().count()));
  status_.update([&](StatusSnapshot& status) {
    status.organization_id = config.organization_id;
    status.mode = config.mode == spec::ReconcileMode::Apply ? "apply" : "plan";
    status.interval_seconds = interval;
    status.config_loaded_at = loaded_at_;
    status.last_reload_ok = true;
    status.reload_error.clear();
  });
}

void Daemon::publish_cycle(CycleOutcome& outcome, milliseconds duration) {
  auto runs = runtime_->store().runs(10);
  if (!runs.ok())
    logger().warn("cannot read run history for the status page",
                  {{"error", runs.error().describe()}});
  const Timestamp now = wall_clock_.now();
  status_.update([&](StatusSnapshot& status) {
    status.reconciled = true;
    status.last_cycle_at = now - std::chrono::duration_cast<std::chrono::seconds>(duration);
    status.last_result = std::string(to_string(outcome.result));
    status.last_trigger = outcome.trigger;
    status.last_duration_seconds = std::chrono::duration<double>(duration).count();
    status.last_summary = outcome.summary;
    status.last_error = outcome.error;
    status.next_cycle_at = stop_.load() || options_.once ? std::nullopt : next_cycle_at_;
    if (outcome.planned) {
      status.planned = true;
      status.plan_counts = outcome.plan_counts;
      status.plan_changes = outcome.plan_changes;
      status.drift = outcome.drift;
      // A token held back while it backs off keeps the failure that started it.
      std::map<std::string, std::string> failures;
      for (const TokenStatus& token : status.tokens)
        if (!token.failure.empty()) failures[token.address] = token.failure;
      status.tokens = std::move(outcome.tokens);
      for (TokenStatus& token : status.tokens)
        if (token.failure.empty() && token.retry_at) {
          auto previous = failures.find(token.address);
          if (previous != failures.end()) token.failure = previous->second;
        }
    }
    if (runs.ok()) status.history = std::move(runs.value());
  });
}

void Daemon::notify_status() {
  if (options_.once) return;
  std::string status = reload_note_;
  if (lease_) {
    std::lock_guard<std::mutex> guard(leader_mutex_);
    status += leader_ ? "Leader (epoch " + std::to_string(lease_->epoch()) + "); " : leader_note_;
    if (!leader_) status += "; ";
  }
  status += last_summary_;
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
  metrics_.set(metric::kReloadSuccessful, 0);
  status_.update([&](StatusSnapshot& status) {
    status.last_reload_ok = false;
    status.reload_error = diagnostics.empty() ? std::string("refused")
                                              : position_text(diagnostics.front().pos) + ": " +
                                                    diagnostics.front().message;
  });
  std::size_t n = diagnostics.size();
  reload_note_ = "Reload failed (" + std::to_string(n) + (n == 1 ? " error" : " errors") +
                 "), still running the configuration loaded at " + clock_text(loaded_at_) + ". ";
  logger().warn("configuration reload refused; the previous configuration stays in force",
                {{"errors", n}});

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
  if ((decision.move_lock || decision.changes.state) &&
      (lease_ || next.state_backend == spec::StateBackend::Postgres)) {
    refuse_reload(
        Error::invalid("changing [state] or [ha] of a daemon on a shared state needs a restart"));
    return false;
  }
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
    fenced_epoch_ = 0;  // the new runtime is fenced before its first cycle
    known_state_.reset();
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
  publish_loaded_config();

  std::vector<std::string> changed = decision.changes.names();
  if (decision.specs_changed) changed.push_back("tokens");
  logger().info("configuration reloaded",
                {{"trigger", trigger},
                 {"changed", changed.empty() ? "nothing" : join(changed, ",")},
                 {"tokens", desired_.tokens.size()}});
  notifier_.notify("READY=1\nSTATUS=Configuration reloaded; reconciling");
  return true;
}

Status run_daemon(spec::DesiredState desired, const DaemonOptions& options,
                  std::ostream& log_stream) {
  Daemon daemon(std::move(desired), options, log_stream);
  return daemon.run();
}

}  // namespace tokend::daemon
