#include "apply/engine.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "apply/recovery.h"
#include "util/hash.h"

namespace tokend::apply {

namespace {

using SteadyClock = std::chrono::steady_clock;

// Calls of one non-idempotent kind (create, rotate) a change may make while
// it resolves ambiguous answers.
constexpr int kMaxAttempts = 3;

// `error` with `context` in front of its message; kind, status and requestId kept.
Error in_context(Error error, const std::string& context) {
  error.message = context + ": " + error.message;
  return error;
}

// Where a change stands once its steps are done: `row` is what state holds
// for the key when `committed`; `error` is set when the change failed (even
// if part of it was committed).
struct Done {
  bool committed = false;
  state::ResourceRecord row;
  std::optional<Error> error;
};

Done failed(Error error) {
  Done done;
  done.error = std::move(error);
  return done;
}

// Adds `problem` to `into` (a change can meet more than one; the first
// keeps its kind, status and requestId).
void add_problem(std::optional<Error>& into, Error problem) {
  if (!into)
    into = std::move(problem);
  else
    into->message += "; " + problem.describe();
}
void add_problem(Done& done, Error problem) { add_problem(done.error, std::move(problem)); }

std::string plural_tokens(size_t n) { return std::to_string(n) + (n == 1 ? " token" : " tokens"); }

// The mass-delete guard and the plan-errors check; the refusal text, or "".
std::string refusal_for(const plan::Plan& plan, size_t managed_rows, const ApplyOptions& options) {
  if (!plan.errors.empty()) {
    std::string text = "Refusing to apply a plan with errors. Nothing was changed.";
    for (const std::string& error : plan.errors) text += "\n  " + error;
    return text;
  }
  if (options.allow_mass_delete) return "";
  size_t deletes = 0, forgets = 0;
  for (const plan::Change& change : plan.changes) {
    if (change.action == plan::Action::Delete) ++deletes;
    if (change.action == plan::Action::Forget) ++forgets;
  }
  if (deletes > 0 && deletes + forgets >= managed_rows) {
    return std::string("Refusing to destroy ") +
           (managed_rows == 1 ? "the only managed token"
                              : "all " + std::to_string(deletes) + " managed tokens") +
           ": the plan would leave none. Nothing was changed. The spec directories may be empty "
           "or missing (check [specs] paths in the config). If this is intended, run again with "
           "--allow-mass-delete.";
  }
  if (deletes > static_cast<size_t>(std::max(0, options.max_deletes_per_run))) {
    return "Refusing to destroy " + plural_tokens(deletes) +
           ": that is more than max_deletes_per_run (" +
           std::to_string(options.max_deletes_per_run) +
           "). Nothing was changed. If this is intended, run again with --allow-mass-delete.";
  }
  return "";
}

plan::Counts counts_of(const plan::Change& change) {
  plan::Plan one;
  one.changes.push_back(change);
  return one.counts();
}

// Executes single changes; shared by the workers (thread-safe: every member
// is either immutable or guarded).
class Executor {
 public:
  Executor(Dependencies& deps, const ApplyOptions& options, std::set<std::string> shared_sinks)
      : deps_(deps), options_(options), shared_sinks_(std::move(shared_sinks)) {}

  ActionResult run(const plan::Change& change) {
    const auto started = SteadyClock::now();
    Done done = execute(change);
    ActionResult result;
    result.key = change.key;
    result.action = change.action;
    result.rotate = change.rotate || change.action == plan::Action::Rotate;
    result.ok = !done.error.has_value();
    if (done.error) result.error = *done.error;
    result.seconds = std::chrono::duration<double>(SteadyClock::now() - started).count();
    if (done.committed)
      result.token_id = done.row.id;
    else if (change.before)
      result.token_id = change.before->id;
    if (result.ok) {
      deps_.logger.debug("applied", {{"address", change.address()},
                                     {"action", std::string(plan::to_string(change.action))},
                                     {"id", result.token_id}});
    } else {
      deps_.logger.debug("apply failed", {{"address", change.address()},
                                          {"action", std::string(plan::to_string(change.action))},
                                          {"error", result.error.describe()}});
    }
    return result;
  }

 private:
  bool stopping() const { return options_.stop != nullptr && options_.stop->load(); }

