// The plain values state/ records: managed tokens, intents, outcomes, run
// history and snapshots. No I/O; plan/ and apply/ name these without naming
// the store (store.h, which also states the module's contract).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/token.h"

namespace tokend::state {

// One managed token as last recorded.
struct ResourceRecord {
  std::string key;  // address is address_for_key(key)
  std::string id;   // the API token id
  TokenAttrs attrs;
  std::string short_token;
  Timestamp created_at{};
  Timestamp updated_at{};
  Timestamp start_at{};             // start of the current validity window (moves on rotate)
  std::optional<Timestamp> end_at;  // expiry of the current value; nullopt: never expires
  // When the API last rotated the token (read-only, v1 lastRotatedAt);
  // nullopt when never rotated or not reported.
  std::optional<Timestamp> last_rotated_at;
  std::string sink_path;  // where the secret was delivered
  std::string
      sink_sha256;  // fingerprint of the delivered value; "" when never delivered (imported)
  bool rotate_pending = false;  // the current value is unknown (lost in a crash): rotate next run
  // The delivery hook has not yet succeeded for the value at sink_path: run
  // it again (ASTRO_TOKEND_ACTION=deliver) on the next run.
  bool delivery_pending = false;

  std::string address() const { return address_for_key(key); }
  bool operator==(const ResourceRecord&) const = default;
};

// A non-idempotent call about to be made. Journalled before the call, resolved
// in the same transaction that records its outcome; a pending intent after a
// crash or an Ambiguous answer is resolved by the next run, once a listing
// taken at or after settle_after settles it.
enum class IntentKind { Create, Rotate };
struct Intent {
  int64_t id = 0;  // assigned by journal_intent
  std::string key;
  IntentKind kind = IntentKind::Create;
  std::string token_id;  // Rotate: the token being rotated; Create: ""
  TokenAttrs attrs;      // Create: what was requested
  std::string sink_path;
  Timestamp started_at{};
  // From this time on, a listing shows any token the call made: the call's
  // start plus the client's timeout and a margin (a request whose answer was
  // lost may still reach the API until then). The epoch: any listing.
  Timestamp settle_after{};
  // A create intent is kept once resolved (StateStore::recent_creates), with
  // the token it made ("" when none), so that a token that lands late is
  // still recognised as made by astro-tokend.
  bool resolved = false;
  std::string made_token_id;

  bool operator==(const Intent&) const = default;
};

// The effect of one applied action on state: upsert `resource`, or remove
// `key` when resource is nullopt; resolve `resolved_intent` when set.
struct Outcome {
  std::string key;
  std::optional<ResourceRecord> resource;
  std::optional<int64_t> resolved_intent;
};

// One action of a run, as history shows it.
struct ActionRecord {
  std::string address;
  // A plan action ("create", "update", "replace", "delete", "rotate",
  // "import", "forget"), "deliver" (a run of the token's delivery hook) or
  // "hold" (the token was held back: its sink could not be read), "adopt"
  // (a token a create made that took effect late was adopted) or "orphan"
  // (such a token, beside the key's own, kept under its deposed key to be
  // destroyed).
  std::string action;
  bool ok = true;
  std::string message;  // error description when !ok (never a secret)
  double duration_seconds = 0;

  bool operator==(const ActionRecord&) const = default;
};

// How a run ended. begin_run records a run as Interrupted and finish_run
// says how it really ended, so a run that a crash cut short reads back as
// Interrupted.
enum class RunResult {
  Ok,           // every planned change completed
  NoOp,         // nothing to change
  Planned,      // changes found and reported, not applied (daemon in plan mode)
  Failed,       // planning failed, or a change failed or was left unstarted
  Refused,      // nothing was changed (mass-delete guard, plan errors, bad specs)
  Interrupted,  // begun and never finished
};
// "ok", "no-op", "planned", "failed", "refused", "interrupted".
std::string_view to_string(RunResult result);
// The inverse of to_string; nullopt for any other text.
std::optional<RunResult> parse_run_result(std::string_view text);

struct RunRecord {
  int64_t id = 0;
  std::string trigger;  // "cli", "timer", "config-change", "sighup", "startup"
  std::string command;  // "apply", "plan", "run"
  Timestamp started_at{};
  std::optional<Timestamp> finished_at;
  int to_add = 0, to_change = 0, to_destroy = 0, to_rotate = 0;
  int failed = 0;
  int api_calls = 0;            // API requests the run made, its refresh and retries included
  double duration_seconds = 0;  // applying, from the settled plan to the end
  RunResult result = RunResult::Interrupted;
  std::string message;
  std::vector<ActionRecord> actions;

  bool operator==(const RunRecord&) const = default;
};

// Lineage, serial and resources read together in one read transaction, so
// that a saved plan names exactly the serial its prior state had.
struct StateSnapshot {
  std::string lineage;
  int64_t serial = 0;
  std::vector<ResourceRecord> resources;  // sorted by key
};

// Who holds the writer lock.
struct LockHolder {
  int pid = 0;
  std::string host;
  std::string command;
  Timestamp since{};
  std::string describe() const;  // "pid 123 on host h (apply) since 2026-…Z"
};

}  // namespace tokend::state
