// The role rules of a token spec (product.md §1) as pure functions over a
// token's type, its primary role and its role entries. No I/O, no TOML: the
// loader maps each RoleProblem back to a file position.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/token.h"

namespace tokend::spec {

// The entity type a built-in role belongs to (ORGANIZATION_OWNER ->
// Organization, …, DAG_VIEWER -> Dag, which also serves DAG_TAG entries);
// nullopt for any other name, which is a custom DEPLOYMENT or DAG role.
std::optional<EntityType> builtin_role_entity_type(std::string_view role);

// The built-in role names of `type`, in documentation order.
std::vector<std::string_view> builtin_roles(EntityType type);

struct RoleProblem {
  enum class Where {
    PrimaryRole,        // the token's `role` attribute
    Entry,              // roles[entry] as a whole
    EntryRole,          // roles[entry].role
    EntryEntityId,      // roles[entry].entity_id
    EntryDeploymentId,  // roles[entry].deployment_id
  };
  Where where = Where::Entry;
  std::size_t entry = 0;  // index into `entries` for the Entry* kinds
  std::string message;
};

// Checks `entries` (in the order written, not normalized) of a token of
// `type` whose primary role is `primary_role`; either may be nullopt when the
// spec lacks or misspells it, which skips the rules that need it:
// - an ORGANIZATION entry's entity_id is `organization_id` (skipped when empty);
// - a built-in role name is used only on its own entity type (DAG_VIEWER and
//   DAG_AUTHOR on DAG and DAG_TAG entries alike), any other name (a custom
//   role) only on DEPLOYMENT, DAG and DAG_TAG entries;
// - DAG and DAG_TAG entries name their deployment in deployment_id, no other
//   entry has one;
// - a WORKSPACE token has no ORGANIZATION entry; a DEPLOYMENT token only
//   DEPLOYMENT, DAG and DAG_TAG entries; DAG and DAG_TAG entries only on a
//   DEPLOYMENT token;
// - no entity appears twice (a DAG or tag is one entity per deployment);
// - exactly one entry has entity_type == type, and its role is `primary_role`
//   (checked only when `entries_complete`, i.e. no entry was malformed).
// Returns every problem found, empty when the roles are valid.
std::vector<RoleProblem> check_roles(std::optional<EntityType> type,
                                     std::optional<std::string_view> primary_role,
                                     const std::vector<Role>& entries,
                                     std::string_view organization_id,
                                     bool entries_complete = true);

}  // namespace tokend::spec
