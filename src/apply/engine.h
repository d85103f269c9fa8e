// apply/ — turns a Plan into API calls and state, safely (product.md §4):
// prepares plans (refresh through the API seam, intent recovery, sink
// checks), executes them in parallel under the client's rate limits, commits
// each outcome in its own transaction, and delivers secrets to their sinks.
//
// May not: decide what to change (that is plan::compute), parse specs, or
// speak HTTP/SQL directly (it goes through astro::Client and StateStore).
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "apply/sink.h"
#include "astro/client.h"
#include "plan/plan.h"
#include "spec/model.h"
#include "state/store.h"
#include "util/clock.h"
#include "util/log.h"

namespace tokend::apply {

// The seams a reconcile works through. Owned by the caller; must outlive the
// calls that use them. All are thread-safe.
struct Dependencies {
  astro::Client& client;
  state::StateStore& store;
  SecretSink& sink;
  const Clock& clock;
  Logger& logger;
};

// ---- planning --------------------------------------------------------------

struct PlanRequest {
  bool refresh = true;               // false: trust state (--refresh=false)
  std::vector<std::string> targets;  // addresses; empty = all
  bool check_entities = true;        // look up every workspace/deployment id the specs use
};

struct PreparedPlan {
  plan::Plan plan;
  // Pending intents resolved in memory (adoptions and drops). prepare_plan
  // never writes state; apply_plan commits these before executing.
  std::vector<state::Outcome> recovery;
  std::vector<int64_t> dropped_intents;  // intents that came to nothing
  // Workspace or deployment ids the specs use that do not exist in the
  // organization, one per (token, entity), at the token's position.
  std::vector<spec::Diagnostic> diagnostics;
};

// Computes a plan without changing anything anywhere: reads state, resolves
// pending intents in memory, lists the organization's tokens (page by page)
// unless request.refresh is false (a refresh is forced while intents are
// pending), checks entity ids with one lookup per kind, fingerprints sinks,
// then calls plan::compute. API failures come back as the client's Error.
Result<PreparedPlan> prepare_plan(Dependencies& deps, const spec::DesiredState& desired,
                                  const PlanRequest& request);

// ---- applying --------------------------------------------------------------

struct ActionResult {
  std::string key;
  plan::Action action = plan::Action::Create;
  bool rotate = false;
  bool ok = true;
  Error error;            // when !ok
  double seconds = 0;     // wall time of the action
  std::string token_id;   // the resulting (or deleted) token id
};

// Progress callbacks, called from worker threads (implementations must be
// thread-safe). `started` before the first API call of a change; `finished`
// after its outcome is committed (or failed).
class ApplyObserver {
 public:
  virtual ~ApplyObserver() = default;
  virtual void started(const plan::Change& change) = 0;
  virtual void finished(const plan::Change& change, const ActionResult& result) = 0;
};

struct ApplyOptions {
  int parallelism = 4;
  int max_deletes_per_run = 5;
  bool allow_mass_delete = false;
  // When it becomes true, no new change starts; changes in flight finish their
  // current call, commit what they know, and apply_plan returns.
  const std::atomic<bool>* stop = nullptr;
  int64_t run_id = 0;  // when non-zero, each action is recorded in that run's history
};

struct ApplyReport {
  plan::Counts applied;  // what completed, counted like Plan::counts
  int failed = 0;
  bool refused = false;     // nothing was done (mass-delete guard, plan errors)
  std::string refusal;      // why, for the operator
  bool stopped = false;     // `stop` was raised before every change ran
  std::vector<ActionResult> results;  // in completion order

  bool ok() const { return !refused && failed == 0; }
};

// Executes exactly `prepared.plan` (after committing prepared.recovery):
// refuses (changing nothing) when the plan has errors, or when it deletes
// more than max_deletes_per_run tokens or every managed token, unless
// allow_mass_delete. Runs changes on up to `parallelism` workers; journals an
// intent before each create and rotate; writes each new secret to its sink
// before committing; commits each outcome in its own transaction. A failing
// change does not stop the others.
ApplyReport apply_plan(Dependencies& deps, const PreparedPlan& prepared, const ApplyOptions& options,
                       ApplyObserver* observer = nullptr);

}  // namespace tokend::apply
