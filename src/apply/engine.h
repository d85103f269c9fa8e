// apply/ — turns a Plan into API calls and state, safely (product.md §4):
// prepares plans (refresh through the API seam, intent recovery, sink
// checks), executes them in parallel under the client's rate limits, commits
// each outcome in its own transaction, and delivers secrets to their sinks.
//
// May not: decide what to change (that is plan::compute), parse specs, or
// speak HTTP/SQL directly (it goes through astro::Client and StateStore).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "apply/delivery.h"
#include "apply/hook.h"
#include "apply/recovery.h"
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
  HookRunner& hooks;  // delivery hooks
};

// ---- planning --------------------------------------------------------------

struct PlanRequest {
  bool refresh = true;                 // false: trust state (--refresh=false)
  std::vector<std::string> targets;    // addresses; empty = all
  bool check_entities = true;          // look up every workspace/deployment id the specs use
  std::vector<std::string> rotations;  // --rotate addresses (plan::Input::rotations)
  // A snapshot kept from an earlier plan (a daemon keeps one between
  // cycles): planned from instead of reading the state again while the
  // state's lineage and serial are still its own (every change to the rows
  // bumps the serial: StateStore), else read again. Taken either way.
  std::optional<state::StateSnapshot>* known = nullptr;
  // false: the plan's `unchanged` records are left out (plan::Input::record_unchanged).
  bool record_unchanged = true;
};

// A token left out of the plan because its sink could not be read, or could
// not be written when the plan would create or rotate its value: an error
// for that token, never a reason to rotate it (again).
struct HeldBack {
  std::string key;
  Error error;              // the sink's read or write error (Io), naming the path
  bool unwritable = false;  // check_writable failed (the plan had a create or rotate)
  std::string address() const { return address_for_key(key); }
};

// A value delivered earlier whose delivery hook has not yet succeeded
// (state's delivery_pending); apply hands it over again.
struct PendingDelivery {
  std::string key;
  std::string token_id;
  std::string sink_path;
  std::string sink_sha256;        // the value the hook is owed
  std::vector<std::string> hook;  // the spec's on_delivery; empty: nothing left to run
  std::string address() const { return address_for_key(key); }
};

// Why tokens were held back, for a summary: "sink unreadable",
// "sink unwritable" or "sink unreadable or unwritable".
std::string held_back_reason(const std::vector<HeldBack>& held_back);

