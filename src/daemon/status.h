// The daemon's status page: what it is doing, its last reconcile and plan,
// each managed token and the recent history, as one self-contained HTML page
// at `/` (no external assets, no JavaScript, readable in a text browser) and
// the same data as JSON at `/status.json`.
//
// The loop publishes a StatusSnapshot to a StatusBoard after each cycle and
// reload; the HTTP server's threads read copies of it. Everything that comes
// from the API or the specs is HTML-escaped (and JSON-escaped); no secret is
// ever part of a snapshot.
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/token.h"
#include "plan/plan.h"
#include "state/records.h"

namespace tokend::daemon {

// One managed token as the status page shows it.
struct TokenStatus {
  std::string address;
  std::string id;
  std::string name;
  EntityType type = EntityType::Organization;
  TokenKind kind = TokenKind::Standard;
  std::string role;
  RoleSet roles;
  std::optional<Timestamp> expires_at;     // nullopt: never expires
  std::optional<Timestamp> last_rotation;  // its last rotation, or its creation
  std::optional<Timestamp> next_rotation;  // nullopt: none planned
  std::vector<std::string> drifted;        // attributes changed outside astro-tokend
  bool deleted_outside = false;            // deleted outside astro-tokend
  std::string pending;                     // the last plan's action for it ("" none)
  std::string failure;                     // the last failed change, while it backs off
  std::optional<Timestamp> retry_at;       // backing off until then
};

// One change of the last plan.
struct PlannedChange {
  std::string address;
  std::string action;  // plan::to_string(Action)
  bool rotate = false;
};

struct StatusSnapshot {
  // The daemon.
  std::string version;
  std::string organization_id;
  std::string mode;                // "apply" or "plan"
  std::string state = "starting";  // "starting", "running", "stopping"
  bool leader = true;
  std::optional<Timestamp> started_at;
  std::optional<Timestamp> config_loaded_at;
  bool last_reload_ok = true;
  std::string reload_error;  // the refused reload's first problem
  double interval_seconds = 0;

  // The last reconcile cycle (none yet when `reconciled` is false).
  bool reconciled = false;
  std::optional<Timestamp> last_cycle_at;  // when it started
  std::string last_result;                 // "success", "failure", "refused"
  std::string last_trigger;
  double last_duration_seconds = 0;
  std::string last_summary;
  std::string last_error;
  std::optional<Timestamp> next_cycle_at;

  // The last plan.
  bool planned = false;
  plan::Counts plan_counts;
  std::vector<PlannedChange> plan_changes;
  int drift = 0;

  std::vector<TokenStatus> tokens;        // by address
  std::vector<state::RunRecord> history;  // newest first
};

// The snapshot the loop publishes and the HTTP threads read. Thread-safe.
class StatusBoard {
 public:
  template <typename Edit>
  void update(Edit&& edit) {
    std::lock_guard<std::mutex> lock(mutex_);
    edit(snapshot_);
  }
  StatusSnapshot snapshot() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return snapshot_;
  }

 private:
  mutable std::mutex mutex_;
  StatusSnapshot snapshot_;
};

// `text` with &, <, >, " and ' as character references.
std::string html_escape(std::string_view text);

// The status page as of `now` (days left, "in 5m"): a complete HTML5
// document with inline CSS only.
std::string render_status_html(const StatusSnapshot& status, Timestamp now);

// The same data as one JSON object (times in RFC 3339, durations in seconds):
//   {"daemon": {...}, "last_reconcile": {...} | null, "plan": {...} | null,
//    "tokens": [...], "history": [...]}
std::string render_status_json(const StatusSnapshot& status, Timestamp now);

}  // namespace tokend::daemon
