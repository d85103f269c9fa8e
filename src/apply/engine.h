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
#include <set>
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

// Workspace and deployment ids known to exist in the organization.
struct KnownEntities {
  std::set<std::string> workspaces;
  std::set<std::string> deployments;
};

// The ids that refreshed tokens hold roles on (none when `observed` was not
// refreshed). The API keeps no role on an entity that does not exist, so a
// role it reports is proof that its entity exists.
KnownEntities entities_in_use(const plan::Observed& observed);

// Checks that every workspace and deployment id the specs' roles use exists
// in the organization: ids in `known` count as existing; the others are
// looked up with at most one paginated lookup per kind for the whole spec set
// (none for a kind with nothing to look up). Returns one diagnostic per
// (token, missing id) at the token's position, e.g.
//   astro_api_token.k: workspace "X" does not exist in organization ORG
// or the client's Error when a lookup fails.
Result<std::vector<spec::Diagnostic>> check_entities(astro::Client& client,
                                                     const spec::DesiredState& desired,
                                                     const KnownEntities& known = {});

// Computes a plan without changing anything anywhere: reads state, resolves
// pending intents in memory, lists the organization's tokens (page by page)
// unless request.refresh is false (a refresh is forced while intents are
// pending), checks entity ids (check_entities, trusting entities_in_use of
// the listing, so ids that listed tokens already hold roles on cost no
// lookup), fingerprints sinks, then calls plan::compute. API failures come
// back as the client's Error.
Result<PreparedPlan> prepare_plan(Dependencies& deps, const spec::DesiredState& desired,
                                  const PlanRequest& request);

// ---- applying --------------------------------------------------------------

struct ActionResult {
  std::string key;
  plan::Action action = plan::Action::Create;
  bool rotate = false;
  bool ok = true;
  Error error;           // when !ok
  double seconds = 0;    // wall time of the action
  std::string token_id;  // the resulting (or deleted) token id
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
  bool refused = false;               // nothing was done (mass-delete guard, plan errors)
  std::string refusal;                // why, for the operator
  bool stopped = false;               // `stop` was raised before every change ran
  std::vector<ActionResult> results;  // in completion order

  bool ok() const { return !refused && failed == 0; }
};

// Executes exactly `prepared.plan`.
//
// Refusal. Nothing is changed (no API call, no state write, not even the
// recovery commit) and `refused` is set, with `refusal` saying why, when
// plan.errors is non-empty; or, unless allow_mass_delete, when the plan
// deletes (Action::Delete, deposed keys included) more than
// max_deletes_per_run tokens, or deletes every managed token (some Delete,
// and the Deletes plus the Forgets cover every state row once
// prepared.recovery is applied: an empty or missing spec directory).
//
// Then prepared.recovery is committed in one transaction and
// prepared.dropped_intents are resolved, and the changes run on `parallelism`
// worker threads taking them from a queue; each is independent and a failing
// change never stops the others. Per action:
//   Create   journal an intent; create_token with the primary role; when the
//            role set has more than one role, update_token_roles with all of
//            them; write the value to the sink; commit the row (attributes,
//            times, sink path, SHA-256 of the value), resolving the intent.
//            Roles refused: the token is recorded with the roles it has and
//            the change fails (the next plan updates the roles). Sink write
//            failed: the token is recorded with rotate_pending and no
//            fingerprint and the change fails (the next plan rotates). A
//            created token is never left unrecorded.
//            Ambiguous create: list tokens and adopt the one find_created_token
//            picks (recorded with rotate_pending, given its role set, then
//            rotated for a value); none: drop the intent and create again. At
//            most 3 creates; when the list itself fails, the intent stays
//            pending for the next run's prepare_plan and the change fails.
//            Creates of tokens with the same name never overlap within a run.
//   Rotate   journal an intent; rotate_token; write the sink; commit the new
//            validity window and fingerprint (rotate_pending cleared),
//            resolving the intent. Ambiguous: get_token; when its start_at is
//            at/after the intent's start (minus kIntentClockSkew) or moved,
//            the rotation happened and its value is lost: that is committed
//            (rotate_pending) and the token rotated again; otherwise the
//            rotate is retried. At most 3 rotates; unresolved: the intent
//            stays pending.
//   Update   update_token (name+description) only if update_name_description,
//            update_token_roles only if update_roles, then a rotation if
//            `rotate`; one commit with the new attributes.
//   Import   record the adopted token (change.before, or get_token(import_id)
//            when the plan did not refresh) with the spec's sink and no
//            fingerprint; then the update flags as for Update.
//   Replace  without create_before_destroy: delete the old token (404 = gone),
//            commit its removal, then create as above. With it: create the
//            new token and deliver its value, commit it under the key and the
//            old row under deposed_key(key, old id) in one transaction, delete
//            the old token, commit the removal of the deposed key. The sink
//            of a replaced or deposed token is never removed (the new token
//            owns that path). A failure after the commit leaves the deposed
//            row for the next run to delete.
//   Delete   delete_token (404 = already gone = success); commit the removal;
//            remove the sink file (not for deposed keys, nor when another key
//            or spec uses the same path).
//   Forget   commit the removal; no API call.
// Errors other than Ambiguous are not retried here (the client already
// retried 429 and 5xx); the change fails with the API's message and
// requestId. Every commit is one transaction and bumps the serial once.
//
// `stop`: checked before each change starts and between ambiguity retries;
// changes in flight run their remaining calls (a few) and commit. When
// run_id is non-zero, each change is recorded with StateStore::record_action.
// The observer is called from the worker threads. Secrets go only to the
// sink; they never reach state, the report or a log line.
ApplyReport apply_plan(Dependencies& deps, const PreparedPlan& prepared,
                       const ApplyOptions& options, ApplyObserver* observer = nullptr);

// Why apply_plan would refuse `prepared` with `options` (its refusal text,
// e.g. "Refusing to destroy 7 tokens: that is more than
// max_deletes_per_run (5). Nothing was changed. If this is intended, run
// again with --allow-mass-delete."), or "" when it would not. Reads state,
// changes nothing; lets a caller refuse before asking for approval.
std::string apply_refusal(Dependencies& deps, const PreparedPlan& prepared,
                          const ApplyOptions& options);

}  // namespace tokend::apply
