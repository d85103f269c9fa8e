// The role rules of product.md §1, checked without TOML.
#include <catch2/catch.hpp>

#include "spec/roles.h"

using namespace tokend;
using namespace tokend::spec;

namespace {

const std::string kOrg = "clx42kkcm01fo01o06agtmshg";
const Role kOrgOwner{"ORGANIZATION_OWNER", kOrg, EntityType::Organization};
const Role kWorkspaceOwner{"WORKSPACE_OWNER", "ws1", EntityType::Workspace};
const Role kDeploymentAdmin{"DEPLOYMENT_ADMIN", "dep1", EntityType::Deployment};
const Role kDagViewer{"DAG_VIEWER", "etl", EntityType::Dag, "dep1"};
const Role kTagAuthor{"DAG_AUTHOR", "finance", EntityType::DagTag, "dep1"};

struct Case {
  const char* name;
  EntityType type;
  std::string role;
  std::vector<Role> entries;
  std::vector<std::pair<RoleProblem::Where, std::size_t>> expected;  // where each problem points
  std::string message_part;  // part of the first problem's message
};

}  // namespace

TEST_CASE("role rules", "[spec]") {
  using W = RoleProblem::Where;
  const std::vector<Case> cases = {
      {"organization owner", EntityType::Organization, "ORGANIZATION_OWNER", {kOrgOwner}, {}, ""},
      {"organization with every kind",
       EntityType::Organization,
       "ORGANIZATION_OWNER",
       {kWorkspaceOwner, kDeploymentAdmin, kOrgOwner},
       {},
       ""},
      {"workspace with deployment",
       EntityType::Workspace,
       "WORKSPACE_OWNER",
       {kDeploymentAdmin, kWorkspaceOwner},
       {},
       ""},
      {"custom deployment role",
       EntityType::Deployment,
       "DAG_RUNNER",
       {{"DAG_RUNNER", "dep1", EntityType::Deployment}},
       {},
       ""},
      {"other organization",
       EntityType::Organization,
       "ORGANIZATION_OWNER",
       {{"ORGANIZATION_OWNER", "other", EntityType::Organization}},
       {{W::EntryEntityId, 0}},
       "configured organization_id"},
      {"no entry of the type",
       EntityType::Organization,
       "ORGANIZATION_OWNER",
       {kWorkspaceOwner},
       {{W::PrimaryRole, 0}},
       "is not in roles"},
      {"primary role differs",
       EntityType::Workspace,
       "WORKSPACE_OWNER",
       {{"WORKSPACE_MEMBER", "ws1", EntityType::Workspace}},
       {{W::PrimaryRole, 0}},
       "does not match"},
      {"two of the type",
       EntityType::Workspace,
       "WORKSPACE_OWNER",
       {kWorkspaceOwner, {"WORKSPACE_OWNER", "ws2", EntityType::Workspace}},
       {{W::Entry, 1}},
       "more than one WORKSPACE"},
      {"workspace token with organization role",
       EntityType::Workspace,
       "WORKSPACE_OWNER",
       {kWorkspaceOwner, kOrgOwner},
       {{W::Entry, 1}},
       "cannot have an ORGANIZATION role"},
      {"deployment token with workspace role",
       EntityType::Deployment,
       "DEPLOYMENT_ADMIN",
       {kDeploymentAdmin, kWorkspaceOwner},
       {{W::Entry, 1}},
       "only have DEPLOYMENT, DAG and DAG_TAG roles"},
      {"built-in role on another entity type",
       EntityType::Deployment,
       "WORKSPACE_OWNER",
       {{"WORKSPACE_OWNER", "dep1", EntityType::Deployment}},
       {{W::EntryRole, 0}},
       "is a WORKSPACE role"},
      {"custom role on a workspace",
       EntityType::Workspace,
       "CUSTOM",
       {{"CUSTOM", "ws1", EntityType::Workspace}},
       {{W::EntryRole, 0}},
       "not a built-in WORKSPACE role"},
      {"identical entries",
       EntityType::Workspace,
       "WORKSPACE_OWNER",
       {kWorkspaceOwner, kWorkspaceOwner},
       {{W::Entry, 1}},
       "listed twice"},
      {"deployment with DAG and DAG_TAG roles",
       EntityType::Deployment,
       "DEPLOYMENT_ADMIN",
       {kTagAuthor, kDeploymentAdmin, kDagViewer},
       {},
       ""},
      {"custom DAG and DAG_TAG roles",
       EntityType::Deployment,
       "DEPLOYMENT_ADMIN",
       {kDeploymentAdmin,
        {"DAG_RUNNER", "etl", EntityType::Dag, "dep1"},
        {"TAG_READER", "finance", EntityType::DagTag, "dep1"}},
       {},
       ""},
      {"one DAG in two deployments",
       EntityType::Deployment,
       "DEPLOYMENT_ADMIN",
       {kDeploymentAdmin, kDagViewer, {"DAG_AUTHOR", "etl", EntityType::Dag, "dep2"}},
       {},
       ""},
      {"DAG role without deployment",
       EntityType::Deployment,
       "DEPLOYMENT_ADMIN",
       {kDeploymentAdmin, {"DAG_VIEWER", "etl", EntityType::Dag}},
       {{W::Entry, 1}},
       "a DAG role needs deployment_id"},
      {"DAG_TAG role without deployment",
       EntityType::Deployment,
       "DEPLOYMENT_ADMIN",
       {kDeploymentAdmin, {"DAG_VIEWER", "finance", EntityType::DagTag}},
       {{W::Entry, 1}},
       "a DAG_TAG role needs deployment_id"},
      {"deployment_id on a deployment role",
       EntityType::Deployment,
       "DEPLOYMENT_ADMIN",
       {{"DEPLOYMENT_ADMIN", "dep1", EntityType::Deployment, "dep1"}},
       {{W::EntryDeploymentId, 0}},
       "deployment_id is only for DAG and DAG_TAG roles"},
      {"deployment_id on a workspace role",
       EntityType::Workspace,
       "WORKSPACE_OWNER",
       {{"WORKSPACE_OWNER", "ws1", EntityType::Workspace, "dep1"}},
       {{W::EntryDeploymentId, 0}},
       "not on a WORKSPACE role"},
      {"DAG role on a workspace token",
       EntityType::Workspace,
       "WORKSPACE_OWNER",
       {kWorkspaceOwner, kDagViewer},
       {{W::Entry, 1}},
       "a WORKSPACE token cannot have a DAG role"},
      {"DAG_TAG role on an organization token",
       EntityType::Organization,
       "ORGANIZATION_OWNER",
       {kOrgOwner, kTagAuthor},
       {{W::Entry, 1}},
       "only for DEPLOYMENT tokens"},
      {"DAG role name on a deployment",
       EntityType::Deployment,
       "DAG_VIEWER",
       {{"DAG_VIEWER", "dep1", EntityType::Deployment}},
       {{W::EntryRole, 0}},
       "is a DAG role and cannot be granted on entity_type DEPLOYMENT"},
      {"deployment role name on a DAG",
       EntityType::Deployment,
       "DEPLOYMENT_ADMIN",
       {kDeploymentAdmin, {"DEPLOYMENT_ADMIN", "etl", EntityType::Dag, "dep1"}},
       {{W::EntryRole, 1}},
       "is a DEPLOYMENT role"},
      {"one DAG twice",
       EntityType::Deployment,
       "DEPLOYMENT_ADMIN",
       {kDeploymentAdmin, kDagViewer, {"DAG_AUTHOR", "etl", EntityType::Dag, "dep1"}},
       {{W::Entry, 2}},
       "DAG \"etl\" already has role \"DAG_VIEWER\""},
      {"two roles on one entity",
       EntityType::Workspace,
       "WORKSPACE_OWNER",
       {kWorkspaceOwner, {"WORKSPACE_MEMBER", "ws1", EntityType::Workspace}},
       {{W::Entry, 1}},
       "already has role"},
  };
  for (const Case& c : cases) {
    DYNAMIC_SECTION(c.name) {
      const std::vector<RoleProblem> problems = check_roles(c.type, c.role, c.entries, kOrg);
      std::vector<std::pair<RoleProblem::Where, std::size_t>> where;
      for (const RoleProblem& p : problems)
        where.emplace_back(p.where, p.entry == 0 && p.where == W::PrimaryRole ? 0 : p.entry);
      CHECK(where == c.expected);
      if (!problems.empty()) CHECK(problems[0].message.find(c.message_part) != std::string::npos);
    }
  }
}