  Done execute(const plan::Change& change) {
    switch (change.action) {
      case plan::Action::Create:
        return create(change.key, *change.after, {});
      case plan::Action::Import:
        return import(change);
      case plan::Action::Update:
        return update(*change.before, change);
      case plan::Action::Replace:
        return replace(change);
      case plan::Action::Delete:
        return destroy(change);
      case plan::Action::Rotate:
        return rotate(*change.before, change.after ? change.after->sink : change.before->sink_path);
      case plan::Action::Forget:
        return forget(change);
    }
    return failed(Error::internal("unknown action"));
  }

  // ---- commits -------------------------------------------------------------

  std::optional<Error> commit(const std::vector<state::Outcome>& outcomes) {
    Status status = deps_.store.record_outcomes(outcomes);
    if (status.ok()) return std::nullopt;
    return in_context(status.error(), "the outcome could not be recorded in state");
  }

  // Drops an intent that came to nothing. A failure only leaves it for the
  // next run, which drops it too.
  void drop_intent(int64_t intent_id) {
    if (Status status = deps_.store.resolve_intent(intent_id); !status.ok())
      deps_.logger.warn("cannot resolve intent; the next run will",
                        {{"error", status.error().describe()}});
  }

  // ---- create ----------------------------------------------------------------

  // One mutex per token name: creates of the same name never overlap, so that
  // resolving an ambiguous create cannot mistake another change's fresh
  // token (not yet recorded) for its own.
  std::mutex& name_mutex(const std::string& name) {
    std::lock_guard<std::mutex> lock(names_mutex_);
    return name_mutexes_[name];
  }

  // The token an ambiguous create made, if the API shows one that no state
  // row manages.
  Result<std::optional<astro::ApiToken>> find_created(const state::Intent& intent) {
    auto listed = deps_.client.list_tokens();
    if (!listed.ok()) return listed.error();
    auto rows = deps_.store.resources();
    if (!rows.ok()) return rows.error();
    std::set<std::string> managed;
    for (const auto& row : *rows) managed.insert(row.id);
    std::map<std::string, astro::ApiToken> by_id;
    for (auto& token : *listed) {
      std::string id = token.id;
      by_id.emplace(std::move(id), std::move(token));
    }
    const astro::ApiToken* match = find_created_token(intent, by_id, managed);
    if (match == nullptr) return std::optional<astro::ApiToken>();
    return std::optional<astro::ApiToken>(*match);
  }

  // Creates the token `spec` asks for under `key`, sets its full role set,
  // delivers its value to spec.sink and commits its row (resolving the
  // intent) together with `also_commit`, which follows it in the same
  // transaction. Never leaves a created token unrecorded: when the roles or
  // the sink fail, the token is recorded anyway (with the roles it has, or
  // rotate_pending) and the change fails.
  Done create(const std::string& key, const spec::TokenSpec& spec,
              std::vector<state::Outcome> also_commit) {
    const TokenAttrs& attrs = spec.attrs;
    std::optional<Role> primary = primary_role(attrs.roles, attrs.type);
    if (!primary)
      return failed(
          Error::invalid("the roles have no single entry on the entity of the token's type"));
    astro::CreateTokenRequest request;
    request.name = attrs.name;
    request.description = attrs.description;
    request.type = attrs.type;
    request.role = primary->role;
    request.entity_id = attrs.type == EntityType::Organization ? "" : primary->entity_id;
    request.expiry_period_in_days = attrs.expiry_period_in_days;

    std::lock_guard<std::mutex> same_name(name_mutex(attrs.name));
    state::Intent intent;
    intent.key = key;
    intent.kind = state::IntentKind::Create;
    intent.attrs = attrs;
    intent.sink_path = spec.sink;
    Error last;
    int attempts = 0;
    while (attempts < kMaxAttempts) {
      ++attempts;
      intent.started_at = deps_.clock.now();
      auto intent_id = deps_.store.journal_intent(intent);
      if (!intent_id.ok())
        return failed(in_context(intent_id.error(), "cannot journal the create"));
      intent.id = *intent_id;

      auto created = deps_.client.create_token(request);
      if (created.ok())
        return deliver_created(key, spec, std::move(created.value()), intent.id,
                               std::move(also_commit));
      last = created.error();
      if (last.kind != ErrorKind::Ambiguous) {
        drop_intent(intent.id);
        return failed(last);
      }
      auto found = find_created(intent);
      if (!found.ok()) {
        return failed(
            in_context(last, "the create may have taken effect and could not be checked (" +
                                 found.error().describe() + "); the next run will settle it"));
      }
      if (found->has_value())
        return adopt_created(key, spec, std::move(**found), intent.id, std::move(also_commit));
      deps_.logger.warn("ambiguous create did not take effect; creating again",
                        {{"address", address_for_key(key)}, {"error", last.describe()}});
      drop_intent(intent.id);
      if (stopping()) break;
    }
    return failed(in_context(last, "the create did not succeed after " + std::to_string(attempts) +
                                       (attempts == 1 ? " attempt" : " attempts")));
  }

