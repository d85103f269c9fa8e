// The machine view of a Plan: Terraform's JSON plan representation
// (format_version "1.2"), so existing plan tooling can read it.
//
//   {"format_version": "1.2", "terraform_version": "<astro-tokend's version>",
//    "astro_tokend_version": "…", "lineage": "…", "serial": N,
//    "timestamp": "…Z", "applyable": bool, "complete": bool, "errored": bool,
//    "refreshed": bool,
//    "planned_values": {"root_module": {"resources": [ResourceValues…]}},
//    "resource_drift": [ResourceChange…], "resource_changes": [ResourceChange…],
//    "prior_state": {"format_version": "1.0", "terraform_version": "…",
//                    "values": {"root_module": {"resources": [ResourceValues…]}}},
//    "errors": ["…"], "diagnostics": [Diagnostic…]}
//
// applyable: no errors and at least one change. complete: no errors, no
// --target (a targeted plan covers only part of the configuration) and no
// token left out (problems, below). errored:
// there are errors (Plan::errors, also given as diagnostics).
//
// ResourceValues (Terraform's values representation) has address, mode
// "managed", type "astro_api_token", name (the key), provider_name,
// schema_version 0, values (the known attributes) and sensitive_values
// ({"token": true}). planned_values lists every token that exists after the
// plan (unknown attributes left out); prior_state every token of the
// refreshed state (without those gone remotely or still to be imported).
//
// A ResourceChange has address, mode, type, name, provider_name, change
// {actions, before, after, after_unknown, before_sensitive, after_sensitive}
// and action_reason when there is one. Actions: Create ["create"]; Import
// ["update"] when it also updates or rotates, else ["no-op"], with
// change.importing {"id": …} (Terraform's import representation); Update
// ["update"]; Rotate ["update"] with change.rotate true (also set on an
// Update or Import that rotates) and change.rotate_reason; Replace
// ["delete","create"], or ["create","delete"] with create_before_destroy, and
// change.replace_paths; Delete ["delete"]; Forget ["forget"] (Terraform's
// action for dropping an object from state without destroying it). No-ops
// are not listed. Drift entries use ["update"] (changed) or ["delete"].
//
// The secret token is never a value: before/after/values never contain it;
// before_sensitive/after_sensitive/sensitive_values mark it ({"token": true})
// and after_unknown marks it when a new value will be issued. Pure; never
// fails.
#pragma once

#include <string>
#include <vector>

#include "plan/plan.h"
#include "spec/model.h"
#include "util/result.h"

namespace tokend::plan {

inline constexpr const char* kProviderName = "registry.terraform.io/astronomer/astro";

// One of Terraform's diagnostics: severity "error", summary, detail and, when
// the position is known, range {filename, start {line, column}, end {line,
// column}} (a point: end equals start).
struct JsonDiagnostic {
  std::string summary;
  std::string detail;
  std::string filename;  // "" when the problem has no file
  int line = 0;          // 1-based; 0 when unknown (no range then)
  int column = 0;        // 1-based byte within the line; 0 when unknown
};
JsonDiagnostic json_diagnostic(const spec::Diagnostic& diagnostic);
JsonDiagnostic json_diagnostic(const Error& error);
JsonDiagnostic json_diagnostic(const std::string& message);

// Indented JSON text ending in a newline. `problems`: per-token errors met
// while planning that left a token out of the plan (a sink that cannot be
// read); they follow the plan's errors in diagnostics and make the plan
// incomplete, not errored (the rest of it can be applied).
std::string render_json(const Plan& plan, const std::vector<JsonDiagnostic>& problems = {});

// The document `plan --json` prints when no plan could be made (bad input,
// an API failure): format_version, terraform_version, astro_tokend_version,
// applyable false, complete false, errored true and the diagnostics.
// Indented JSON text ending in a newline.
std::string render_json_failure(const std::vector<JsonDiagnostic>& diagnostics);

}  // namespace tokend::plan
