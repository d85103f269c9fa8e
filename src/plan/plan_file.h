// Saved plan files (`plan --out FILE`, `apply FILE`, `show FILE`): a Plan
// encoded as versioned JSON that carries everything apply needs to execute
// it exactly (every Change and Drift with its full before/after, the specs'
// lifecycle and sink) plus what it was computed against (state lineage and
// serial, spec hash, time, refresh, targets).
//
//   {"astro_tokend_plan": 1, "astro_tokend_version": "…", "lineage": "…",
//    "serial": N, "spec_hash": "…", "created_at": "…Z", "refreshed": true,
//    "targets": […], "changes": […], "drift": […], "unchanged": […], "errors": […]}
//
// "unchanged" (the no-op tokens' records) may be absent; it then loads empty.
//
// Like a Plan, a plan file never holds a secret value; it does hold the
// SHA-256 fingerprints that state keeps. Encoding and decoding round-trip
// exactly, except the specs' delivery settings (sink_mode, sink_group,
// on_delivery), which a plan file never carries: `apply FILE` takes them
// from the specs as loaded (whose hash the plan names), so that a plan file
// cannot make astro-tokend run a program. Pure: callers read and write the
// file.
#pragma once

#include <string>
#include <vector>

#include "plan/plan.h"
#include "util/result.h"

namespace tokend::plan {

inline constexpr int kPlanFileVersion = 1;

// The file's text (indented JSON ending in a newline).
std::string save_plan(const Plan& plan);

// Error Invalid when the text is not JSON, not a plan file, of another
// version than kPlanFileVersion, misses or mistypes a field, or holds two
// changes for one address; the message names the field (e.g.
// `plan file: changes[0].action: unknown action "x"`) or both changes.
Result<Plan> load_plan(const std::string& text);

// Reads the plan file at `path` (at most kMaxInputFileBytes) and loads it.
// Io "cannot read plan file PATH: REASON" when it cannot be read; Invalid
// "PATH is larger than N bytes"; load_plan's Invalid with "PATH: " in front.
Result<Plan> load_plan_file(const std::string& path);

// Whether a saved plan creates only tokens the state does not manage yet,
// or re-creates one whose recorded token (the state's id) the plan found
// deleted outside astro-tokend (a Deleted drift). Error Invalid "plan file: changes[N]: creates
// ADDR, which the state already manages" otherwise. (load_plan already refuses a plan that changes
// one address twice.)
Status check_plan_creates(const Plan& plan, const std::vector<state::ResourceRecord>& resources);

// Whether a saved plan may still be applied to the state (lineage, serial)
// and specs (spec_hash) as they are now. Error Conflict, checked in this order:
//   "Saved plan is stale: it was created for a different state lineage."
//   "Saved plan is stale: the state has changed since the plan was created (serial N, now M)."
//   "Saved plan is stale: the token specs have changed since the plan was created."
Status check_plan_current(const Plan& plan, const std::string& lineage, int64_t serial,
                          const std::string& spec_hash);

}  // namespace tokend::plan