  Done deliver_created(const std::string& key, const spec::TokenSpec& spec, astro::ApiToken token,
                       int64_t intent_id, std::vector<state::Outcome> also_commit) {
    Done done;
    if (spec.attrs.roles.size() > 1) {
      Status roles = deps_.client.update_token_roles(token.id, spec.attrs.roles);
      if (roles.ok())
        token.roles = normalize_roles(spec.attrs.roles);
      else
        add_problem(done, in_context(roles.error(),
                                     "the token was created but its roles could not be set"));
    }
    SecretValue value = std::move(token.token);
    token.token = SecretValue();
    Status written = deps_.sink.write(spec.sink, value);
    std::string fingerprint;
    if (written.ok()) {
      fingerprint = sha256_hex(value.reveal());
    } else {
      add_problem(done, in_context(written.error(),
                                   "the token was created but its value could not be delivered "
                                   "(the next run rotates it)"));
    }
    state::ResourceRecord row = record_from_token(key, token, spec.sink, fingerprint);
    row.rotate_pending = !written.ok();
    std::vector<state::Outcome> outcomes{{key, row, intent_id}};
    outcomes.insert(outcomes.end(), also_commit.begin(), also_commit.end());
    if (auto error = commit(outcomes)) {
      // The intent stays pending: the next run adopts the token.
      return failed(*error);
    }
    done.committed = true;
    done.row = std::move(row);
    return done;
  }

  // The ambiguous create did happen: record that token (its value is lost,
  // so rotate_pending), give it its role set, and rotate it for a value.
  Done adopt_created(const std::string& key, const spec::TokenSpec& spec, astro::ApiToken token,
                     int64_t intent_id, std::vector<state::Outcome> also_commit) {
    deps_.logger.warn("ambiguous create took effect; adopting the token and rotating its value",
                      {{"address", address_for_key(key)}, {"id", token.id}});
    Done done;
    std::optional<Error> roles_problem;
    if (normalize_roles(spec.attrs.roles) != token.roles) {
      Status roles = deps_.client.update_token_roles(token.id, spec.attrs.roles);
      if (roles.ok())
        token.roles = normalize_roles(spec.attrs.roles);
      else
        roles_problem =
            in_context(roles.error(), "the token was created but its roles could not be set");
    }
    state::ResourceRecord row = record_from_token(key, token, spec.sink, "");
    row.rotate_pending = true;
    std::vector<state::Outcome> outcomes{{key, row, intent_id}};
    outcomes.insert(outcomes.end(), also_commit.begin(), also_commit.end());
    if (auto error = commit(outcomes)) return failed(*error);
    done = rotate(row, spec.sink);
    if (!done.committed) {
      done.committed = true;
      done.row = row;
    }
    if (roles_problem) add_problem(done, *roles_problem);
    return done;
  }

  // ---- rotate ----------------------------------------------------------------

