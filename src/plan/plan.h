// plan/ — the differ and its value types: compute(desired, prior, observed,
// sinks, now) -> Plan, renderers (Terraform-style text and JSON), and saved
// plan files.
//
// May not: do I/O, read a clock, or call the API inside compute(). Everything
// the differ needs (remote tokens, sink file status, the time) is an input;
// apply/ acts only on what a Plan says.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "astro/types.h"
#include "model/token.h"
#include "spec/model.h"
#include "state/records.h"

namespace tokend::plan {

enum class Action {
  Create,   // `+`  in specs, not in state (or gone remotely)
  Import,   // `<=` in specs with import_id, not in state: adopt the existing token
  Update,   // `~`  name/description/roles differ; may also rotate
  Replace,  // `-/+` or `+/-`  type, expiry or kind differs (cannot be updated)
  Delete,   // `-`  in state, not in specs
  Rotate,   // `↻`  rotation due, expired, or sink missing/mismatched
  Forget,   //      in state, not in specs, already gone remotely: drop the row, no API call
};
// "create", "import", "update", "replace", "delete", "rotate", "forget".
std::string_view to_string(Action action);
// The inverse of to_string; nullopt for any other text.
std::optional<Action> parse_action(std::string_view text);

enum class RotateReason {
  None,
  BeforeExpiry,
  Cadence,
  Expired,
  SinkMissing,
  SinkMismatch,
  ValueLost,
  Requested,  // --rotate ADDR
};
// "none", "before_expiry", "cadence", "expired", "sink_missing",
// "sink_mismatch", "value_lost", "requested".
std::string_view to_string(RotateReason reason);
std::optional<RotateReason> parse_rotate_reason(std::string_view text);

// The state of a token's sink file, measured by the caller before compute().
enum class SinkStatus {
  Ok,        // exists and its SHA-256 matches the recorded fingerprint
  Missing,   // no file at the recorded sink path
  Mismatch,  // file exists but does not match (or the sink path changed)
  // Something is there that cannot be read (permissions, I/O error): it may
  // well hold the value, so it is never a reason to rotate.
  Unreadable,
};

struct Change {
  std::string key;  // address is address_for_key(key)
  Action action = Action::Create;

  // What exists now: the state row, with attributes refreshed from the API when
  // the plan refreshed. nullopt for Create. For Import: the token to adopt as
  // the API reported it (no sink, no fingerprint) when the plan refreshed,
  // nullopt otherwise.
  std::optional<state::ResourceRecord> before;
  // What the spec asks for, with the attributes named in
  // lifecycle.ignore_changes taken from `before` (Terraform's rule: an ignored
  // attribute keeps its current value). Roles are normalized. nullopt for
  // Delete and Forget.
  std::optional<spec::TokenSpec> after;

  // Update (and Import followed by an update): which calls are needed.
  bool update_name_description = false;
  bool update_roles = false;
  // Rotate, or Update that also rotates.
  bool rotate = false;
  RotateReason rotate_reason = RotateReason::None;
  // Replace: the attributes that force it ("type", "expiry_period_in_days",
  // "kind").
  std::vector<std::string> replace_paths;
  bool create_before_destroy = false;
  // Terraform's action_reason: "replace_because_cannot_update",
  // "delete_because_no_resource_config", or "".
  std::string action_reason;
  // Create because the recorded token was deleted outside astro-tokend.
  bool recreate_after_remote_delete = false;

  std::string address() const { return address_for_key(key); }
};

// A difference between what state recorded and what the API reports,
// made outside astro-tokend ("Objects have changed outside of astro-tokend").
struct Drift {
  std::string key;
  enum class Kind { Changed, Deleted } kind = Kind::Changed;
  state::ResourceRecord recorded;
  std::optional<astro::ApiToken> observed;  // nullopt when Deleted
};

struct Counts {
  int import = 0, add = 0, change = 0, destroy = 0, rotate = 0;
  bool empty() const {
    return import == 0 && add == 0 && change == 0 && destroy == 0 && rotate == 0;
  }
};

struct Plan {
  std::vector<Change> changes;  // sorted by key; no-ops omitted
  std::vector<Drift> drift;     // sorted by key
  // The kept tokens that need no change (no-ops), as refreshed: with
  // `changes`, what the state holds before and after the plan. Sorted by key.
  std::vector<state::ResourceRecord> unchanged;
  // Problems that make the plan unusable (e.g. prevent_destroy, import_id not
  // found). A plan with errors must not be applied.
  std::vector<std::string> errors;

  std::string lineage;    // of the state the plan was computed against
  int64_t serial = 0;     // of the state the plan was computed against
  std::string spec_hash;  // of the specs it was computed from
  bool refreshed = true;
  Timestamp created_at{};
  std::vector<std::string> targets;  // --target addresses, empty = all

