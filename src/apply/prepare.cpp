#include <future>
#include <map>
#include <set>

#include "apply/engine.h"
#include "apply/recovery.h"

namespace tokend::apply {

Result<std::vector<spec::Diagnostic>> check_entities(astro::Client& client,
                                                     const spec::DesiredState& desired,
                                                     const KnownEntities& known) {
  KnownEntities found = known;
  std::set<std::string> workspaces, deployments;  // to look up
  for (const auto& token : desired.tokens) {
    for (const Role& role : token.attrs.roles) {
      if (role.entity_type == EntityType::Workspace && !found.workspaces.count(role.entity_id))
        workspaces.insert(role.entity_id);
      if (role.entity_type == EntityType::Deployment && !found.deployments.count(role.entity_id))
        deployments.insert(role.entity_id);
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
    for (const Role& role : token.attrs.roles) {
      bool missing =
          (role.entity_type == EntityType::Workspace && !found.workspaces.count(role.entity_id)) ||
          (role.entity_type == EntityType::Deployment && !found.deployments.count(role.entity_id));
      if (!missing) continue;
      std::string kind = role.entity_type == EntityType::Workspace ? "workspace" : "deployment";
      diagnostics.push_back(spec::Diagnostic{
          token.pos,
          address_for_key(token.key) + ": " + kind + " \"" + role.entity_id +
              "\" does not exist in organization " + desired.config.organization_id,
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
      if (role.entity_type == EntityType::Deployment) known.deployments.insert(role.entity_id);
    }
  }
  return known;
}

namespace {

// The sink status of every recorded row that a spec still names and that had
// a value delivered (rows without a fingerprint are never rotated for their
// sink, so their files are not read).
std::map<std::string, plan::SinkStatus> measure_sinks(
    SecretSink& sink, Logger& logger, const std::vector<state::ResourceRecord>& rows,
    const spec::DesiredState& desired) {
  std::set<std::string> desired_keys;
  for (const auto& token : desired.tokens) desired_keys.insert(token.key);
  std::map<std::string, plan::SinkStatus> sinks;
  for (const auto& row : rows) {
    if (row.sink_sha256.empty() || !desired_keys.count(row.key)) continue;
    auto fingerprint = sink.fingerprint(row.sink_path);
    if (!fingerprint.ok()) {
      logger.warn("cannot read sink; treating it as not matching",
                  {{"address", row.address()}, {"error", fingerprint.error().message}});
      sinks[row.key] = plan::SinkStatus::Mismatch;
    } else if (!fingerprint->has_value()) {
      sinks[row.key] = plan::SinkStatus::Missing;
    } else {
      sinks[row.key] =
          **fingerprint == row.sink_sha256 ? plan::SinkStatus::Ok : plan::SinkStatus::Mismatch;
    }
  }
  return sinks;
}

}  // namespace

Result<PreparedPlan> prepare_plan(Dependencies& deps, const spec::DesiredState& desired,
                                  const PlanRequest& request) {
  // The listing waits on the network and on the client's rate limiter: read
  // the state and the sinks meanwhile. (Recovery below only adds rows without
  // a fingerprint, or moves rows to deposed keys no spec names, so measuring
  // the rows as recorded gives the same statuses.)
  std::future<Result<std::vector<astro::ApiToken>>> listing;
  const auto start_listing = [&] {
    listing = std::async(std::launch::async | std::launch::deferred,
                         [&client = deps.client] { return client.list_tokens(); });
  };
  if (request.refresh) start_listing();
  auto snapshot = deps.store.snapshot();
  if (!snapshot.ok()) return snapshot.error();
  auto intents = deps.store.pending_intents();
  if (!intents.ok()) return intents.error();

  plan::Input input;
  input.observed.refreshed = request.refresh || !intents->empty();
  if (input.observed.refreshed && !listing.valid()) start_listing();
  input.sinks = measure_sinks(deps.sink, deps.logger, snapshot->resources, desired);
  if (listing.valid()) {
    auto tokens = listing.get();
    if (!tokens.ok()) return tokens.error();
    for (auto& token : tokens.value()) {
      std::string id = token.id;
      input.observed.tokens.emplace(std::move(id), std::move(token));
    }
  }

  PreparedPlan prepared;
  Recovery recovery = resolve_intents(*intents, snapshot->resources, input.observed);
  for (const auto& note : recovery.notes) deps.logger.warn(note);
  input.prior = apply_recovery(std::move(snapshot->resources), recovery);
  prepared.recovery = std::move(recovery.outcomes);
  prepared.dropped_intents = std::move(recovery.dropped);

  if (request.check_entities) {
    auto diagnostics = check_entities(deps.client, desired, entities_in_use(input.observed));
    if (!diagnostics.ok()) return diagnostics.error();
    prepared.diagnostics = std::move(diagnostics.value());
  }

  input.desired = desired.tokens;
  input.now = deps.clock.now();
  input.targets = request.targets;
  input.lineage = snapshot->lineage;
  input.serial = snapshot->serial;
  input.spec_hash = desired.spec_hash;
  prepared.plan = plan::compute(input);
  return prepared;
}

}  // namespace tokend::apply