  // Rotates the token of `row` (as state holds it, or should), delivers the
  // new value to `sink_path` and commits the row with the new validity
  // window, resolving the intent. An ambiguous rotate is checked with a
  // get: when it happened, the lost value is recorded (rotate_pending) and
  // the token rotated again.
  Done rotate(state::ResourceRecord row, const std::string& sink_path) {
    state::Intent intent;
    intent.key = row.key;
    intent.kind = state::IntentKind::Rotate;
    intent.token_id = row.id;
    intent.attrs = row.attrs;
    intent.sink_path = sink_path;
    Done done;
    Error last;
    int attempts = 0;
    while (attempts < kMaxAttempts) {
      ++attempts;
      intent.started_at = deps_.clock.now();
      auto intent_id = deps_.store.journal_intent(intent);
      if (!intent_id.ok())
        return with_error(done, in_context(intent_id.error(), "cannot journal the rotation"));
      intent.id = *intent_id;

      auto rotated = deps_.client.rotate_token(row.id);
      if (rotated.ok())
        return deliver_rotated(std::move(row), sink_path, std::move(rotated.value()), intent.id);
      last = rotated.error();
      if (last.kind != ErrorKind::Ambiguous) {
        drop_intent(intent.id);
        return with_error(done, last);
      }
      auto current = deps_.client.get_token(row.id);
      if (!current.ok()) {
        if (current.error().kind == ErrorKind::NotFound) {
          drop_intent(intent.id);
          return with_error(
              done, in_context(current.error(), "the token disappeared during its rotation"));
        }
        return with_error(
            done,
            in_context(last, "the rotation may have taken effect and could not be checked (" +
                                 current.error().describe() + "); the next run will settle it"));
      }
      const bool happened = current->start_at + kIntentClockSkew >= intent.started_at ||
                            current->start_at != row.start_at;
      if (happened) {
        deps_.logger.warn("ambiguous rotation took effect; its value is lost, rotating again",
                          {{"address", row.address()}, {"id", row.id}});
        state::ResourceRecord lost =
            record_from_token(row.key, *current, row.sink_path, row.sink_sha256);
        lost.rotate_pending = true;
        if (auto error = commit({{row.key, lost, intent.id}})) return with_error(done, *error);
        row = lost;
        done.committed = true;
        done.row = row;
      } else {
        deps_.logger.warn("ambiguous rotation did not take effect; rotating again",
                          {{"address", row.address()}, {"error", last.describe()}});
        drop_intent(intent.id);
      }
      if (stopping()) break;
    }
    return with_error(
        done, in_context(last, "the rotation did not succeed after " + std::to_string(attempts) +
                                   (attempts == 1 ? " attempt" : " attempts")));
  }

  static Done with_error(Done done, Error error) {
    add_problem(done, std::move(error));
    return done;
  }

  Done deliver_rotated(state::ResourceRecord row, const std::string& sink_path,
                       astro::ApiToken token, int64_t intent_id) {
    Done done;
    SecretValue value = std::move(token.token);
    token.token = SecretValue();
    Status written = deps_.sink.write(sink_path, value);
    std::string fingerprint;
    if (written.ok())
      fingerprint = sha256_hex(value.reveal());
    else
      add_problem(done, in_context(written.error(),
                                   "the token was rotated but its value could not be delivered "
                                   "(the next run rotates it again)"));
    state::ResourceRecord rotated = record_from_token(row.key, token, sink_path, fingerprint);
    rotated.rotate_pending = !written.ok();
    if (auto error = commit({{row.key, rotated, intent_id}})) return with_error(done, *error);
    done.committed = true;
    done.row = std::move(rotated);
    return done;
  }

  // ---- update, import ------------------------------------------------------

  // Sends what the change's flags ask for (name+description, roles, then a
  // rotation) and commits the token's row once with the new attributes. A
  // failed step is reported and does not keep the later ones from running
  // (a due rotation still happens when a role update is refused).
  Done update(state::ResourceRecord row, const plan::Change& change) {
    const spec::TokenSpec& after = *change.after;
    bool changed = false;
    std::optional<Error> problem;
    auto note = [&problem](Error error) { add_problem(problem, std::move(error)); };
    if (change.update_name_description) {
      auto updated = deps_.client.update_token(row.id, {after.attrs.name, after.attrs.description});
      if (updated.ok()) {
        row.attrs.name = updated->name;
        row.attrs.description = updated->description;
        row.updated_at = updated->updated_at;
        changed = true;
      } else {
        note(updated.error());
      }
    }
    if (change.update_roles) {
      Status roles = deps_.client.update_token_roles(row.id, after.attrs.roles);
      if (roles.ok()) {
        row.attrs.roles = normalize_roles(after.attrs.roles);
        row.attrs.role = after.attrs.role;
        changed = true;
      } else {
        note(roles.error());
      }
    }
    Done done;
    if (change.rotate) {
      done = rotate(row, after.sink);
      if (done.error) note(*done.error);
      done.error = problem;
      if (done.committed || !changed) return done;
    }
    done.error = problem;
    if (changed) {
      if (auto error = commit({{row.key, row, std::nullopt}})) return with_error(done, *error);
      done.committed = true;
      done.row = std::move(row);
    }
    return done;
  }