struct PreparedPlan {
  plan::Plan plan;
  // Pending intents resolved in memory (adoptions and drops). prepare_plan
  // never writes state; apply_plan commits these before executing.
  std::vector<state::Outcome> recovery;
  std::vector<int64_t> dropped_intents;  // intents that came to nothing
  // Create intents left pending that the refresh could not settle (see
  // Recovery::unsettled); apply_plan settles them before creating.
  std::vector<state::Intent> unsettled;
  // Late-landing creates found by the refresh (Recovery::late): adopted, or
  // kept under a deposed key that the plan destroys.
  std::vector<Recovery::LateToken> late;
  // Workspace or deployment ids the specs use that do not exist in the
  // organization, one per (token, entity), at the token's position.
  std::vector<spec::Diagnostic> diagnostics;
  // Tokens whose sink could not be read (the plan has no change for them).
  std::vector<HeldBack> held_back;
  // Pending delivery hooks that no change of the plan supersedes (a change
  // that delivers a new value runs the hook anyway), sorted by key.
  std::vector<PendingDelivery> deliveries;
  // The state's rows as planned from, sorted by key, with `recovery` applied:
  // what state holds once apply_plan has committed `recovery`, while no
  // change has run.
  std::vector<state::ResourceRecord> prior;
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
// in the organization (the deployment of a DAG or DAG_TAG role is its
// deployment_id): ids in `known` count as existing; the others are
// looked up with at most one paginated lookup per kind for the whole spec set
// (none for a kind with nothing to look up). Returns one diagnostic per
// (token, missing id) at the token's position, e.g.
//   astro_api_token.k: workspace "X" does not exist in organization ORG
// or the client's Error when a lookup fails.
Result<std::vector<spec::Diagnostic>> check_entities(astro::Client& client,
                                                     const spec::DesiredState& desired,
                                                     const KnownEntities& known = {});

// A state belongs to the organization whose tokens it holds (recorded by
// the first command that writes it: StateStore::bind_organization). Ok when
// `store` belongs to `organization_id` or records none yet; otherwise Error
// Invalid naming both ids:
//   the state belongs to organization A, but the config names organization
//   B; a state holds the tokens of one organization: …
// Reads the store only; called before any API call.
Status check_organization(const state::StateStore& store, const std::string& organization_id);
// The error check_organization gives for a state of `recorded`.
Error organization_mismatch(const std::string& recorded, const std::string& configured);

// Computes a plan without changing anything anywhere: checks the state's
// organization (check_organization), reads state, resolves
// pending intents in memory, lists the organization's tokens (page by page)
// unless request.refresh is false (a refresh is forced while intents are
// pending), checks entity ids (check_entities, trusting entities_in_use of
// the listing, so ids that listed tokens already hold roles on cost no
// lookup), fingerprints sinks, then calls plan::compute. A sink that cannot
// be read (Error Io) holds its token back (PreparedPlan::held_back, logged as
// an error); one that is too large to hold a value counts as a mismatch. A
// change that would create or rotate a value for a sink that cannot be
// written (SecretSink::check_writable) is taken out of the plan and its
// token held back the same way.
// Rows with delivery_pending that a spec still names (and the targets cover)
// become PreparedPlan::deliveries unless the plan delivers them a new value.
// API failures come back as the client's Error.
Result<PreparedPlan> prepare_plan(Dependencies& deps, const spec::DesiredState& desired,
                                  const PlanRequest& request);

// The rows of `rows` with delivery_pending that a spec of `desired` still
// names, that plan.targets (when any) covers, that are not held back, and
// that no change of `plan` gives a new value (Create, Replace, Rotate, or an
// Update that rotates), sorted by key. prepare_plan fills
// PreparedPlan::deliveries with it; `apply PLANFILE` calls it with the state
// as it is.
std::vector<PendingDelivery> pending_deliveries(const std::vector<state::ResourceRecord>& rows,
                                                const spec::DesiredState& desired,
                                                const plan::Plan& plan,
                                                const std::vector<HeldBack>& held_back);

// ---- applying --------------------------------------------------------------

struct ActionResult {
  std::string key;
  plan::Action action = plan::Action::Create;
  bool rotate = false;
  bool ok = true;
  Error error;           // when !ok
  double seconds = 0;    // wall time of the action
  std::string token_id;  // the resulting (or deleted) token id
  // The delivery hook that ran after the change delivered a value, if any.
  // A failed hook does not fail the change (the value was delivered).
  std::optional<HookReport> hook;
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
  std::chrono::milliseconds hook_timeout{30000};  // [secrets] hook_timeout
  // How long after a create or rotate call began its request may still
  // reach the API (settle_window_for the client's timeout). A create or
  // rotate whose answer was lost is settled only by a listing (or a get)
  // taken after then; 0: by any taken after the call.
  std::chrono::milliseconds settle_window{0};
  // How long a change may wait, within the run, for such a call to settle
  // before it looks again (waking to see `stop`); a call that settles later
  // fails the change and is settled by the next run. 0: never wait.
  std::chrono::milliseconds settle_wait{0};
};

// The settle window of a client with request timeout `timeout`: the timeout
// plus a margin of 2 s for a request held up on its way (a proxy, a queue).
inline std::chrono::milliseconds settle_window_for(std::chrono::milliseconds timeout) {
  return timeout + std::chrono::seconds(2);
}

struct ApplyReport {
  plan::Counts applied;  // what completed, counted like Plan::counts
  int failed = 0;
  bool refused = false;               // nothing was done (mass-delete guard, plan errors)
  std::string refusal;                // why, for the operator
  bool stopped = false;               // `stop` was raised before every change ran
  std::vector<ActionResult> results;  // in completion order
  // Every delivery hook that ran (after changes, and pending ones handed
  // over again), in completion order.
  std::vector<HookReport> hooks;
  int hooks_failed = 0;

