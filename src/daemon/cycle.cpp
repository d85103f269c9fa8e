#include "daemon/cycle.h"

#include <algorithm>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "apply/history.h"
#include "daemon/text.h"

namespace tokend::daemon {

namespace {

using std::chrono::milliseconds;

bool unreachable(ErrorKind kind) {
  return kind == ErrorKind::Unavailable || kind == ErrorKind::Tls || kind == ErrorKind::RateLimited;
}

// Logs each change as it starts and ends; counts actions; keeps the
// watchdog fed. Called from apply's worker threads.
class CycleObserver final : public apply::ApplyObserver {
 public:
  CycleObserver(Logger& logger, MetricsRegistry& metrics, const std::function<void()>& beat)
      : logger_(logger), metrics_(metrics), beat_(beat) {}

  void started(const plan::Change& change) override {
    if (beat_) beat_();
    logger_.info("change started", {{"address", change.address()},
                                    {"action", std::string(plan::to_string(change.action))},
                                    {"rotate", change.rotate ? "true" : "false"}});
  }

  void finished(const plan::Change& change, const apply::ActionResult& result) override {
    if (beat_) beat_();
    std::string action(plan::to_string(result.action));
    metrics_.increment(metric::kActions,
                       {{"action", action}, {"result", result.ok ? "ok" : "failed"}});
    if (result.ok) {
      logger_.info("change applied", {{"address", change.address()},
                                      {"action", action},
                                      {"rotate", result.rotate ? "true" : "false"},
                                      {"id", result.token_id},
                                      {"duration", seconds_text(result.seconds)}});
    } else {
      metrics_.increment(metric::kErrors, {{"kind", std::string(to_string(result.error.kind))}});
      logger_.error("change failed", {{"address", change.address()},
                                      {"action", action},
                                      {"kind", std::string(to_string(result.error.kind))},
                                      {"error", result.error.describe()},
                                      {"duration", seconds_text(result.seconds)}});
    }
  }

 private:
  Logger& logger_;
  MetricsRegistry& metrics_;
  const std::function<void()>& beat_;
};

// The managed-token gauge and the nearest expiry, from state.
void update_state_gauges(CycleContext& context) {
  auto rows = context.deps.store.resources();
  if (!rows.ok()) {
    context.deps.logger.warn("cannot read state for metrics", {{"error", rows.error().describe()}});
    return;
  }
  context.metrics.set(metric::kManagedTokens, static_cast<double>(rows->size()));
  std::optional<Timestamp> nearest;
  for (const state::ResourceRecord& row : rows.value())
    if (row.end_at && (!nearest || *row.end_at < *nearest)) nearest = row.end_at;
  if (nearest)
    context.metrics.set(metric::kNearestExpiry,
                        static_cast<double>((*nearest - context.deps.clock.now()).count()));
  else
    context.metrics.remove(metric::kNearestExpiry);
}

// Runs a cycle up to its outcome; the caller finishes the history record.
class Cycle {
 public:
  Cycle(CycleContext& context, const spec::DesiredState& desired, const std::string& trigger)
      : context_(context),
        deps_(context.deps),
        config_(desired.config),
        desired_(desired),
        plan_mode_(desired.config.mode == spec::ReconcileMode::Plan),
        history_(deps_.store, deps_.clock, context.steady, deps_.logger, context.api_requests,
                 "run", trigger) {
    outcome_.trigger = trigger;
    outcome_.plan_mode = plan_mode_;
    when_ = clock_text(deps_.clock.now());
  }

  CycleOutcome run();

 private:
  Logger& logger() { return deps_.logger; }
  void beat() {
    if (context_.beat) context_.beat();
  }
  CycleOutcome planning_failed(const Error& error);
  CycleOutcome refused(const std::string& reason, const plan::Plan& plan);
  CycleOutcome report_only(const plan::Plan& plan);
  CycleOutcome apply(const apply::PreparedPlan& prepared);