  Done import(const plan::Change& change) {
    const spec::TokenSpec& after = *change.after;
    state::ResourceRecord row;
    if (change.before) {
      row = *change.before;
    } else {
      auto token = deps_.client.get_token(*after.import_id);
      if (!token.ok()) return failed(token.error());
      row = record_from_token(change.key, *token, after.sink, "");
    }
    row.key = change.key;
    row.sink_path = after.sink;
    row.sink_sha256.clear();
    row.rotate_pending = false;
    if (auto error = commit({{row.key, row, std::nullopt}})) return failed(*error);
    Done imported;
    imported.committed = true;
    imported.row = row;
    if (!change.update_name_description && !change.update_roles) return imported;
    plan::Change updates = change;
    updates.rotate = false;
    Done done = update(row, updates);
    if (!done.committed) {
      done.committed = true;
      done.row = row;
    }
    return done;
  }

  // ---- replace, delete, forget ---------------------------------------------

  Done replace(const plan::Change& change) {
    const state::ResourceRecord& old = *change.before;
    if (!change.create_before_destroy) {
      Status deleted = deps_.client.delete_token(old.id);
      if (!deleted.ok() && deleted.error().kind != ErrorKind::NotFound)
        return failed(deleted.error());
      if (auto error = commit({{change.key, std::nullopt, std::nullopt}})) return failed(*error);
      Done created = create(change.key, *change.after, {});
      if (created.error && !created.committed)
        created.error =
            in_context(*created.error, "the old token " + old.id +
                                           " was destroyed, but its successor was not created");
      return created;
    }
    state::ResourceRecord deposed = old;
    deposed.key = deposed_key(change.key, old.id);
    Done created = create(change.key, *change.after, {{deposed.key, deposed, std::nullopt}});
    if (created.error) {
      if (created.committed)
        add_problem(created, Error::internal("the old token " + old.id + " is kept as " +
                                             deposed.address() + " for the next run to destroy"));
      return created;
    }
    Status deleted = deps_.client.delete_token(old.id);
    if (!deleted.ok() && deleted.error().kind != ErrorKind::NotFound) {
      return with_error(
          created, in_context(deleted.error(), "the new token is in place, but the old token " +
                                                   old.id + " (kept as " + deposed.address() +
                                                   ") could not be destroyed"));
    }
    if (auto error = commit({{deposed.key, std::nullopt, std::nullopt}}))
      return with_error(created, *error);
    return created;
  }

  Done destroy(const plan::Change& change) {
    const state::ResourceRecord& old = *change.before;
    Status deleted = deps_.client.delete_token(old.id);
    if (!deleted.ok() && deleted.error().kind != ErrorKind::NotFound)
      return failed(deleted.error());
    if (auto error = commit({{change.key, std::nullopt, std::nullopt}})) return failed(*error);
    if (!is_deposed_key(change.key) && !old.sink_path.empty() &&
        !shared_sinks_.count(old.sink_path)) {
      if (Status removed = deps_.sink.remove(old.sink_path); !removed.ok()) {
        deps_.logger.warn("token destroyed, but its sink file could not be removed",
                          {{"address", change.address()}, {"error", removed.error().describe()}});
      }
    }
    Done done;
    done.row = old;
    return done;
  }

  Done forget(const plan::Change& change) {
    if (auto error = commit({{change.key, std::nullopt, std::nullopt}})) return failed(*error);
    Done done;
    done.row = *change.before;
    return done;
  }