  // Terraform's counting: Import imports 1 (and changes 1 when it also
  // updates), Create adds 1, Update changes 1, Replace adds 1 and destroys 1,
  // Delete destroys 1, Rotate (or an Update or Import with rotate) rotates 1.
  // Forget counts nothing (no API call; the token is already gone).
  Counts counts() const;
  bool empty() const { return changes.empty(); }
};

// What the API reports, by token id. `refreshed` false means no refresh was
// done (--refresh=false): the differ then trusts state. A token missing from
// `tokens` is gone: the refresh confirms every recorded token a listing did
// not show with a GET by id before leaving it out.
struct Observed {
  bool refreshed = true;
  std::map<std::string, astro::ApiToken> tokens;  // by id
  // For intent recovery (the differ ignores these): whether the listing is
  // believed to show every token of the organization (its pages were
  // consistent and no token it left out turned up by GET), and when it began.
  bool complete = true;
  Timestamp listed_at{};
};

struct Input {
  std::vector<spec::TokenSpec> desired;  // sorted by key
  // When set, the specs to plan instead of `desired` (left empty), so that a
  // caller that keeps its specs need not copy them; must outlive compute().
  const std::vector<spec::TokenSpec>* desired_elsewhere = nullptr;
  const std::vector<spec::TokenSpec>& specs() const {
    return desired_elsewhere ? *desired_elsewhere : desired;
  }
  std::vector<state::ResourceRecord> prior;  // sorted by key
  // false: Plan::unchanged is left empty, for a caller that neither shows the
  // plan as JSON nor saves it (a text plan, the daemon's cycle).
  bool record_unchanged = true;
  Observed observed;
  std::map<std::string, SinkStatus> sinks;  // by key; absent = not checked (treated as Ok)
  Timestamp now{};
  std::vector<std::string> targets;  // addresses; empty = all
  // --rotate: addresses whose tokens rotate whatever their age.
  std::vector<std::string> rotations;
  std::string lineage;
  int64_t serial = 0;
  std::string spec_hash;
};

// The pure differ: same input, same plan. Covers every row of product.md §3.
// Never fails: problems are collected in Plan::errors, and a key whose
// planning failed contributes its error and no Change. The rules:
//
// Keys. Every key of the union of `desired` and `prior` is planned (in key
// order), unless `targets` is non-empty and does not name its address; an
// untargeted key yields no change, no drift and no error. Organization tokens
// that no spec or state row names are never looked at.
//
// Current attributes. With observed.refreshed false the state row is trusted
// as it is. Otherwise the row's token is looked up by id in observed.tokens:
//   - missing: Drift{Deleted}; the token is gone.
//   - present: the row's attrs, short_token and created/updated/start/end
//     times (last_rotated_at too) are replaced by the API's (this is
//     `before`); when name, description, roles (as a set), type,
//     expiry_period_in_days or kind differ from the row's, Drift{Changed}.
//     Drift is informational: the action below compares the spec with the
//     current attributes.
//
// ignore_changes. Each ignored attribute (name, description, type,
// expiry_period_in_days, kind, roles, role; "all" = every one) takes its current
// value in `after`, so it compares equal. Ignoring `roles` keeps the whole
// current role set and `role`; ignoring only `role` keeps the current
// entries on the entity of the token's type and the spec's other entries.
// Role substitutions apply only when spec and token have the same type.
//
// Actions, per key (a key with a spec and a row whose token needs no change
// is a no-op: its current record goes to Plan::unchanged):
//   - spec, no row, no import_id: Create.
//   - spec, no row, import_id: Import. Errors: the id is the id of another
//     key's state row, or another spec without a row imports the same id;
//     when refreshed, the id is not in observed.tokens, or the token's type,
//     expiry_period_in_days or kind differs from the spec's (an import cannot
//     replace). Name, description and roles differences set the update flags
//     of the Import. An Import rotates only when `rotations` names it
//     (reason Requested).
//   - spec and row, token gone (refreshed): Create with
//     recreate_after_remote_delete.
//   - spec and row, token present: type, expiry_period_in_days or kind
//     differ -> Replace with replace_paths (in that order), action_reason
//     "replace_because_cannot_update", create_before_destroy from the spec;
//     an error instead when lifecycle.prevent_destroy is set. Otherwise
//     name/description differ -> update_name_description, roles differ ->
//     update_roles; either makes an Update. Then rotation (below) makes the
//     change a Rotate, or sets `rotate` on the Update.
//   - row, no spec: Delete with action_reason
//     "delete_because_no_resource_config"; Forget when the token is gone
//     (refreshed), which needs no API call.
//
// Held back. A key with a spec and a state row whose sink is Unreadable gets
// no change at all, whatever else differs (drift is still reported, and a
// token that still exists goes to Plan::unchanged): the caller reports it as
// an error for that token.
//
// Rotation (only for a kept token: Update or otherwise no-op), the first
// reason that holds: Requested (`rotations` names its address); ValueLost
// (row.rotate_pending); Expired (end_at <= now);
// SinkMissing / SinkMismatch (only when the row has a sink_sha256, i.e. a
// value was delivered: sinks[key] Missing or Mismatch, or the spec's sink
// path differs from the row's sink_path, which is a Mismatch); BeforeExpiry
// (end_at - now < rotate_before_expiry_days days); Cadence
// (rotate_every_days > 0 and now - start_at >= rotate_every_days days).
//
// `rotations`. A Create or Replace issues a new value anyway, so naming it
// adds nothing. Errors, one per address: it is not an address; no spec names
// it ("--rotate astro_api_token.k names no token in the configuration"; a
// token only in state is destroyed, not rotated); `targets` is non-empty and
// does not name it.
//
// Error messages name the address, e.g.
//   import_id "X" for astro_api_token.k does not exist in the organization
//   astro_api_token.k has lifecycle.prevent_destroy set, but the plan calls
//   for this resource to be destroyed
Plan compute(const Input& input);

// When the token's next rotation falls due by time alone (compute()'s
// Expired, BeforeExpiry and Cadence reasons), as of its current record: the
// earliest of its expiry, its expiry less rotate_before_expiry_days and its
// start plus rotate_every_days. nullopt when none applies (a token that never
// expires and has no cadence). Pure.
std::optional<Timestamp> next_rotation(const spec::TokenSpec& spec,
                                       const state::ResourceRecord& current);

// The attributes that `drift` changed outside astro-tokend, of name,
// description, type, role, roles, expiry_period_in_days and kind, in that order;
// empty for a deleted token. Pure.
std::vector<std::string> drifted_attributes(const Drift& drift);

}  // namespace tokend::plan