  CycleContext& context_;
  apply::Dependencies& deps_;
  const spec::Config& config_;
  const spec::DesiredState& desired_;
  const bool plan_mode_;
  apply::RunRecorder history_;
  CycleOutcome outcome_;
  std::string when_;
};

CycleOutcome Cycle::run() {
  logger().info("reconcile started",
                {{"trigger", outcome_.trigger}, {"mode", plan_mode_ ? "plan" : "apply"}});
  auto prepared = apply::prepare_plan(deps_, desired_, apply::PlanRequest{});
  beat();
  if (!prepared.ok()) return planning_failed(prepared.error());

  const plan::Plan& plan = prepared->plan;
  history_.begin(plan);
  outcome_.run_id = history_.id();
  outcome_.drift = static_cast<int>(plan.drift.size());
  outcome_.pending = static_cast<int>(plan.changes.size());
  for (const plan::Drift& drift : plan.drift)
    logger().warn("changed outside astro-tokend",
                  {{"address", address_for_key(drift.key)},
                   {"drift", drift.kind == plan::Drift::Kind::Deleted ? "deleted" : "changed"}});

  std::vector<std::string> refusals;
  for (const spec::Diagnostic& diagnostic : prepared->diagnostics) {
    logger().error("spec refers to something that does not exist",
                   {{"at", position_text(diagnostic.pos)}, {"error", diagnostic.message}});
    refusals.push_back(diagnostic.message);
  }
  for (const std::string& error : plan.errors) {
    logger().error("plan error", {{"error", error}});
    refusals.push_back(error);
  }
  if (plan_mode_ && refusals.empty()) return report_only(plan);
  if (!refusals.empty()) {
    if (!plan_mode_)
      logger().error("reconcile refused; nothing was changed",
                     {{"errors", std::to_string(refusals.size())}});
    return refused(refusals.front(), plan);
  }
  return apply(prepared.value());
}

CycleOutcome Cycle::planning_failed(const Error& error) {
  context_.metrics.increment(metric::kErrors, {{"kind", std::string(to_string(error.kind))}});
  outcome_.result = CycleResult::Failure;
  outcome_.unreachable = unreachable(error.kind);
  outcome_.error = error.describe();
  if (error.kind == ErrorKind::Unauthorized || error.kind == ErrorKind::Forbidden) {
    logger().error(
        "the Astro API refused the daemon's credentials; check the API token and its role",
        {{"kind", std::string(to_string(error.kind))}, {"error", error.describe()}});
  } else {
    logger().error("reconcile failed",
                   {{"kind", std::string(to_string(error.kind))}, {"error", error.describe()}});
  }
  outcome_.summary = "Last reconcile " + when_ + " failed: " + error.describe();
  history_.finish(state::RunResult::Failed, 0, "planning failed: " + error.describe());
  outcome_.run_id = history_.id();
  return outcome_;
}

CycleOutcome Cycle::refused(const std::string& reason, const plan::Plan& plan) {
  context_.metrics.set(metric::kDriftedTokens, static_cast<double>(plan.changes.size()));
  update_state_gauges(context_);
  outcome_.result = CycleResult::Refused;
  outcome_.error = reason;
  outcome_.summary =
      std::string(plan_mode_ ? "Last check " : "Last reconcile ") + when_ + " refused: " + reason;
  history_.finish(state::RunResult::Refused, 0, reason);
  return outcome_;
}

CycleOutcome Cycle::report_only(const plan::Plan& plan) {
  for (const plan::Change& change : plan.changes)
    logger().info("change pending (plan mode)",
                  {{"address", change.address()},
                   {"action", std::string(plan::to_string(change.action))},
                   {"rotate", change.rotate ? "true" : "false"}});
  context_.metrics.set(metric::kDriftedTokens, static_cast<double>(plan.changes.size()));
  update_state_gauges(context_);
  outcome_.summary = "Last check " + when_ +
                     " (plan mode): " + std::to_string(plan.changes.size()) + " changes pending (" +
                     counts_text(plan.counts()) + ")";
  history_.finish(plan.empty() ? state::RunResult::NoOp : state::RunResult::Planned, 0,
                  plan.empty() ? "" : "plan mode: nothing was applied");
  return outcome_;
}

CycleOutcome Cycle::apply(const apply::PreparedPlan& prepared) {
  const plan::Plan& plan = prepared.plan;
  // Leave out tokens that are backing off; never hold back the others.
  const SteadyTime now = context_.steady.now();
  apply::PreparedPlan filtered;
  filtered.recovery = prepared.recovery;
  filtered.dropped_intents = prepared.dropped_intents;
  filtered.plan = plan;
  filtered.plan.changes.clear();
  std::set<std::string> pending_keys;
  for (const plan::Change& change : plan.changes) {
    pending_keys.insert(change.key);
    if (context_.backoff.holds(change.key, now)) {
      ++outcome_.backing_off;
      auto until = *context_.backoff.until(change.key);
      logger().info(
          "change held back while its token backs off",
          {{"address", change.address()},
           {"action", std::string(plan::to_string(change.action))},
           {"retry_in", rounded_duration(std::chrono::duration_cast<milliseconds>(until - now))}});
      continue;
    }
    filtered.plan.changes.push_back(change);
  }
  context_.backoff.forget_settled(pending_keys, now);

  if (context_.stop != nullptr && context_.stop->load()) {
    outcome_.stopped = true;
    outcome_.summary = "Stopped before applying";
    history_.finish(state::RunResult::Failed, 0, "stopped by a signal before applying");
    return outcome_;
  }

  const bool nothing_to_do = filtered.plan.changes.empty() && filtered.recovery.empty() &&
                             filtered.dropped_intents.empty();
  apply::ApplyReport report;
  if (!nothing_to_do) {
    apply::ApplyOptions options;
    options.parallelism = config_.parallelism;
    options.max_deletes_per_run = config_.max_deletes_per_run;
    options.allow_mass_delete = false;
    options.stop = context_.stop;
    options.run_id = history_.id();
    CycleObserver observer(logger(), context_.metrics, context_.beat);
    report = apply::apply_plan(deps_, filtered, options, &observer);
    for (const apply::ActionResult& result : report.results) {
      if (result.ok)
        context_.backoff.record_success(result.key);
      else
        context_.backoff.record_failure(result.key, context_.steady.now(),
                                        context_.unit_random ? context_.unit_random() : 0.5);
    }
  }

  int applied_ok = 0;
  for (const apply::ActionResult& result : report.results)
    if (result.ok) ++applied_ok;
  context_.metrics.set(
      metric::kDriftedTokens,
      static_cast<double>(std::max<int>(0, static_cast<int>(plan.changes.size()) - applied_ok)));
  update_state_gauges(context_);
  outcome_.applied = report.applied;
  outcome_.failed = report.failed;
  outcome_.stopped = report.stopped;

  if (report.refused) {
    outcome_.result = CycleResult::Refused;
    outcome_.error = report.refusal;
    outcome_.summary = "Last reconcile " + when_ + " refused: " + report.refusal;
    logger().error("reconcile refused; nothing was changed", {{"reason", report.refusal}});
    history_.finish(state::RunResult::Refused, 0, report.refusal);
    return outcome_;
  }
  if (report.failed > 0) {
    outcome_.result = CycleResult::Failure;
    outcome_.error =
        std::to_string(report.failed) + (report.failed == 1 ? " change" : " changes") + " failed";
  }
  outcome_.summary = "Last reconcile " + when_ + ": " + counts_text(report.applied);
  if (report.failed > 0) outcome_.summary += ", " + std::to_string(report.failed) + " failed";
  if (outcome_.backing_off > 0)
    outcome_.summary += ", " + std::to_string(outcome_.backing_off) + " backing off";

  std::string message;
  if (report.stopped) message = "stopped by a signal before every change ran";
  if (outcome_.backing_off > 0)
    message += std::string(message.empty() ? "" : "; ") + std::to_string(outcome_.backing_off) +
               " held back while backing off";
  state::RunResult result = state::RunResult::Ok;
  if (report.failed > 0 || report.stopped)
    result = state::RunResult::Failed;
  else if (plan.empty() && nothing_to_do)
    result = state::RunResult::NoOp;
  history_.finish(result, report.failed, message);
  return outcome_;
}

}  // namespace

std::string_view to_string(CycleResult result) {
  switch (result) {
    case CycleResult::Success:
      return "success";
    case CycleResult::Failure:
      return "failure";
    case CycleResult::Refused:
      return "refused";
  }
  return "failure";
}

CycleOutcome run_cycle(CycleContext& context, const spec::DesiredState& desired,
                       const std::string& trigger) {
  return Cycle(context, desired, trigger).run();
}

}  // namespace tokend::daemon