  Dependencies& deps_;
  const ApplyOptions& options_;
  const std::set<std::string> shared_sinks_;  // sink paths another key still uses
  std::mutex names_mutex_;
  std::map<std::string, std::mutex> name_mutexes_;
};

// Sink paths that must survive the deletions of this plan: those of state
// rows the plan keeps, and those the plan's specs deliver to.
std::set<std::string> shared_sinks(const plan::Plan& plan,
                                   const std::vector<state::ResourceRecord>& rows) {
  std::set<std::string> removed_keys, sinks;
  for (const plan::Change& change : plan.changes) {
    if (change.action == plan::Action::Delete || change.action == plan::Action::Forget)
      removed_keys.insert(change.key);
    if (change.after) sinks.insert(change.after->sink);
  }
  for (const auto& row : rows)
    if (!removed_keys.count(row.key)) sinks.insert(row.sink_path);
  return sinks;
}

// State rows as they will be once prepared.recovery is committed.
Result<std::vector<state::ResourceRecord>> managed_rows(Dependencies& deps,
                                                        const PreparedPlan& prepared) {
  auto rows = deps.store.resources();
  if (!rows.ok()) return rows.error();
  Recovery recovery;
  recovery.outcomes = prepared.recovery;
  return apply_recovery(std::move(rows.value()), recovery);
}

std::string cannot_read_state(const Error& error) {
  return "Cannot read state: " + error.describe() + ". Nothing was changed.";
}

}  // namespace

std::string apply_refusal(Dependencies& deps, const PreparedPlan& prepared,
                          const ApplyOptions& options) {
  auto managed = managed_rows(deps, prepared);
  if (!managed.ok()) return cannot_read_state(managed.error());
  return refusal_for(prepared.plan, managed->size(), options);
}

ApplyReport apply_plan(Dependencies& deps, const PreparedPlan& prepared,
                       const ApplyOptions& options, ApplyObserver* observer) {
  ApplyReport report;
  const plan::Plan& plan = prepared.plan;

  auto rows = managed_rows(deps, prepared);
  if (!rows.ok()) {
    report.refused = true;
    report.refusal = cannot_read_state(rows.error());
    return report;
  }
  const std::vector<state::ResourceRecord>& managed = *rows;

  report.refusal = refusal_for(plan, managed.size(), options);
  if (!report.refusal.empty()) {
    report.refused = true;
    deps.logger.warn("apply refused", {{"reason", report.refusal}});
    return report;
  }

  if (Status committed = deps.store.record_outcomes(prepared.recovery); !committed.ok()) {
    report.refused = true;
    report.refusal = "Cannot record the recovered intents: " + committed.error().describe() +
                     ". Nothing else was changed.";
    return report;
  }
  for (int64_t intent_id : prepared.dropped_intents) {
    if (Status dropped = deps.store.resolve_intent(intent_id); !dropped.ok())
      deps.logger.warn("cannot resolve intent; the next run will",
                       {{"error", dropped.error().describe()}});
  }

  Executor executor(deps, options, shared_sinks(plan, managed));
  std::mutex report_mutex;
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (;;) {
      if (options.stop != nullptr && options.stop->load()) return;
      const size_t index = next.fetch_add(1);
      if (index >= plan.changes.size()) return;
      const plan::Change& change = plan.changes[index];
      if (observer != nullptr) observer->started(change);
      ActionResult result = executor.run(change);
      if (options.run_id != 0) {
        state::ActionRecord action{change.address(), std::string(plan::to_string(change.action)),
                                   result.ok, result.ok ? "" : result.error.describe(),
                                   result.seconds};
        if (Status recorded = deps.store.record_action(options.run_id, action); !recorded.ok())
          deps.logger.warn("cannot record the action in run history",
                           {{"error", recorded.error().describe()}});
      }
      {
        std::lock_guard<std::mutex> lock(report_mutex);
        if (result.ok) {
          plan::Counts counts = counts_of(change);
          report.applied.add += counts.add;
          report.applied.change += counts.change;
          report.applied.destroy += counts.destroy;
          report.applied.rotate += counts.rotate;
        } else {
          ++report.failed;
        }
        report.results.push_back(result);
      }
      if (observer != nullptr) observer->finished(change, result);
    }
  };

  const size_t workers =
      std::min(plan.changes.size(), static_cast<size_t>(std::max(1, options.parallelism)));
  std::vector<std::thread> threads;
  threads.reserve(workers);
  for (size_t i = 0; i < workers; ++i) threads.emplace_back(work);
  for (std::thread& thread : threads) thread.join();
  report.stopped = report.results.size() < plan.changes.size();
  return report;
}

}  // namespace tokend::apply
