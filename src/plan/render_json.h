// The machine view of a Plan: Terraform's JSON plan representation
// (format_version "1.2"), so existing plan tooling can read it.
//
//   {"format_version": "1.2", "astro_tokend_version": "…", "lineage": "…",
//    "serial": N, "timestamp": "…Z", "refreshed": true,
//    "resource_drift": [ResourceChange…], "resource_changes": [ResourceChange…],
//    "errors": ["…"], "errored": false}
//
// A ResourceChange has address, mode "managed", type "astro_api_token", name
// (the key), provider_name, change {actions, before, after, after_unknown,
// before_sensitive, after_sensitive} and action_reason when there is one.
// Actions: Create ["create"]; Import ["create"] with change.importing
// {"id": …}; Update ["update"]; Rotate ["update"] with change.rotate true
// (also set on an Update that rotates) and change.rotate_reason; Replace
// ["delete","create"], or ["create","delete"] with create_before_destroy, and
// change.replace_paths; Delete ["delete"]; Forget ["forget"] (Terraform's
// action for dropping an object from state without destroying it). No-ops
// are not listed. Drift entries use ["update"] (changed) or ["delete"].
//
// The secret token is never a value: before/after never contain it;
// before_sensitive/after_sensitive mark it ({"token": true}) and
// after_unknown marks it when a new value will be issued. Pure; never fails.
#pragma once

#include <string>

#include "plan/plan.h"

namespace tokend::plan {

inline constexpr const char* kProviderName = "registry.terraform.io/astronomer/astro";

// Indented JSON text ending in a newline.
std::string render_json(const Plan& plan);

}  // namespace tokend::plan