  bool ok() const { return !refused && failed == 0 && hooks_failed == 0; }
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
// prepared.dropped_intents are resolved (each of prepared.late is recorded
// in the run's history: action "adopt" or "orphan"), and the changes run on `parallelism`
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
//            The intent's settle_after is its start plus
//            options.settle_window.
//            Ambiguous create: list tokens and adopt the one find_created_token
//            picks (recorded with rotate_pending, given its role set, then
//            rotated for a value); none, in a listing that began at or after
//            settle_after: drop the intent and create again. None before
//            then: the request may still land, so wait until settle_after
//            when that is at most options.settle_wait away and list once
//            more; otherwise the change fails ("may still take effect") and
//            the intent stays pending for the next run. At most 3 creates;
//            when the list itself fails, or is inconsistent (TokenListing),
//            the intent stays pending for the next run's prepare_plan and
//            the change fails: never create again on doubt.
//            Before the first create for a key with prepared.unsettled
//            intents, listings settle them the same way: a token one of them
//            made is adopted (as for an ambiguous create) and the others
//            dropped; none, in a consistent listing at or after their
//            settle_after (waiting as above): all are dropped and the create
//            goes ahead; otherwise the change fails and they stay pending.
//            Creates of tokens with the same name never overlap within a run.
//   Rotate   journal an intent; rotate_token; write the sink; commit the new
//            validity window and fingerprint (rotate_pending cleared),
//            resolving the intent. Ambiguous: get_token; when its start_at is
//            at/after the intent's start (minus kIntentClockSkew) or moved,
//            the rotation happened and its value is lost: that is committed
//            (rotate_pending) and the token rotated again; otherwise, before
//            the intent's settle_after, wait for it as for a create and get
//            again (or fail, leaving the intent pending); after it, the
//            rotate is retried. At most 3 rotates; unresolved: the intent
//            stays pending.
//   Update   update_token (name+description) only if update_name_description,
//            update_token_roles only if update_roles, then a rotation if
//            `rotate`; one commit with the new attributes.
//   Import   record the adopted token (change.before, or get_token(import_id)
//            when the plan did not refresh) with the spec's sink and no
//            fingerprint; then the update flags and `rotate` as for Update
//            (a requested rotation delivers a value to the spec's sink).
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
// Delivery. After a value is written to its sink (Create, Rotate, the
// rotation of an Update, the create of a Replace) and the token's spec has an
// on_delivery hook, the row is committed with delivery_pending, the hook runs
// (HookRunner, options.hook_timeout, ASTRO_TOKEND_ACTION create or rotate)
// and, when it succeeds, delivery_pending is cleared in one more commit. A
// failed hook is reported (ActionResult::hook, ApplyReport::hooks) and leaves
// delivery_pending for the next run; the change itself still counts as done.
// No hook starts once `stop` is raised.
//
// Then each of prepared.deliveries whose row still has delivery_pending and
// the same fingerprint is handed over again on the worker threads: the value
// is read back from its sink and checked against the fingerprint, the hook
// runs with ASTRO_TOKEND_ACTION=deliver, and success clears the flag (an
// empty hook only clears it). A sink that no longer holds the value is a
// failed delivery (the next plan rotates the token).
//
// Errors other than Ambiguous are not retried here (the client already
// retried 429 and 5xx); the change fails with the API's message and
// requestId. Every commit is one transaction and bumps the serial once.
//
// `stop`: checked before each change starts and between ambiguity retries;
// changes in flight run their remaining calls (a few) and commit. When
// run_id is non-zero, each change is recorded with StateStore::record_action,
// and so is each hook run (action "deliver", ok or not, its status as the
// message when it failed).
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
