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

#include "astro/client.h"
#include "model/token.h"
#include "spec/model.h"
#include "state/store.h"

namespace tokend::plan {

enum class Action {
  Create,   // `+`  in specs, not in state (or gone remotely)
  Import,   // `+`  in specs with import_id, not in state: adopt the existing token
  Update,   // `~`  name/description/roles differ; may also rotate
  Replace,  // `-/+` or `+/-`  type or expiry differs (cannot be updated)
  Delete,   // `-`  in state, not in specs
  Rotate,   // `↻`  rotation due, expired, or sink missing/mismatched
  Forget,   //      in state, not in specs, already gone remotely: drop the row, no API call
};
std::string_view to_string(Action action);

enum class RotateReason { None, BeforeExpiry, Cadence, Expired, SinkMissing, SinkMismatch, ValueLost };
std::string_view to_string(RotateReason reason);

// The state of a token's sink file, measured by the caller before compute().
enum class SinkStatus {
  Ok,        // exists and its SHA-256 matches the recorded fingerprint
  Missing,   // no file at the recorded sink path
  Mismatch,  // file exists but does not match (or the sink path changed)
};

struct Change {
  std::string key;  // address is address_for_key(key)
  Action action = Action::Create;

  // What exists now: the state row, with attributes refreshed from the API when
  // the plan refreshed. nullopt for Create and Import.
  std::optional<state::ResourceRecord> before;
  // What the spec asks for. nullopt for Delete and Forget.
  std::optional<spec::TokenSpec> after;

  // Update (and Import followed by an update): which calls are needed.
  bool update_name_description = false;
  bool update_roles = false;
  // Rotate, or Update that also rotates.
  bool rotate = false;
  RotateReason rotate_reason = RotateReason::None;
  // Replace: the attributes that force it ("type", "expiry_period_in_days").
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
  int add = 0, change = 0, destroy = 0, rotate = 0;
  bool empty() const { return add == 0 && change == 0 && destroy == 0 && rotate == 0; }
};

struct Plan {
  std::vector<Change> changes;  // sorted by key; no-ops omitted
  std::vector<Drift> drift;     // sorted by key
  // Problems that make the plan unusable (e.g. prevent_destroy, import_id not
  // found). A plan with errors must not be applied.
  std::vector<std::string> errors;

  std::string lineage;   // of the state the plan was computed against
  int64_t serial = 0;    // of the state the plan was computed against
  std::string spec_hash; // of the specs it was computed from
  bool refreshed = true;
  Timestamp created_at{};
  std::vector<std::string> targets;  // --target addresses, empty = all

  // Terraform's counting: Create/Import add 1, Update changes 1, Replace adds 1
  // and destroys 1, Delete destroys 1, Rotate (or Update with rotate) rotates 1.
  Counts counts() const;
  bool empty() const { return changes.empty(); }
};

// What the API reports, by token id. `refreshed` false means no refresh was
// done (--refresh=false): the differ then trusts state.
struct Observed {
  bool refreshed = true;
  std::map<std::string, astro::ApiToken> tokens;  // by id
};

struct Input {
  std::vector<spec::TokenSpec> desired;      // sorted by key
  std::vector<state::ResourceRecord> prior;  // sorted by key
  Observed observed;
  std::map<std::string, SinkStatus> sinks;   // by key; absent = not checked (treated as Ok)
  Timestamp now{};
  std::vector<std::string> targets;          // addresses; empty = all
  std::string lineage;
  int64_t serial = 0;
  std::string spec_hash;
};

// The pure differ: same input, same plan. Covers every row of product.md §3.
Plan compute(const Input& input);

}  // namespace tokend::plan
