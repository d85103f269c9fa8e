#include <algorithm>
#include <future>
#include <map>
#include <set>

#include "apply/engine.h"
#include "apply/recovery.h"

namespace tokend::apply {

namespace {

// The deployment a role needs to exist: its entity for a DEPLOYMENT role, the
// deployment holding the DAG for DAG and DAG_TAG roles; "" for the others.
const std::string& deployment_of(const Role& role) {
  static const std::string none;
  if (role.entity_type == EntityType::Deployment) return role.entity_id;
  if (is_dag_entity(role.entity_type)) return role.deployment_id;
  return none;
}

}  // namespace

Result<std::vector<spec::Diagnostic>> check_entities(astro::Client& client,
                                                     const spec::DesiredState& desired,
                                                     const KnownEntities& known) {
  KnownEntities found = known;
  std::set<std::string> workspaces, deployments;  // to look up
  for (const auto& token : desired.tokens) {
    for (const Role& role : token.attrs.roles) {
      if (role.entity_type == EntityType::Workspace && !found.workspaces.count(role.entity_id))
        workspaces.insert(role.entity_id);
      const std::string& deployment = deployment_of(role);
      if (!deployment.empty() && !found.deployments.count(deployment))
        deployments.insert(deployment);
    }
  }
  if (!workspaces.empty()) {
    auto existing = client.existing_workspaces({workspaces.begin(), workspaces.end()});
    if (!existing.ok()) return existing.error();
    found.workspaces.insert(existing->begin(), existing->end());
  }
  if (!deployments.empty()) {
    auto existing = client.existing_deployments({deployments.begin(), deployments.end()});
    if (!existing.ok()) return existing.error();
    found.deployments.insert(existing->begin(), existing->end());
  }
  std::vector<spec::Diagnostic> diagnostics;
  for (const auto& token : desired.tokens) {
    std::set<std::string> reported;  // a missing deployment once per token
    for (const Role& role : token.attrs.roles) {
      const std::string& deployment = deployment_of(role);
      std::string message;
      if (role.entity_type == EntityType::Workspace && !found.workspaces.count(role.entity_id)) {
        message = "workspace \"" + role.entity_id + "\" does not exist";
      } else if (!deployment.empty() && !found.deployments.count(deployment)) {
        if (!reported.insert(deployment).second) continue;
        message = "deployment \"" + deployment + "\"" +
                  (role.entity_type == EntityType::Deployment
                       ? std::string()
                       : " (the deployment_id of its " + std::string(to_string(role.entity_type)) +
                             " role on \"" + role.entity_id + "\")") +
                  " does not exist";
      } else {
        continue;
      }
      diagnostics.push_back(spec::Diagnostic{token.pos,
                                             address_for_key(token.key) + ": " + message +
                                                 " in organization " +
                                                 desired.config.organization_id,
                                             ""});
    }
  }
  return diagnostics;
}

KnownEntities entities_in_use(const plan::Observed& observed) {
  KnownEntities known;
  if (!observed.refreshed) return known;
  for (const auto& [id, token] : observed.tokens) {
    for (const Role& role : token.roles) {
      if (role.entity_type == EntityType::Workspace) known.workspaces.insert(role.entity_id);
      if (const std::string& deployment = deployment_of(role); !deployment.empty())
        known.deployments.insert(deployment);
    }
  }
  return known;
}

namespace {

// The sink status of every recorded row that a (targeted) spec still names and that had
// a value delivered (rows without a fingerprint are never rotated for their
// sink, so their files are not read). A sink that cannot be read holds its
// token back; one too large to hold a value does not match. A sink that
// matches is left out (plan::Input::sinks reads an absent key as Ok).
std::map<std::string, plan::SinkStatus> measure_sinks(
    SecretSink& sink, Logger& logger, const std::vector<state::ResourceRecord>& rows,
    const spec::DesiredState& desired, const std::vector<std::string>& targets,
    std::vector<HeldBack>& held_back) {
  std::map<std::string, plan::SinkStatus> sinks;
  // Rows and specs are both sorted by key: one forward walk pairs them.
  auto spec = desired.tokens.begin();
  for (const auto& row : rows) {
    while (spec != desired.tokens.end() && spec->key < row.key) ++spec;
    const bool planned = spec != desired.tokens.end() && spec->key == row.key &&
                         (targets.empty() || std::find(targets.begin(), targets.end(),
                                                       row.address()) != targets.end());
    if (row.sink_sha256.empty() || !planned) continue;
    auto fingerprint = sink.fingerprint(row.sink_path);
    if (!fingerprint.ok() && fingerprint.error().kind == ErrorKind::Invalid) {
      sinks[row.key] = plan::SinkStatus::Mismatch;
    } else if (!fingerprint.ok()) {
      logger.error("cannot read sink; the token is held back and not rotated",
                   {{"address", row.address()}, {"error", fingerprint.error().message}});
      sinks[row.key] = plan::SinkStatus::Unreadable;
      held_back.push_back(HeldBack{row.key, fingerprint.error()});
    } else if (!fingerprint->has_value()) {
      sinks[row.key] = plan::SinkStatus::Missing;
    } else if (**fingerprint != row.sink_sha256) {
      sinks[row.key] = plan::SinkStatus::Mismatch;
    }
  }
  return sinks;
}

// Takes out of `plan` every change that would create or rotate a value for
// a sink that cannot be written (SecretSink::check_writable): such a token is
// held back, an error for it alone, so that a sink that cannot take a value
// never costs a new token or a rotation on every run.
void hold_back_undeliverable(SecretSink& sink, Logger& logger, plan::Plan& plan,
                             std::vector<HeldBack>& held_back) {
  std::vector<plan::Change> kept;
  for (plan::Change& change : plan.changes) {
    const bool delivers = change.after && (change.action == plan::Action::Create ||
                                           change.action == plan::Action::Replace ||
                                           change.action == plan::Action::Rotate || change.rotate);
    Status writable =
        delivers ? sink.check_writable(delivery_of(*change.after).target) : ok_status();
    if (writable.ok()) {
      kept.push_back(std::move(change));
      continue;
    }
    logger.error("cannot write sink; the token is held back, neither created nor rotated",
                 {{"address", change.address()}, {"error", writable.error().message}});
    held_back.push_back(HeldBack{change.key, writable.error(), true});
    if (change.before) plan.unchanged.push_back(std::move(*change.before));
  }
  plan.changes = std::move(kept);
}

// The ids of recorded tokens (and of tokens specs import) that `observed`
// lacks: each must be looked up before the plan may call it gone.
std::set<std::string> ids_to_confirm(const plan::Observed& observed,
                                     const std::vector<state::ResourceRecord>& rows,
                                     const std::vector<state::Intent>& intents,
                                     const spec::DesiredState& desired) {
  std::set<std::string> ids, recorded_keys;
  for (const auto& row : rows) {
    recorded_keys.insert(row.key);
    if (!observed.tokens.count(row.id)) ids.insert(row.id);
  }
  for (const auto& intent : intents)
    if (!intent.token_id.empty() && !observed.tokens.count(intent.token_id))
      ids.insert(intent.token_id);
  for (const auto& token : desired.tokens)
    if (token.import_id && !recorded_keys.count(token.key) &&
        !observed.tokens.count(*token.import_id))
      ids.insert(*token.import_id);
  return ids;
}

// Looks up each id of `ids` on its own: found ones join `observed` (and
// prove the listing incomplete); NotFound leaves them out. Any other failure
// is the whole refresh's: a token that may exist is never planned as gone.
Status confirm_missing(Dependencies& deps, const std::set<std::string>& ids,
                       const std::vector<state::ResourceRecord>& rows, plan::Observed& observed) {
  std::map<std::string, std::string> key_of;
  for (const auto& row : rows) key_of[row.id] = row.key;
  int found = 0;
  for (const std::string& id : ids) {
    auto token = deps.client.get_token(id);
    if (token.ok()) {
      ++found;
      observed.tokens.emplace(id, std::move(token.value()));
      continue;
    }
    if (token.error().kind == ErrorKind::NotFound) continue;
    Error error = token.error();
    auto key = key_of.find(id);
    error.message = "cannot tell whether token " + id +
                    (key == key_of.end() ? "" : " (" + address_for_key(key->second) + ")") +
                    ", which the listing of tokens did not show, still exists: " + error.message;
    return error;
  }
  if (found > 0) {
    observed.complete = false;
    deps.logger.warn(
        "the listing of tokens left out tokens that exist; they were looked up one "
        "by one",
        {{"found", std::to_string(found)}, {"looked_up", std::to_string(ids.size())}});
  }
  return ok_status();
}

}  // namespace

std::string held_back_reason(const std::vector<HeldBack>& held_back) {
  const auto unwritable = std::count_if(held_back.begin(), held_back.end(),
                                        [](const HeldBack& held) { return held.unwritable; });
  if (unwritable == 0) return "sink unreadable";
  if (static_cast<size_t>(unwritable) == held_back.size()) return "sink unwritable";
  return "sink unreadable or unwritable";
}

std::vector<PendingDelivery> pending_deliveries(const std::vector<state::ResourceRecord>& rows,
                                                const spec::DesiredState& desired,
                                                const plan::Plan& plan,
                                                const std::vector<HeldBack>& held_back) {
  std::map<std::string, const spec::TokenSpec*> specs;
  for (const auto& token : desired.tokens) specs.emplace(token.key, &token);
  std::set<std::string> skipped;
  for (const HeldBack& held : held_back) skipped.insert(held.key);
  for (const plan::Change& change : plan.changes) {
    const bool delivers = change.action == plan::Action::Create ||
                          change.action == plan::Action::Replace ||
                          change.action == plan::Action::Rotate || change.rotate;
    if (delivers) skipped.insert(change.key);
  }
  const std::set<std::string> targets(plan.targets.begin(), plan.targets.end());
  std::vector<PendingDelivery> deliveries;
  for (const auto& row : rows) {
    if (!row.delivery_pending || row.sink_sha256.empty() || skipped.count(row.key)) continue;
    if (!targets.empty() && !targets.count(row.address())) continue;
    auto spec = specs.find(row.key);
    if (spec == specs.end()) continue;
    deliveries.push_back(PendingDelivery{row.key, row.id, row.sink_path, row.sink_sha256,
                                         spec->second->on_delivery});
  }
  return deliveries;
}

Error organization_mismatch(const std::string& recorded, const std::string& configured) {
  return Error::invalid("the state belongs to organization " + recorded +
                        ", but the config names organization " + configured +
                        "; a state holds the tokens of one organization: give " + configured +
                        " a state of its own ([state] path or dsn), or set organization_id back "
                        "to " +
                        recorded);
}

Status check_organization(const state::StateStore& store, const std::string& organization_id) {
  auto recorded = store.organization_id();
  if (!recorded.ok()) return recorded.error();
  if (recorded->empty() || *recorded == organization_id) return ok_status();
  return organization_mismatch(*recorded, organization_id);
}

namespace {

// The state's snapshot: `known` (taken) while the state's lineage and
// serial are still its own, else read.
Result<state::StateSnapshot> read_snapshot(const state::StateStore& store,
                                           std::optional<state::StateSnapshot>* known) {
  if (known == nullptr || !known->has_value()) return store.snapshot();
  state::StateSnapshot kept = std::move(**known);
  known->reset();
  if (kept.lineage != store.lineage() || kept.serial != store.serial()) return store.snapshot();
  return kept;
}

}  // namespace

Result<PreparedPlan> prepare_plan(Dependencies& deps, const spec::DesiredState& desired,
                                  const PlanRequest& request) {
  if (Status same = check_organization(deps.store, desired.config.organization_id); !same.ok())
    return same.error();
  // The listing waits on the network and on the client's rate limiter: read
  // the state and the sinks meanwhile. (Recovery below only adds rows without
  // a fingerprint, or moves rows to deposed keys no spec names, so measuring
  // the rows as recorded gives the same statuses.)
  std::future<Result<astro::TokenListing>> listing;
  Timestamp listed_at{};
  const auto start_listing = [&] {
    listed_at = deps.clock.now();
    listing = std::async(std::launch::async | std::launch::deferred,
                         [&client = deps.client] { return client.list_tokens(); });
  };
  if (request.refresh) start_listing();
  auto snapshot = read_snapshot(deps.store, request.known);
  if (!snapshot.ok()) return snapshot.error();
  auto intents = deps.store.pending_intents();
  if (!intents.ok()) return intents.error();
  auto recent = deps.store.recent_creates();
  if (!recent.ok()) return recent.error();

  plan::Input input;
  input.observed.refreshed = request.refresh || !intents->empty();
  if (input.observed.refreshed && !listing.valid()) start_listing();
  PreparedPlan prepared;
  input.sinks = measure_sinks(deps.sink, deps.logger, snapshot->resources, desired, request.targets,
                              prepared.held_back);
  if (listing.valid()) {
    auto listed = listing.get();
    if (!listed.ok()) return listed.error();
    input.observed.listed_at = listed_at;
    input.observed.complete = listed->consistent;
    if (!listed->consistent)
      deps.logger.warn(
          "the listing of tokens was inconsistent; tokens it does not show are "
          "looked up one by one",
          {{"problem", listed->problem}});
    for (auto& token : listed->tokens) {
      std::string id = token.id;
      input.observed.tokens.emplace(std::move(id), std::move(token));
    }
    if (Status confirmed = confirm_missing(
            deps, ids_to_confirm(input.observed, snapshot->resources, *intents, desired),
            snapshot->resources, input.observed);
        !confirmed.ok())
      return confirmed.error();
  }

  Recovery recovery = resolve_intents(*intents, snapshot->resources, input.observed, *recent);
  for (const auto& note : recovery.notes) deps.logger.warn(note);
  input.prior = apply_recovery(std::move(snapshot->resources), recovery);
  prepared.recovery = std::move(recovery.outcomes);
  prepared.dropped_intents = std::move(recovery.dropped);
  prepared.unsettled = std::move(recovery.unsettled);
  prepared.late = std::move(recovery.late);

  if (request.check_entities) {
    auto diagnostics = check_entities(deps.client, desired, entities_in_use(input.observed));
    if (!diagnostics.ok()) return diagnostics.error();
    prepared.diagnostics = std::move(diagnostics.value());
  }

  input.desired_elsewhere = &desired.tokens;
  input.now = deps.clock.now();
  input.targets = request.targets;
  input.rotations = request.rotations;
  input.lineage = snapshot->lineage;
  input.serial = snapshot->serial;
  input.spec_hash = desired.spec_hash;
  input.record_unchanged = request.record_unchanged;
  prepared.plan = plan::compute(input);
  hold_back_undeliverable(deps.sink, deps.logger, prepared.plan, prepared.held_back);
  prepared.deliveries = pending_deliveries(input.prior, desired, prepared.plan, prepared.held_back);
  prepared.prior = std::move(input.prior);
  return prepared;
}

}  // namespace tokend::apply
