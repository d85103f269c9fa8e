#include "daemon/cycle.h"

#include <algorithm>
#include <map>
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
                                    {"rotate", change.rotate}});
  }

  void finished(const plan::Change& change, const apply::ActionResult& result) override {
    if (beat_) beat_();
    std::string action(plan::to_string(result.action));
    metrics_.increment(metric::kActions,
                       {{"action", action}, {"result", result.ok ? "ok" : "failed"}});
    if (result.ok) {
      logger_.info("change applied", {{"address", change.address()},
                                      {"action", action},
                                      {"rotate", result.rotate},
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

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : separator) + item;
  return out;
}

double unix_seconds(Timestamp t) { return static_cast<double>(t.time_since_epoch().count()); }

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
  CycleOutcome act(const apply::PreparedPlan& prepared);
  void keep_rows(apply::PreparedPlan& prepared);
  Logger& logger() { return deps_.logger; }
  void beat() {
    if (context_.beat) context_.beat();
  }
  void note_plan(const plan::Plan& plan);
  void update_tokens(const std::map<std::string, std::string>& failures,
                     const std::set<std::string>& applied);
  CycleOutcome planning_failed(const Error& error);
  CycleOutcome refused(const std::string& reason, const plan::Plan& plan);
  CycleOutcome report_only(const plan::Plan& plan);
  CycleOutcome apply(const apply::PreparedPlan& prepared);
  void report_held_back(const apply::PreparedPlan& prepared);
  void count_hooks(const apply::ApplyReport& report);

  CycleContext& context_;
  apply::Dependencies& deps_;
  const spec::Config& config_;
  const spec::DesiredState& desired_;
  const bool plan_mode_;
  apply::RunRecorder history_;
  CycleOutcome outcome_;
  std::vector<apply::HeldBack> prepared_held_back_;  // once planned
  std::string when_;
  const plan::Plan* plan_ = nullptr;  // once planned
  // What state holds while the cycle has written nothing (once planned, and
  // only when the plan resolved no intent); update_tokens() reads state
  // otherwise.
  const std::vector<state::ResourceRecord>* unchanged_rows_ = nullptr;
};

void Cycle::note_plan(const plan::Plan& plan) {
  plan_ = &plan;
  outcome_.planned = true;
  outcome_.plan_counts = plan.counts();
  for (const plan::Change& change : plan.changes)
    outcome_.plan_changes.push_back(PlannedChange{
        change.address(), std::string(plan::to_string(change.action)), change.rotate});
}

// After the cycle: the managed-token gauge, the nearest expiry, the per-token
// gauges and the tokens' status, all from state as the cycle left it.
// `failures` holds the keys whose change failed (with the error), `applied`
// those whose change completed.
void Cycle::update_tokens(const std::map<std::string, std::string>& failures,
                          const std::set<std::string>& applied) {
  std::optional<Result<std::vector<state::ResourceRecord>>> read;
  if (unchanged_rows_ == nullptr) {
    read = deps_.store.resources();
    if (!read->ok()) {
      logger().warn("cannot read state for metrics", {{"error", read->error().describe()}});
      return;
    }
  }
  const std::vector<state::ResourceRecord>& rows =
      unchanged_rows_ != nullptr ? *unchanged_rows_ : read->value();
  context_.metrics.set(metric::kManagedTokens, static_cast<double>(rows.size()));
  const Timestamp now = deps_.clock.now();
  const SteadyTime steady_now = context_.steady.now();
  std::optional<Timestamp> nearest;
  // Rows come sorted by key, so each gauge's samples go in at the end.
  std::map<MetricLabels, double> expiry, last_rotation, rotation_due;
  std::vector<MetricLabels> hook_series;
  hook_series.reserve(rows.size());
  std::map<std::string_view, const plan::Change*> changes;
  std::map<std::string_view, const plan::Drift*> drifts;
  if (plan_ != nullptr) {
    for (const plan::Change& change : plan_->changes) changes[change.key] = &change;
    for (const plan::Drift& drift : plan_->drift) drifts[drift.key] = &drift;
  }
  outcome_.tokens.reserve(rows.size());

  // desired_.tokens is sorted by key as well: one forward walk finds each row's spec.
  auto spec = desired_.tokens.begin();
  for (const state::ResourceRecord& row : rows) {
    TokenStatus token;
    token.address = row.address();
    MetricLabels labels = {{"address", token.address}};
    token.id = row.id;
    token.name = row.attrs.name;
    token.type = row.attrs.type;
    token.kind = row.attrs.kind;
    token.role = row.attrs.role;
    token.roles = row.attrs.roles;
    token.expires_at = row.end_at;
    token.last_rotation =
        row.start_at.time_since_epoch().count() != 0 ? row.start_at : row.created_at;
    if (row.end_at) {
      expiry.emplace_hint(expiry.end(), labels, unix_seconds(*row.end_at));
      if (!nearest || *row.end_at < *nearest) nearest = row.end_at;
    }
    last_rotation.emplace_hint(last_rotation.end(), labels, unix_seconds(*token.last_rotation));
    while (spec != desired_.tokens.end() && spec->key < row.key) ++spec;
    if (spec != desired_.tokens.end() && spec->key == row.key) {
      token.next_rotation = plan::next_rotation(*spec, row);
      if (token.next_rotation)
        rotation_due.emplace_hint(rotation_due.end(), labels, unix_seconds(*token.next_rotation));
    }
    hook_series.push_back(std::move(labels));

    // What is still to do for it: changes that did not complete.
    const bool settled = applied.count(row.key) > 0;
    if (auto change = changes.find(row.key); change != changes.end() && !settled)
      token.pending =
          std::string(plan::to_string(change->second->action)) +
          (change->second->rotate && change->second->action != plan::Action::Rotate ? " and rotate"
                                                                                    : "");
    if (auto drift = drifts.find(row.key); drift != drifts.end() && !settled) {
      token.drifted = plan::drifted_attributes(*drift->second);
      token.deleted_outside = drift->second->kind == plan::Drift::Kind::Deleted;
    }
    if (auto failure = failures.find(row.key); failure != failures.end())
      token.failure = failure->second;
    if (auto until = context_.backoff.until(row.key); until && *until > steady_now)
      token.retry_at = now + std::chrono::duration_cast<std::chrono::seconds>(*until - steady_now);
    outcome_.tokens.push_back(std::move(token));
  }
  // Every managed token has a hook-failure series, 0 until its hook first fails.
  context_.metrics.add_missing(metric::kDeliveryHookFailures, hook_series);
  if (nearest)
    context_.metrics.set(metric::kNearestExpiry, static_cast<double>((*nearest - now).count()));
  else
    context_.metrics.remove(metric::kNearestExpiry);
  context_.metrics.set_all(metric::kTokenExpiry, std::move(expiry));
  context_.metrics.set_all(metric::kTokenLastRotation, std::move(last_rotation));
  context_.metrics.set_all(metric::kTokenRotationDue, std::move(rotation_due));
}

CycleOutcome Cycle::run() {
  logger().info("reconcile started",
                {{"trigger", outcome_.trigger}, {"mode", plan_mode_ ? "plan" : "apply"}});
  apply::PlanRequest request;
  request.known = context_.known_state;
  request.record_unchanged = false;  // nothing here shows or saves them
  auto prepared = apply::prepare_plan(deps_, desired_, request);
  beat();
  if (!prepared.ok()) return planning_failed(prepared.error());
  if (prepared->recovery.empty()) unchanged_rows_ = &prepared->prior;
  CycleOutcome outcome = act(*prepared);
  keep_rows(*prepared);
  return outcome;
}

// Leaves the rows planned from for the next cycle when this one changed no
// state: nothing applied, no intent resolved, the serial where it was.
void Cycle::keep_rows(apply::PreparedPlan& prepared) {
  if (context_.known_state == nullptr || unchanged_rows_ == nullptr) return;
  if (deps_.store.serial() != prepared.plan.serial) return;
  *context_.known_state =
      state::StateSnapshot{prepared.plan.lineage, prepared.plan.serial, std::move(prepared.prior)};
}

CycleOutcome Cycle::act(const apply::PreparedPlan& prepared) {
  const plan::Plan& plan = prepared.plan;
  history_.begin(plan);
  outcome_.run_id = history_.id();
  report_held_back(prepared);
  outcome_.drift = static_cast<int>(plan.drift.size());
  outcome_.pending = static_cast<int>(plan.changes.size());
  note_plan(plan);
  for (const plan::Drift& drift : plan.drift) {
    std::vector<LogField> fields = {
        {"address", address_for_key(drift.key)},
        {"drift", drift.kind == plan::Drift::Kind::Deleted ? "deleted" : "changed"}};
    if (drift.kind == plan::Drift::Kind::Changed)
      fields.emplace_back("attributes", join(plan::drifted_attributes(drift), ","));
    logger().log(LogLevel::Warn, "changed outside astro-tokend", fields);
  }

  std::vector<std::string> refusals;
  for (const spec::Diagnostic& diagnostic : prepared.diagnostics) {
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
      logger().error("reconcile refused; nothing was changed", {{"errors", refusals.size()}});
    return refused(refusals.front(), plan);
  }
  return apply(prepared);
}

// Tokens whose sink could not be read: an error each (logged by prepare),
// counted, recorded in the run's history; never applied this cycle.
void Cycle::report_held_back(const apply::PreparedPlan& prepared) {
  outcome_.held_back = static_cast<int>(prepared.held_back.size());
  prepared_held_back_ = prepared.held_back;
  for (const apply::HeldBack& held : prepared.held_back) {
    context_.metrics.increment(metric::kErrors,
                               {{"kind", std::string(to_string(held.error.kind))}});
    if (history_.id() == 0) continue;
    state::ActionRecord action{
        held.address(), "hold", false,
        held.error.describe() + (held.unwritable
                                     ? "; the token was held back, neither created nor rotated"
                                     : "; the token was held back, not rotated"),
        0};
    if (Status recorded = deps_.store.record_action(history_.id(), action); !recorded.ok())
      logger().warn("cannot record the action in run history",
                    {{"error", recorded.error().describe()}});
  }
}

// The failed delivery hooks of `report`, by token.
void Cycle::count_hooks(const apply::ApplyReport& report) {
  outcome_.hooks_failed = report.hooks_failed;
  for (const apply::HookReport& hook : report.hooks)
    if (!hook.ok)
      context_.metrics.increment(metric::kDeliveryHookFailures, {{"address", hook.address()}});
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
  return std::move(outcome_);
}

CycleOutcome Cycle::refused(const std::string& reason, const plan::Plan& plan) {
  context_.metrics.set(metric::kDriftedTokens, static_cast<double>(plan.changes.size()));
  update_tokens({}, {});
  outcome_.result = CycleResult::Refused;
  outcome_.error = reason;
  outcome_.summary =
      std::string(plan_mode_ ? "Last check " : "Last reconcile ") + when_ + " refused: " + reason;
  history_.finish(state::RunResult::Refused, 0, reason);
  return std::move(outcome_);
}

CycleOutcome Cycle::report_only(const plan::Plan& plan) {
  for (const plan::Change& change : plan.changes)
    logger().info("change pending (plan mode)",
                  {{"address", change.address()},
                   {"action", std::string(plan::to_string(change.action))},
                   {"rotate", change.rotate}});
  context_.metrics.set(metric::kDriftedTokens, static_cast<double>(plan.changes.size()));
  update_tokens({}, {});
  outcome_.summary = "Last check " + when_ +
                     " (plan mode): " + std::to_string(plan.changes.size()) + " changes pending (" +
                     counts_text(plan.counts()) + ")";
  history_.finish(plan.empty() ? state::RunResult::NoOp : state::RunResult::Planned, 0,
                  plan.empty() ? "" : "plan mode: nothing was applied");
  return std::move(outcome_);
}

CycleOutcome Cycle::apply(const apply::PreparedPlan& prepared) {
  const plan::Plan& plan = prepared.plan;
  // Leave out tokens that are backing off; never hold back the others.
  const SteadyTime now = context_.steady.now();
  // What to apply of the plan; the plan itself (with its rows) is copied
  // only when there is something to apply.
  std::vector<plan::Change> to_apply;
  std::vector<apply::PendingDelivery> deliveries;
  for (const apply::PendingDelivery& pending : prepared.deliveries)
    if (!context_.backoff.holds(pending.key, now)) deliveries.push_back(pending);
  std::set<std::string> pending_keys;
  int sink_rotations = 0;
  for (const plan::Change& change : plan.changes) {
    pending_keys.insert(change.key);
    // A new leader that does not see its predecessor's sink files would
    // rotate every token at once: rotations for lost sinks are capped.
    if (change.rotate &&
        (change.rotate_reason == plan::RotateReason::SinkMissing ||
         change.rotate_reason == plan::RotateReason::SinkMismatch) &&
        ++sink_rotations > config_.max_rotations_per_run) {
      ++outcome_.rotations_capped;
      logger().warn("rotation held back: max_rotations_per_run reached",
                    {{"address", change.address()},
                     {"reason", std::string(plan::to_string(change.rotate_reason))},
                     {"max_rotations_per_run", std::to_string(config_.max_rotations_per_run)}});
      continue;
    }
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
    to_apply.push_back(change);
  }
  context_.backoff.forget_settled(pending_keys, now);

  if (context_.stop != nullptr && context_.stop->load()) {
    outcome_.stopped = true;
    outcome_.summary = "Stopped before applying";
    history_.finish(state::RunResult::Failed, 0, "stopped by a signal before applying");
    return std::move(outcome_);
  }

  const bool nothing_to_do = to_apply.empty() && prepared.recovery.empty() &&
                             prepared.dropped_intents.empty() && deliveries.empty();
  apply::ApplyReport report;
  if (!nothing_to_do) {
    unchanged_rows_ = nullptr;
    apply::PreparedPlan filtered;
    filtered.recovery = prepared.recovery;
    filtered.dropped_intents = prepared.dropped_intents;
    filtered.unsettled = prepared.unsettled;
    filtered.late = prepared.late;
    filtered.deliveries = std::move(deliveries);
    filtered.plan = plan;
    filtered.plan.changes = std::move(to_apply);
    apply::ApplyOptions options;
    options.parallelism = config_.parallelism;
    options.max_deletes_per_run = config_.max_deletes_per_run;
    options.allow_mass_delete = false;
    options.stop = context_.stop;
    options.run_id = history_.id();
    options.hook_timeout = config_.hook_timeout;
    options.settle_window = apply::settle_window_for(config_.timeout);
    options.settle_wait = options.settle_window;
    CycleObserver observer(logger(), context_.metrics, context_.beat);
    report = apply::apply_plan(deps_, filtered, options, &observer);
    count_hooks(report);
    for (const apply::ActionResult& result : report.results) {
      if (result.ok)
        context_.backoff.record_success(result.key);
      else
        context_.backoff.record_failure(result.key, context_.steady.now(),
                                        context_.unit_random ? context_.unit_random() : 0.5);
    }
  }

  int applied_ok = 0;
  std::map<std::string, std::string> failures;
  std::set<std::string> applied;
  for (const apply::ActionResult& result : report.results) {
    if (result.ok) {
      ++applied_ok;
      applied.insert(result.key);
    } else {
      failures[result.key] = result.error.describe();
    }
  }
  context_.metrics.set(
      metric::kDriftedTokens,
      static_cast<double>(std::max<int>(0, static_cast<int>(plan.changes.size()) - applied_ok)));
  update_tokens(failures, applied);
  outcome_.applied = report.applied;
  outcome_.failed = report.failed;
  outcome_.stopped = report.stopped;

  if (report.refused) {
    outcome_.result = CycleResult::Refused;
    outcome_.error = report.refusal;
    outcome_.summary = "Last reconcile " + when_ + " refused: " + report.refusal;
    logger().error("reconcile refused; nothing was changed", {{"reason", report.refusal}});
    history_.finish(state::RunResult::Refused, 0, report.refusal);
    return std::move(outcome_);
  }
  std::vector<std::string> problems;
  if (report.failed > 0)
    problems.push_back(std::to_string(report.failed) +
                       (report.failed == 1 ? " change" : " changes") + " failed");
  if (report.hooks_failed > 0)
    problems.push_back(std::to_string(report.hooks_failed) +
                       (report.hooks_failed == 1 ? " delivery hook" : " delivery hooks") +
                       " failed");
  if (outcome_.held_back > 0)
    problems.push_back(std::to_string(outcome_.held_back) +
                       (outcome_.held_back == 1 ? " token" : " tokens") + " held back (" +
                       apply::held_back_reason(prepared_held_back_) + ")");
  if (!problems.empty()) {
    outcome_.result = CycleResult::Failure;
    for (const std::string& problem : problems)
      outcome_.error += (outcome_.error.empty() ? "" : ", ") + problem;
  }
  outcome_.summary = "Last reconcile " + when_ + ": " + counts_text(report.applied);
  for (const std::string& problem : problems) outcome_.summary += ", " + problem;
  if (outcome_.backing_off > 0)
    outcome_.summary += ", " + std::to_string(outcome_.backing_off) + " backing off";
  if (outcome_.rotations_capped > 0)
    outcome_.summary += ", " + std::to_string(outcome_.rotations_capped) +
                        " rotations held back (max_rotations_per_run)";

  std::string message;
  if (report.stopped) message = "stopped by a signal before every change ran";
  if (outcome_.backing_off > 0)
    message += std::string(message.empty() ? "" : "; ") + std::to_string(outcome_.backing_off) +
               " held back while backing off";
  if (outcome_.rotations_capped > 0)
    message += std::string(message.empty() ? "" : "; ") +
               std::to_string(outcome_.rotations_capped) +
               " rotations of missing or changed sinks held back by max_rotations_per_run = " +
               std::to_string(config_.max_rotations_per_run);
  state::RunResult result = state::RunResult::Ok;
  if (report.failed > 0 || report.stopped || !problems.empty())
    result = state::RunResult::Failed;
  else if (plan.empty() && nothing_to_do)
    result = state::RunResult::NoOp;
  history_.finish(result, report.failed, message);
  return std::move(outcome_);
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
