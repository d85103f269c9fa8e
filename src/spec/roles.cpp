#include "spec/roles.h"

#include <array>
#include <utility>

#include "spec/text.h"
#include "util/suggest.h"

namespace tokend::spec {

namespace {

struct BuiltinRole {
  std::string_view name;
  EntityType type;
};

constexpr std::array<BuiltinRole, 13> kBuiltinRoles{{
    {"ORGANIZATION_OWNER", EntityType::Organization},
    {"ORGANIZATION_BILLING_ADMIN", EntityType::Organization},
    {"ORGANIZATION_MEMBER", EntityType::Organization},
    {"ORGANIZATION_OBSERVE_ADMIN", EntityType::Organization},
    {"ORGANIZATION_OBSERVE_MEMBER", EntityType::Organization},
    {"WORKSPACE_OWNER", EntityType::Workspace},
    {"WORKSPACE_OPERATOR", EntityType::Workspace},
    {"WORKSPACE_AUTHOR", EntityType::Workspace},
    {"WORKSPACE_MEMBER", EntityType::Workspace},
    {"WORKSPACE_ACCESSOR", EntityType::Workspace},
    {"DEPLOYMENT_ADMIN", EntityType::Deployment},
    {"DAG_VIEWER", EntityType::Dag},
    {"DAG_AUTHOR", EntityType::Dag},
}};

// "an ORGANIZATION" / "a WORKSPACE" / "a DEPLOYMENT" / "a DAG" / "a DAG_TAG".
std::string with_article(EntityType type) {
  return std::string(type == EntityType::Organization ? "an " : "a ") +
         std::string(to_string(type));
}

// The built-in roles of a DAG_TAG entry are the DAG roles.
EntityType role_family(EntityType type) {
  return type == EntityType::DagTag ? EntityType::Dag : type;
}

}  // namespace

std::optional<EntityType> builtin_role_entity_type(std::string_view role) {
  for (const BuiltinRole& builtin : kBuiltinRoles)
    if (builtin.name == role) return builtin.type;
  return std::nullopt;
}

std::vector<std::string_view> builtin_roles(EntityType type) {
  std::vector<std::string_view> names;
  for (const BuiltinRole& builtin : kBuiltinRoles)
    if (builtin.type == role_family(type)) names.push_back(builtin.name);
  return names;
}

std::vector<RoleProblem> check_roles(std::optional<EntityType> type,
                                     std::optional<std::string_view> primary_role,
                                     const std::vector<Role>& entries,
                                     std::string_view organization_id, bool entries_complete) {
  using Where = RoleProblem::Where;
  std::vector<RoleProblem> problems;
  const auto problem = [&](Where where, std::size_t entry, std::string message) {
    problems.push_back(RoleProblem{where, entry, std::move(message)});
  };

  std::vector<std::size_t> own_type_entries;  // first entry of each entity of the token's type
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const Role& entry = entries[i];
    const std::string entity_type(to_string(entry.entity_type));

    bool duplicate = false;
    for (std::size_t j = 0; j < i && !duplicate; ++j) {
      const Role& earlier = entries[j];
      if (earlier.entity_type != entry.entity_type || earlier.entity_id != entry.entity_id ||
          earlier.deployment_id != entry.deployment_id)
        continue;
      duplicate = true;
      if (earlier.role == entry.role) {
        problem(Where::Entry, i,
                "duplicate role entry: role " + in_quotes(entry.role) + " on " + entity_type + " " +
                    in_quotes(entry.entity_id) + " is listed twice");
      } else {
        problem(Where::Entry, i,
                "duplicate role entry: " + entity_type + " " + in_quotes(entry.entity_id) +
                    " already has role " + in_quotes(earlier.role) + " (one role per entity)");
      }
    }
    if (duplicate) continue;

    if (entry.entity_type == EntityType::Organization && !organization_id.empty() &&
        entry.entity_id != organization_id) {
      problem(Where::EntryEntityId, i,
              "an ORGANIZATION role's entity_id must be the configured organization_id " +
                  in_quotes(organization_id) + ", got " + in_quotes(entry.entity_id));
    }

    if (is_dag_entity(entry.entity_type) && entry.deployment_id.empty()) {
      problem(Where::Entry, i,
              with_article(entry.entity_type) + " role needs deployment_id, the id of the " +
                  "deployment holding the " +
                  (entry.entity_type == EntityType::Dag ? "DAG" : "tagged DAGs"));
    } else if (!is_dag_entity(entry.entity_type) && !entry.deployment_id.empty()) {
      problem(Where::EntryDeploymentId, i,
              "deployment_id is only for DAG and DAG_TAG roles, not on " +
                  with_article(entry.entity_type) + " role" +
                  (entry.entity_type == EntityType::Deployment
                       ? std::string(" (a DEPLOYMENT role names its deployment in entity_id)")
                       : std::string()));
    }

    if (std::optional<EntityType> owner = builtin_role_entity_type(entry.role)) {
      if (*owner != role_family(entry.entity_type)) {
        problem(Where::EntryRole, i,
                "role " + in_quotes(entry.role) + " is " + with_article(*owner) +
                    " role and cannot be granted on entity_type " + entity_type);
      }
    } else if (entry.entity_type != EntityType::Deployment && !is_dag_entity(entry.entity_type)) {
      problem(Where::EntryRole, i,
              "role " + in_quotes(entry.role) + " is not a built-in " + entity_type +
                  " role (custom roles are allowed only on DEPLOYMENT, DAG and DAG_TAG entries)" +
                  did_you_mean(entry.role, builtin_roles(entry.entity_type)));
    }

    if (type && is_dag_entity(entry.entity_type) && type != EntityType::Deployment) {
      problem(Where::Entry, i,
              with_article(*type) + " token cannot have " + with_article(entry.entity_type) +
                  " role: DAG and DAG_TAG roles are only for DEPLOYMENT tokens");
    } else if (type == EntityType::Workspace && entry.entity_type == EntityType::Organization) {
      problem(Where::Entry, i, "a WORKSPACE token cannot have an ORGANIZATION role");
    } else if (type == EntityType::Deployment && entry.entity_type != EntityType::Deployment &&
               !is_dag_entity(entry.entity_type)) {
      problem(Where::Entry, i,
              "a DEPLOYMENT token can only have DEPLOYMENT, DAG and DAG_TAG roles, got " +
                  with_article(entry.entity_type) + " role");
    }

    if (entry.entity_type == type) own_type_entries.push_back(i);
  }

  if (!type || !primary_role || !entries_complete) return problems;
  const std::string type_name(to_string(*type));
  if (own_type_entries.empty()) {
    problem(Where::PrimaryRole, 0,
            "role " + in_quotes(*primary_role) + " is not in roles: " + with_article(*type) +
                " token needs exactly one " + type_name + " entry in roles, with role " +
                in_quotes(*primary_role));
  } else if (own_type_entries.size() > 1) {
    for (std::size_t k = 1; k < own_type_entries.size(); ++k) {
      problem(Where::Entry, own_type_entries[k],
              "roles has more than one " + type_name + " entry; " + with_article(*type) +
                  " token needs exactly one, for the " + type_name + " it belongs to");
    }
  } else if (entries[own_type_entries.front()].role != *primary_role) {
    problem(Where::PrimaryRole, 0,
            "role " + in_quotes(*primary_role) + " does not match the " + type_name +
                " entry of roles, which has role " +
                in_quotes(entries[own_type_entries.front()].role));
  }
  return problems;
}

}  // namespace tokend::spec
