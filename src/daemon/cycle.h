// One reconcile cycle of the daemon, as a unit that the loop calls and that
// tests drive in-process with FakeClient, a ":memory:" store and MemorySink:
// plan against the organization, hold back the tokens that are backing off,
// apply the rest (or, in plan mode, only report them), record the run in
// history, and update the metrics a cycle owns.
//
// The loop (daemon.cpp) keeps what spans cycles: scheduling and the
// whole-cycle backoff, reloads, signals, notifications and the final
// "reconcile finished" line.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "apply/engine.h"
#include "daemon/metrics.h"
#include "daemon/schedule.h"
#include "daemon/status.h"
#include "plan/plan.h"
#include "spec/model.h"
#include "util/clock.h"

namespace tokend::daemon {

enum class CycleResult { Success, Failure, Refused };
// "success", "failure", "refused" (the result label of reconciles_total).
std::string_view to_string(CycleResult result);

struct CycleOutcome {
  CycleResult result = CycleResult::Success;
  bool unreachable = false;  // the API could not be reached: back off the whole cycle
  std::string summary;       // for STATUS=, without the "next in" part
  std::string error;         // when not Success
  std::string trigger;
  bool plan_mode = false;
  plan::Counts applied;      // apply mode: what completed
  int failed = 0;            // apply mode: changes that failed
  int pending = 0;           // changes the plan found (before any was held back)
  int backing_off = 0;       // changes held back because their token backs off
  int rotations_capped = 0;  // sink rotations held back by max_rotations_per_run
  int held_back = 0;         // tokens held back because their sink could not be read
  int hooks_failed = 0;      // delivery hooks that failed (or could not run)
  int drift = 0;             // tokens changed outside astro-tokend
  bool stopped = false;      // `stop` was raised before every change ran
  int64_t run_id = 0;        // the run in history; 0 when it could not be recorded
  // For the status page. `planned` false when planning failed: then the
  // plan and the tokens below are unknown (the page keeps what it had).
  bool planned = false;
  plan::Counts plan_counts;
  std::vector<PlannedChange> plan_changes;
  std::vector<TokenStatus> tokens;  // every managed token after the cycle, by address
};

// What a cycle works with; owned by the caller, outliving the call.
struct CycleContext {
  apply::Dependencies deps;                 // API client, state store, sink, wall clock, logger
  const MonotonicClock& steady;             // backoff, durations
  MetricsRegistry& metrics;                 // declared with declare_daemon_metrics
  TokenBackoff& backoff;                    // per-token backoff, kept across cycles
  std::function<int()> api_requests;        // the process's API request count so far
  std::function<double()> unit_random;      // uniform in [0, 1): backoff jitter
  std::function<void()> beat;               // called as work progresses (watchdog); may be empty
  const std::atomic<bool>* stop = nullptr;  // raised: no new change starts
  // Kept across cycles (may be null): the state a cycle planned from when it
  // wrote nothing, so that the next cycle reads it again only if the state's
  // serial moved (apply::PlanRequest::known).
  std::optional<state::StateSnapshot>* known_state = nullptr;
};

// Runs one cycle for `desired` (already validated), started by `trigger`
// ("startup", "timer", "config-change", "sighup", "leadership"). Never throws; every
// failure is in the outcome:
//   - planning failed (API error): Failure, `unreachable` when the API could
//     not be reached (Unavailable, Tls, RateLimited); nothing applied;
//   - the specs name workspaces or deployments that do not exist, or the plan
//     has errors (prevent_destroy…): Refused, nothing applied;
//   - plan mode (config.mode): the changes are logged and counted, nothing
//     applied; Success;
//   - apply mode: changes of tokens that back off at steady.now() are held
//     back (the others never wait for them); the rest are applied with the
//     config's parallelism and max_deletes_per_run (the mass-delete guard is
//     never lifted here: a refusal is Refused); rotations because a sink file
//     is missing or changed beyond max_rotations_per_run wait for the next
//     cycle (a new leader on hosts that do not share sinks would otherwise
//     rotate everything at once); each failed change backs its
//     token off, each success clears it; pending delivery hooks of tokens
//     that do not back off run again; Failure when a change or a delivery
//     hook failed, or a token was held back because its sink could not be
//     read (each such token counts as an error and is recorded in history
//     as action "hold"). A failed hook does not back its token off.
// Every cycle that planned is recorded in history (command "run"; no-op,
// planned, ok, failed or refused); a cycle whose planning failed is recorded
// as failed. Sets the drifted- and managed-token gauges, the nearest expiry,
// the per-token expiry, last-rotation and rotation-due gauges (for exactly
// the tokens in state), the action and error counters, and starts the
// delivery-hook failure counter of each managed token at 0; the caller
// counts the reconcile itself. Drift is logged with the attributes changed
// ("changed outside astro-tokend" address=… drift=changed attributes=name,roles).
// Plans from context.known_state when it is still current, and leaves there
// the state of a cycle that changed no state (nothing otherwise).
CycleOutcome run_cycle(CycleContext& context, const spec::DesiredState& desired,
                       const std::string& trigger);

}  // namespace tokend::daemon