TEST_CASE("role rules that need the type or primary role are skipped without them", "[spec]") {
  CHECK(check_roles(std::nullopt, "WORKSPACE_OWNER", {kOrgOwner}, kOrg).empty());
  CHECK(check_roles(EntityType::Workspace, std::nullopt, {kDeploymentAdmin}, kOrg).empty());
  CHECK(check_roles(EntityType::Workspace, "WORKSPACE_OWNER", {kDeploymentAdmin}, kOrg, false)
            .empty());
  // Entity-level rules still apply.
  CHECK(
      check_roles(std::nullopt, std::nullopt, {{"X", "ws1", EntityType::Workspace}}, kOrg).size() ==
      1);
  // Without a configured organization the organization id is not checked.
  CHECK(check_roles(EntityType::Organization, "ORGANIZATION_OWNER",
                    {{"ORGANIZATION_OWNER", "any", EntityType::Organization}}, "")
            .empty());
}

TEST_CASE("built-in roles belong to one entity type", "[spec]") {
  CHECK(builtin_role_entity_type("ORGANIZATION_OBSERVE_MEMBER") == EntityType::Organization);
  CHECK(builtin_role_entity_type("WORKSPACE_ACCESSOR") == EntityType::Workspace);
  CHECK(builtin_role_entity_type("DEPLOYMENT_ADMIN") == EntityType::Deployment);
  CHECK(builtin_role_entity_type("workspace_owner") == std::nullopt);
  CHECK(builtin_roles(EntityType::Organization).size() == 5);
  CHECK(builtin_roles(EntityType::Workspace).size() == 5);
  CHECK(builtin_roles(EntityType::Deployment) == std::vector<std::string_view>{"DEPLOYMENT_ADMIN"});
  CHECK(builtin_role_entity_type("DAG_AUTHOR") == EntityType::Dag);
  CHECK(builtin_roles(EntityType::Dag) ==
        std::vector<std::string_view>{"DAG_VIEWER", "DAG_AUTHOR"});
  CHECK(builtin_roles(EntityType::DagTag) == builtin_roles(EntityType::Dag));
}
