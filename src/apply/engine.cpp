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
  std::optional<HookReport> hook;  // the delivery hook that ran, if any
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
  Executor(Dependencies& deps, const ApplyOptions& options, std::set<std::string> shared_sinks,
           const std::vector<state::Intent>& unsettled)
      : deps_(deps), options_(options), shared_sinks_(std::move(shared_sinks)) {
    for (const state::Intent& intent : unsettled) unsettled_[intent.key].push_back(intent);
    for (auto& [key, intents] : unsettled_)
      std::sort(intents.begin(), intents.end(), [](const auto& a, const auto& b) {
        return std::tie(a.started_at, a.id) < std::tie(b.started_at, b.id);
      });
  }

  ActionResult run(const plan::Change& change) {
    const auto started = SteadyClock::now();
    Done done = execute(change);
    ActionResult result;
    result.key = change.key;
    result.action = change.action;
    result.rotate = change.rotate || change.action == plan::Action::Rotate;
    result.ok = !done.error.has_value();
    if (done.error) result.error = *done.error;
    result.hook = std::move(done.hook);
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
        return rotate(*change.before,
                      change.after ? delivery_of(*change.after)
                                   : Delivery{SinkTarget{change.before->sink_path, 0600, ""}, {}});
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

  // ---- delivery hooks --------------------------------------------------------

  // Runs the hook of `delivery` for `value`, just delivered to the row of
  // `done` (committed with delivery_pending), and clears delivery_pending
  // once it succeeds. Nothing runs without a hook, or once stopping (the
  // flag stays for the next run).
  void after_delivery(Done& done, const Delivery& delivery, DeliveryAction action,
                      const SecretValue& value) {
    if (delivery.hook.empty() || !done.committed || !done.row.delivery_pending || stopping())
      return;
    HookReport report = run_hook(deps_.hooks, deps_.logger, delivery.hook, options_.hook_timeout,
                                 done.row.key, done.row.id, delivery.target.path, action, value);
    if (report.ok) {
      state::ResourceRecord row = done.row;
      row.delivery_pending = false;
      if (auto error = commit({{row.key, row, std::nullopt}}))
        deps_.logger.warn(
            "the delivery hook succeeded, but that could not be recorded; it runs "
            "again on the next run",
            {{"address", row.address()}, {"error", error->describe()}});
      else
        done.row = std::move(row);
    }
    done.hook = std::move(report);
  }

 public:
  // Hands `pending` over again: reads the value back from its sink, checks it
  // against the fingerprint and runs the hook (action deliver); clears
  // delivery_pending when it succeeds, or at once when the spec no longer
  // has a hook. nullopt when nothing ran (the row moved on, or stopping).
  std::optional<HookReport> redeliver(const PendingDelivery& pending) {
    auto current = deps_.store.resource(pending.key);
    if (!current.ok()) {
      deps_.logger.warn("cannot read state for a pending delivery; the next run tries again",
                        {{"address", pending.address()}, {"error", current.error().describe()}});
      return std::nullopt;
    }
    if (!current->has_value()) return std::nullopt;
    state::ResourceRecord row = **current;
    if (!row.delivery_pending || row.sink_sha256 != pending.sink_sha256 ||
        row.sink_path != pending.sink_path || stopping())
      return std::nullopt;
    const auto clear = [&] {
      row.delivery_pending = false;
      if (auto error = commit({{row.key, row, std::nullopt}}))
        deps_.logger.warn(
            "the delivery hook succeeded, but that could not be recorded; it runs "
            "again on the next run",
            {{"address", row.address()}, {"error", error->describe()}});
    };
    if (pending.hook.empty()) {
      clear();
      return std::nullopt;
    }
    auto value = deps_.sink.read(row.sink_path);
    std::optional<std::string> problem;
    if (!value.ok())
      problem = value.error().describe();
    else if (!value->has_value())
      problem = "its sink " + row.sink_path + " is missing";
    else if (sha256_hex((*value)->reveal()) != row.sink_sha256)
      problem = "its sink " + row.sink_path + " no longer holds the delivered value";
    if (problem) {
      HookReport report;
      report.key = row.key;
      report.action = DeliveryAction::Deliver;
      report.ok = false;
      report.status = "was not run: " + *problem;
      deps_.logger.error("delivery hook not run; the next plan rotates the token",
                         {{"address", row.address()}, {"error", *problem}});
      return report;
    }
    HookReport report = run_hook(deps_.hooks, deps_.logger, pending.hook, options_.hook_timeout,
                                 row.key, row.id, row.sink_path, DeliveryAction::Deliver, **value);
    if (report.ok) clear();
    return report;
  }

 private:
  // ---- create ----------------------------------------------------------------

  // One mutex per token name: creates of the same name never overlap, so that
  // resolving an ambiguous create cannot mistake another change's fresh
  // token (not yet recorded) for its own.
  std::mutex& name_mutex(const std::string& name) {
    std::lock_guard<std::mutex> lock(names_mutex_);
    return name_mutexes_[name];
  }

  // The organization's tokens as a fresh listing shows them, and the ids
  // state manages, for finding the token an earlier create made.
  struct Listed {
    std::map<std::string, astro::ApiToken> by_id;
    std::set<std::string> managed;
    bool complete = true;
    std::string problem;
  };
  Result<Listed> list_for_matching() {
    auto listed = deps_.client.list_tokens();
    if (!listed.ok()) return listed.error();
    auto rows = deps_.store.resources();
    if (!rows.ok()) return rows.error();
    Listed out;
    out.complete = listed->consistent;
    out.problem = listed->problem;
    for (const auto& row : *rows) out.managed.insert(row.id);
    for (auto& token : listed->tokens) {
      std::string id = token.id;
      out.by_id.emplace(std::move(id), std::move(token));
    }
    return out;
  }

  // Why an earlier create cannot be settled from an inconsistent listing.
  static Error unsettled_create(const std::string& problem) {
    return Error::ambiguous(
        "an earlier create of this token may have taken effect, and the listing of tokens that "
        "would show it was inconsistent (" +
        problem + "); nothing was created, the next run looks again");
  }

  // Settles the create intents an interrupted run left for `key` that the
  // plan's refresh could not settle (PreparedPlan::unsettled), before a new
  // create: a listing shows the token one of them made -> it is adopted (as
  // for an ambiguous create) and the others are dropped; none, from a
  // consistent listing -> all are dropped and nullopt says "create";
  // otherwise the change fails and the intents stay pending.
  std::optional<Done> settle_earlier_creates(const std::string& key, const spec::TokenSpec& spec,
                                             const std::vector<state::Intent>& intents,
                                             std::vector<state::Outcome>& also_commit) {
    bool waited = false;
    for (;;) {
      const Timestamp listed_at = deps_.clock.now();
      auto listed = list_for_matching();
      if (!listed.ok())
        return failed(in_context(listed.error(),
                                 "an earlier create of this token may have taken effect and could "
                                 "not be checked; the next run will settle it"));
      for (const state::Intent& intent : intents) {
        const astro::ApiToken* match = find_created_token(intent, listed->by_id, listed->managed);
        if (match == nullptr) continue;
        astro::ApiToken token = *match;
        for (const state::Intent& other : intents)
          if (other.id != intent.id) drop_intent(other.id);
        return adopt_created(key, spec, delivery_of(spec), std::move(token), intent.id,
                             std::move(also_commit));
      }
      if (!listed->complete) return failed(unsettled_create(listed->problem));
      Timestamp latest{};
      for (const state::Intent& intent : intents) latest = std::max(latest, intent.settle_after);
      if (waited || listed_at >= latest) break;
      if (!wait_until(latest)) return failed(still_landing(latest));
      waited = true;
    }
    for (const state::Intent& intent : intents) drop_intent(intent.id);
    return std::nullopt;
  }

  // Waits until the wall clock reaches `settle_after` when that is at most
  // options.settle_wait away, waking every 100 ms to see whether to stop.
  // True once the time has come; false when it is further off, or stopping
  // cut the wait short.
  bool wait_until(Timestamp settle_after) {
    const Timestamp now = deps_.clock.now();
    if (now >= settle_after) return true;
    // `now` is whole seconds, never later than the time: waiting this long
    // from here reaches settle_after.
    const auto remaining =
        std::chrono::duration_cast<std::chrono::milliseconds>(settle_after - now);
    if (remaining > options_.settle_wait) return false;
    const auto deadline = SteadyClock::now() + remaining;
    for (auto left = remaining; left.count() > 0;
         left =
             std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now())) {
      if (stopping()) return false;
      std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds(100)));
    }
    return true;
  }

  // Why an earlier create or rotate whose request may still reach the API
  // (until `settle_after`) is not made again yet.
  static Error still_landing(Timestamp settle_after) {
    return Error::ambiguous(
        "an earlier call for this token may still take effect (its request may reach the API "
        "until " +
        format_rfc3339(settle_after) + "); nothing was called again, the next run settles it");
  }

  // When a listing shows whatever a call that starts now makes.
  Timestamp settle_after(Timestamp started_at) const {
    return started_at + std::chrono::ceil<std::chrono::seconds>(options_.settle_window);
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
    request.kind = attrs.kind;

    std::lock_guard<std::mutex> same_name(name_mutex(attrs.name));
    if (auto earlier = unsettled_.find(key); earlier != unsettled_.end()) {
      if (std::optional<Done> settled =
              settle_earlier_creates(key, spec, earlier->second, also_commit))
        return std::move(*settled);
    }
    state::Intent intent;
    intent.key = key;
    intent.kind = state::IntentKind::Create;
    intent.attrs = attrs;
    intent.sink_path = spec.sink;
    const Delivery delivery = delivery_of(spec);
    Error last;
    int attempts = 0;
    while (attempts < kMaxAttempts) {
      ++attempts;
      intent.started_at = deps_.clock.now();
      intent.settle_after = settle_after(intent.started_at);
      auto intent_id = deps_.store.journal_intent(intent);
      if (!intent_id.ok())
        return failed(in_context(intent_id.error(), "cannot journal the create"));
      intent.id = *intent_id;

      auto created = deps_.client.create_token(request);
      if (created.ok())
        return deliver_created(key, delivery, std::move(created.value()), intent.id,
                               std::move(also_commit), spec.attrs.roles);
      last = created.error();
      if (last.kind != ErrorKind::Ambiguous) {
        drop_intent(intent.id);
        return failed(last);
      }
      bool waited = false;
      for (;;) {
        const Timestamp listed_at = deps_.clock.now();
        auto listed = list_for_matching();
        if (!listed.ok()) {
          return failed(
              in_context(last, "the create may have taken effect and could not be checked (" +
                                   listed.error().describe() + "); the next run will settle it"));
        }
        if (const astro::ApiToken* match =
                find_created_token(intent, listed->by_id, listed->managed)) {
          astro::ApiToken token = *match;
          return adopt_created(key, spec, delivery, std::move(token), intent.id,
                               std::move(also_commit));
        }
        if (!listed->complete)
          return failed(in_context(last,
                                   "the create may have taken effect, and the listing of "
                                   "tokens that would show it was inconsistent (" +
                                       listed->problem + "); the next run will settle it"));
        if (waited || listed_at >= intent.settle_after) break;
        // The request may still reach the API: creating again now could make
        // a second token. Wait for it (when the window is short enough), or
        // leave the intent pending for the next run.
        deps_.logger.warn("ambiguous create may still take effect; waiting before creating again",
                          {{"address", address_for_key(key)},
                           {"settles_after", format_rfc3339(intent.settle_after)},
                           {"error", last.describe()}});
        if (!wait_until(intent.settle_after))
          return failed(in_context(last, still_landing(intent.settle_after).message));
        waited = true;
      }
      deps_.logger.warn("ambiguous create did not take effect; creating again",
                        {{"address", address_for_key(key)}, {"error", last.describe()}});
      drop_intent(intent.id);
      if (stopping()) break;
    }
    return failed(in_context(last, "the create did not succeed after " + std::to_string(attempts) +
                                       (attempts == 1 ? " attempt" : " attempts")));
  }

  Done deliver_created(const std::string& key, const Delivery& delivery, astro::ApiToken token,
                       int64_t intent_id, std::vector<state::Outcome> also_commit,
                       const RoleSet& role_set) {
    Done done;
    if (role_set.size() > 1) {
      Status roles = deps_.client.update_token_roles(token.id, role_set);
      if (roles.ok())
        token.roles = normalize_roles(role_set);
      else
        add_problem(done, in_context(roles.error(),
                                     "the token was created but its roles could not be set"));
    }
    SecretValue value = std::move(token.token);
    token.token = SecretValue();
    Status written = deps_.sink.write(delivery.target, value);
    std::string fingerprint;
    if (written.ok()) {
      fingerprint = sha256_hex(value.reveal());
    } else {
      add_problem(done, in_context(written.error(),
                                   "the token was created but its value could not be delivered "
                                   "(the next run rotates it)"));
    }
    state::ResourceRecord row = record_from_token(key, token, delivery.target.path, fingerprint);
    row.rotate_pending = !written.ok();
    row.delivery_pending = written.ok() && !delivery.hook.empty();
    std::vector<state::Outcome> outcomes{{key, row, intent_id}};
    outcomes.insert(outcomes.end(), also_commit.begin(), also_commit.end());
    if (auto error = commit(outcomes)) {
      // The intent stays pending: the next run adopts the token.
      return failed(*error);
    }
    done.committed = true;
    done.row = std::move(row);
    after_delivery(done, delivery, DeliveryAction::Create, value);
    return done;
  }

  // The ambiguous create did happen: record that token (its value is lost,
  // so rotate_pending), give it its role set, and rotate it for a value.
  Done adopt_created(const std::string& key, const spec::TokenSpec& spec, const Delivery& delivery,
                     astro::ApiToken token, int64_t intent_id,
                     std::vector<state::Outcome> also_commit) {
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
    done = rotate(row, delivery);
    if (!done.committed) {
      done.committed = true;
      done.row = row;
    }
    if (roles_problem) add_problem(done, *roles_problem);
    return done;
  }

  // ---- rotate ----------------------------------------------------------------

  // Rotates the token of `row` (as state holds it, or should), delivers the
  // new value to `delivery` and commits the row with the new validity
  // window, resolving the intent. An ambiguous rotate is checked with a
  // get: when it happened, the lost value is recorded (rotate_pending) and
  // the token rotated again.
  Done rotate(state::ResourceRecord row, const Delivery& delivery) {
    state::Intent intent;
    intent.key = row.key;
    intent.kind = state::IntentKind::Rotate;
    intent.token_id = row.id;
    intent.attrs = row.attrs;
    intent.sink_path = delivery.target.path;
    Done done;
    Error last;
    int attempts = 0;
    while (attempts < kMaxAttempts) {
      ++attempts;
      intent.started_at = deps_.clock.now();
      intent.settle_after = settle_after(intent.started_at);
      auto intent_id = deps_.store.journal_intent(intent);
      if (!intent_id.ok())
        return with_error(done, in_context(intent_id.error(), "cannot journal the rotation"));
      intent.id = *intent_id;

      auto rotated = deps_.client.rotate_token(row.id);
      if (rotated.ok())
        return deliver_rotated(std::move(row), delivery, std::move(rotated.value()), intent.id);
      last = rotated.error();
      if (last.kind != ErrorKind::Ambiguous) {
        drop_intent(intent.id);
        return with_error(done, last);
      }
      auto current = deps_.client.get_token(row.id);
      const auto took_effect = [&] {
        return current->start_at + kIntentClockSkew >= intent.started_at ||
               current->start_at != row.start_at;
      };
      if (current.ok() && !took_effect() && deps_.clock.now() < intent.settle_after) {
        // Not rotated yet, but the request may still land: rotating again
        // now would leave the sink a value the late rotation revokes. Wait
        // for it (when the window is short enough) and look again, or leave
        // the intent pending; the next run rotates once it is settled.
        deps_.logger.warn("ambiguous rotation may still take effect; waiting before rotating again",
                          {{"address", row.address()},
                           {"settles_after", format_rfc3339(intent.settle_after)},
                           {"error", last.describe()}});
        if (!wait_until(intent.settle_after))
          return with_error(done, in_context(last, still_landing(intent.settle_after).message));
        current = deps_.client.get_token(row.id);
      }
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
      const bool happened = took_effect();
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

  Done deliver_rotated(state::ResourceRecord row, const Delivery& delivery, astro::ApiToken token,
                       int64_t intent_id) {
    Done done;
    SecretValue value = std::move(token.token);
    token.token = SecretValue();
    Status written = deps_.sink.write(delivery.target, value);
    std::string fingerprint;
    if (written.ok())
      fingerprint = sha256_hex(value.reveal());
    else
      add_problem(done, in_context(written.error(),
                                   "the token was rotated but its value could not be delivered "
                                   "(the next run rotates it again)"));
    state::ResourceRecord rotated =
        record_from_token(row.key, token, delivery.target.path, fingerprint);
    rotated.rotate_pending = !written.ok();
    rotated.delivery_pending = written.ok() && !delivery.hook.empty();
    if (auto error = commit({{row.key, rotated, intent_id}})) return with_error(done, *error);
    done.committed = true;
    done.row = std::move(rotated);
    after_delivery(done, delivery, DeliveryAction::Rotate, value);
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
      done = rotate(row, delivery_of(after));
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
    if (!change.update_name_description && !change.update_roles && !change.rotate) return imported;
    Done done = update(row, change);
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
  // Create intents to settle before creating for their key, oldest first.
  // Read-only once built (each key has one change).
  std::map<std::string, std::vector<state::Intent>> unsettled_;
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

using Hook = std::vector<std::string>;

// Calls `work(i)` for i in [0, count) on up to options.parallelism threads;
// no new call starts once options.stop is raised.
void run_on_workers(size_t count, const ApplyOptions& options,
                    const std::function<void(size_t)>& work) {
  std::atomic<size_t> next{0};
  const auto worker = [&] {
    for (;;) {
      if (options.stop != nullptr && options.stop->load()) return;
      const size_t index = next.fetch_add(1);
      if (index >= count) return;
      work(index);
    }
  };
  const size_t workers = std::min(count, static_cast<size_t>(std::max(1, options.parallelism)));
  std::vector<std::thread> threads;
  threads.reserve(workers);
  for (size_t i = 0; i < workers; ++i) threads.emplace_back(worker);
  for (std::thread& thread : threads) thread.join();
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

  Executor executor(deps, options, shared_sinks(plan, managed), prepared.unsettled);
  std::mutex report_mutex;
  const auto record = [&](const state::ActionRecord& action) {
    if (options.run_id == 0) return;
    if (Status recorded = deps.store.record_action(options.run_id, action); !recorded.ok())
      deps.logger.warn("cannot record the action in run history",
                       {{"error", recorded.error().describe()}});
  };
  for (const Recovery::LateToken& late : prepared.late) {
    const std::string kept = address_for_key(deposed_key(late.key, late.token_id));
    record(state::ActionRecord{late.address(), late.adopted ? "adopt" : "orphan", true,
                               "token " + late.token_id +
                                   " was made by a create that took effect late; " +
                                   (late.adopted ? "adopted, its value is rotated"
                                                 : "kept as " + kept + " to be destroyed"),
                               0});
  }
  const auto hook_ran = [&](const HookReport& hook, const std::vector<std::string>& program) {
    record(state::ActionRecord{hook.address(), "deliver", hook.ok,
                               hook.ok ? "" : hook.describe(program.empty() ? "" : program[0]),
                               hook.seconds});
    std::lock_guard<std::mutex> lock(report_mutex);
    if (!hook.ok) ++report.hooks_failed;
    report.hooks.push_back(hook);
  };

  run_on_workers(plan.changes.size(), options, [&](size_t index) {
    const plan::Change& change = plan.changes[index];
    if (observer != nullptr) observer->started(change);
    ActionResult result = executor.run(change);
    record(state::ActionRecord{change.address(), std::string(plan::to_string(change.action)),
                               result.ok, result.ok ? "" : result.error.describe(),
                               result.seconds});
    if (result.hook) hook_ran(*result.hook, change.after ? change.after->on_delivery : Hook{});
    {
      std::lock_guard<std::mutex> lock(report_mutex);
      if (result.ok) {
        plan::Counts counts = counts_of(change);
        report.applied.import += counts.import;
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
  });
  report.stopped = report.results.size() < plan.changes.size();

  // Pending deliveries, once the changes are done (redeliver skips a row
  // that a change has given a new value or cleared meanwhile).
  if (!report.stopped) {
    run_on_workers(prepared.deliveries.size(), options, [&](size_t index) {
      const PendingDelivery& pending = prepared.deliveries[index];
      if (auto hook = executor.redeliver(pending)) hook_ran(*hook, pending.hook);
    });
  }
  return report;
}

}  // namespace tokend::apply
