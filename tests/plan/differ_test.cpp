#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <sstream>
#include <stdexcept>

#include "plan/fixtures.h"
#include "plan/plan.h"

using namespace tokend;
using namespace tokend::plan;
using namespace tokend::plan::testing;

namespace {

// One line per drift, change and error, in plan order, e.g.
// "drift a changed", "a update name_description rotate=expired", "error: …".
std::string describe(const Plan& plan) {
  std::ostringstream out;
  for (const Drift& drift : plan.drift)
    out << "drift " << drift.key << (drift.kind == Drift::Kind::Changed ? " changed" : " deleted")
        << "\n";
  for (const Change& change : plan.changes) {
    out << change.key << " " << to_string(change.action);
    if (change.update_name_description) out << " name_description";
    if (change.update_roles) out << " roles";
    if (change.rotate) out << " rotate=" << to_string(change.rotate_reason);
    for (const std::string& path : change.replace_paths) out << " path=" << path;
    if (change.create_before_destroy) out << " create_before_destroy";
    if (change.recreate_after_remote_delete) out << " recreate";
    if (!change.action_reason.empty()) out << " (" << change.action_reason << ")";
    out << "\n";
  }
  for (const std::string& error : plan.errors) out << "error: " << error << "\n";
  return out.str();
}

spec::TokenSpec& spec_of(Input& input, const std::string& key) {
  for (spec::TokenSpec& spec : input.desired)
    if (spec.key == key) return spec;
  FAIL("no spec " << key);
  throw std::logic_error("unreachable");
}

state::ResourceRecord& row_of(Input& input, const std::string& key) {
  for (state::ResourceRecord& row : input.prior)
    if (row.key == key) return row;
  FAIL("no row " << key);
  throw std::logic_error("unreachable");
}

astro::ApiToken& remote_of(Input& input, const std::string& key) {
  auto it = input.observed.tokens.find(id_for(key));
  if (it == input.observed.tokens.end()) FAIL("no remote token " << key);
  return it->second;
}

void remove_remote(Input& input, const std::string& key) {
  input.observed.tokens.erase(id_for(key));
}

void remove_spec(Input& input, const std::string& key) {
  std::erase_if(input.desired, [&](const spec::TokenSpec& s) { return s.key == key; });
}

// An unmanaged token in the organization, as an import candidate.
void add_unmanaged(Input& input, const std::string& key) {
  input.observed.tokens[id_for(key)] = token_for(make_row(key));
}

struct Case {
  const char* name;
  std::function<void(Input&)> setup;
  const char* expected;
};

const Role kSecondDeploymentAdmin{"DEPLOYMENT_ADMIN", "clz0000000000000000000002",
                                  EntityType::Deployment};

const Case kCases[] = {
    {"equal: no-op", [](Input& in) { add_managed(in, "a"); }, ""},
    {"in specs, not in state: create", [](Input& in) { in.desired.push_back(make_spec("a")); },
     "a create\n"},
    {"name differs: update in place",
     [](Input& in) {
       add_managed(in, "a");
       spec_of(in, "a").attrs.name = "renamed";
     },
     "a update name_description\n"},
    {"description differs: update in place",
     [](Input& in) {
       add_managed(in, "a");
       spec_of(in, "a").attrs.description = "";
     },
     "a update name_description\n"},
    {"roles differ: update roles",
     [](Input& in) {
       add_managed(in, "a");
       spec_of(in, "a").attrs.roles.push_back(kSecondDeploymentAdmin);
     },
     "a update roles\n"},
    {"roles in another order: no-op",
     [](Input& in) {
       add_managed(in, "a");
       auto& roles = spec_of(in, "a").attrs.roles;
       std::reverse(roles.begin(), roles.end());
     },
     ""},
    {"name and roles differ: one update with both calls",
     [](Input& in) {
       add_managed(in, "a");
       spec_of(in, "a").attrs.name = "renamed";
       spec_of(in, "a").attrs.roles.push_back(kSecondDeploymentAdmin);
     },
     "a update name_description roles\n"},
    {"type differs: replace",
     [](Input& in) {
       add_managed(in, "a");
       auto& attrs = spec_of(in, "a").attrs;
       attrs.type = EntityType::Deployment;
       attrs.role = "DEPLOYMENT_ADMIN";
       attrs.roles = {{"DEPLOYMENT_ADMIN", kDeployment, EntityType::Deployment}};
     },
     "a replace path=type (replace_because_cannot_update)\n"},
    {"expiry differs: replace",
     [](Input& in) {
       add_managed(in, "a");
       spec_of(in, "a").attrs.expiry_period_in_days = 30;
     },
     "a replace path=expiry_period_in_days (replace_because_cannot_update)\n"},
    {"expiry removed: replace",
     [](Input& in) {
       add_managed(in, "a");
       spec_of(in, "a").attrs.expiry_period_in_days.reset();
     },
     "a replace path=expiry_period_in_days (replace_because_cannot_update)\n"},
    {"type and expiry differ, with create_before_destroy: both paths in order",
     [](Input& in) {
       add_managed(in, "a");
       auto& spec = spec_of(in, "a");
       spec.attrs.type = EntityType::Organization;
       spec.attrs.role = "ORGANIZATION_MEMBER";
       spec.attrs.roles = {{"ORGANIZATION_MEMBER", kOrganization, EntityType::Organization}};
       spec.attrs.expiry_period_in_days = 30;
       spec.lifecycle.create_before_destroy = true;
     },
     "a replace path=type path=expiry_period_in_days create_before_destroy "
     "(replace_because_cannot_update)\n"},
    {"replace and name change: replace only",
     [](Input& in) {
       add_managed(in, "a");
       spec_of(in, "a").attrs.expiry_period_in_days = 30;
       spec_of(in, "a").attrs.name = "renamed";
     },
     "a replace path=expiry_period_in_days (replace_because_cannot_update)\n"},
    {"replace of a protected token: error, no change",
     [](Input& in) {
       add_managed(in, "a");
       add_managed(in, "b");
       spec_of(in, "a").attrs.expiry_period_in_days = 30;
       spec_of(in, "a").lifecycle.prevent_destroy = true;
       spec_of(in, "b").attrs.name = "renamed";
     },
     "b update name_description\n"
     "error: astro_api_token.a has lifecycle.prevent_destroy set, but the plan calls for this "
     "resource to be destroyed\n"},
    {"protected token with an in-place update: allowed",
     [](Input& in) {
       add_managed(in, "a");
       spec_of(in, "a").attrs.name = "renamed";
       spec_of(in, "a").lifecycle.prevent_destroy = true;
     },
     "a update name_description\n"},
    {"in state, not in specs: delete",
     [](Input& in) {
       add_managed(in, "a");
       remove_spec(in, "a");
     },
     "a delete (delete_because_no_resource_config)\n"},
    {"in state, not in specs, gone remotely: forget",
     [](Input& in) {
       add_managed(in, "a");
       remove_spec(in, "a");
       remove_remote(in, "a");
     },
     "drift a deleted\na forget\n"},
    {"in state, gone remotely: create again",
     [](Input& in) {
       add_managed(in, "a");
       remove_remote(in, "a");
     },
     "drift a deleted\na create recreate\n"},
    {"renamed outside: drift and update back",
     [](Input& in) {
       add_managed(in, "a");
       remote_of(in, "a").name = "renamed outside";
     },
     "drift a changed\na update name_description\n"},
    {"roles changed outside: drift and roles update",
     [](Input& in) {
       add_managed(in, "a");
       remote_of(in, "a").roles.push_back(kSecondDeploymentAdmin);
     },
     "drift a changed\na update roles\n"},
    {"drift plus a spec change to the same value: drift only",
     [](Input& in) {
       add_managed(in, "a");
       remote_of(in, "a").description = "new";
       spec_of(in, "a").attrs.description = "new";
     },
     "drift a changed\n"},
    {"drift plus a different spec change: drift and update",
     [](Input& in) {
       add_managed(in, "a");
       remote_of(in, "a").description = "changed outside";
       spec_of(in, "a").attrs.roles.push_back(kSecondDeploymentAdmin);
     },
     "drift a changed\na update name_description roles\n"},
    {"expiry changed outside: drift and replace",
     [](Input& in) {
       add_managed(in, "a");
       remote_of(in, "a").expiry_period_in_days = 7;
     },
     "drift a changed\na replace path=expiry_period_in_days (replace_because_cannot_update)\n"},
    {"timestamps moved outside (rotated elsewhere): no drift",
     [](Input& in) {
       add_managed(in, "a");
       remote_of(in, "a").start_at = days_from_now(-1);
       remote_of(in, "a").end_at = days_from_now(89);
     },
     ""},
    {"ignore_changes all: attribute differences planned as no-op",
     [](Input& in) {
       add_managed(in, "a");
       auto& spec = spec_of(in, "a");
       spec.attrs.name = "renamed";
       spec.attrs.expiry_period_in_days = 30;
       spec.attrs.roles.push_back(kSecondDeploymentAdmin);
       spec.lifecycle.ignore_changes = {"all"};
       remote_of(in, "a").description = "changed outside";
     },
     "drift a changed\n"},
    {"ignore_changes all: rotation still happens",
     [](Input& in) {
       add_managed(in, "a");
       spec_of(in, "a").attrs.name = "renamed";
       spec_of(in, "a").lifecycle.ignore_changes = {"all"};
       row_of(in, "a").end_at = days_from_now(-1);
       remote_of(in, "a").end_at = days_from_now(-1);
     },
     "a rotate rotate=expired\n"},
    {"ignore_changes all: creation still happens",
     [](Input& in) {
       in.desired.push_back(make_spec("a"));
       spec_of(in, "a").lifecycle.ignore_changes = {"all"};
     },
     "a create\n"},
    {"ignore_changes name: description still updated",
     [](Input& in) {
       add_managed(in, "a");
       spec_of(in, "a").attrs.name = "renamed";
       spec_of(in, "a").attrs.description = "new";
       spec_of(in, "a").lifecycle.ignore_changes = {"name"};
     },
     "a update name_description\n"},
    {"ignore_changes name: only the name differs",
     [](Input& in) {
       add_managed(in, "a");
       spec_of(in, "a").attrs.name = "renamed";
       spec_of(in, "a").lifecycle.ignore_changes = {"name"};
     },
     ""},
    {"ignore_changes description",
     [](Input& in) {
       add_managed(in, "a");
       remote_of(in, "a").description = "changed outside";
       spec_of(in, "a").lifecycle.ignore_changes = {"description"};
     },
     "drift a changed\n"},
    {"ignore_changes roles",
     [](Input& in) {
       add_managed(in, "a");
       spec_of(in, "a").attrs.roles.push_back(kSecondDeploymentAdmin);
       spec_of(in, "a").lifecycle.ignore_changes = {"roles"};
     },
     ""},
    {"ignore_changes role: primary role differences ignored",
     [](Input& in) {
       add_managed(in, "a");
       auto& attrs = spec_of(in, "a").attrs;
       attrs.role = "WORKSPACE_MEMBER";
       attrs.roles = normalize_roles({{"WORKSPACE_MEMBER", kWorkspace, EntityType::Workspace},
                                      {"DEPLOYMENT_ADMIN", kDeployment, EntityType::Deployment}});
       spec_of(in, "a").lifecycle.ignore_changes = {"role"};
     },
     ""},
    {"ignore_changes role: other roles still updated",
     [](Input& in) {
       add_managed(in, "a");
       auto& attrs = spec_of(in, "a").attrs;
       attrs.role = "WORKSPACE_MEMBER";
       attrs.roles = normalize_roles({{"WORKSPACE_MEMBER", kWorkspace, EntityType::Workspace}});
       spec_of(in, "a").lifecycle.ignore_changes = {"role"};
     },
     "a update roles\n"},
    {"ignore_changes expiry_period_in_days: no replace",
     [](Input& in) {
       add_managed(in, "a");
       spec_of(in, "a").attrs.expiry_period_in_days = 30;
       spec_of(in, "a").lifecycle.ignore_changes = {"expiry_period_in_days"};
     },
     ""},
    {"ignore_changes type: no replace",
     [](Input& in) {
       add_managed(in, "a");
       spec_of(in, "a").attrs.type = EntityType::Deployment;
       spec_of(in, "a").lifecycle.ignore_changes = {"type", "roles"};
     },
     ""},
    {"import: found and equal",
     [](Input& in) {
       add_unmanaged(in, "a");
       in.desired.push_back(make_spec("a"));
       spec_of(in, "a").import_id = id_for("a");
     },
     "a import\n"},
    {"import: found, name and roles differ",
     [](Input& in) {
       add_unmanaged(in, "a");
       in.desired.push_back(make_spec("a"));
       spec_of(in, "a").import_id = id_for("a");
       spec_of(in, "a").attrs.name = "renamed";
       spec_of(in, "a").attrs.roles.push_back(kSecondDeploymentAdmin);
     },
     "a import name_description roles\n"},
    {"import: not found",
     [](Input& in) {
       in.desired.push_back(make_spec("a"));
       spec_of(in, "a").import_id = "clm8q7f6q000008lcgyougpsk";
     },
     "error: import_id \"clm8q7f6q000008lcgyougpsk\" for astro_api_token.a does not exist in the "
     "organization\n"},
    {"import: type differs",
     [](Input& in) {
       add_unmanaged(in, "a");
       in.desired.push_back(make_spec("a"));
       auto& spec = spec_of(in, "a");
       spec.import_id = id_for("a");
       spec.attrs.type = EntityType::Deployment;
       spec.attrs.role = "DEPLOYMENT_ADMIN";
       spec.attrs.roles = {{"DEPLOYMENT_ADMIN", kDeployment, EntityType::Deployment}};
     },
     "error: import_id \"tok-a\" for astro_api_token.a names a WORKSPACE token, but the spec asks "
     "for type DEPLOYMENT; an imported token cannot be replaced\n"},
    {"import: expiry differs",
     [](Input& in) {
       add_unmanaged(in, "a");
       in.desired.push_back(make_spec("a"));
       spec_of(in, "a").import_id = id_for("a");
       spec_of(in, "a").attrs.expiry_period_in_days.reset();
     },
     "error: import_id \"tok-a\" for astro_api_token.a names a token with expiry_period_in_days "
     "90, but the spec asks for unset; an imported token cannot be replaced\n"},
    {"import: expiry differs but is ignored",
     [](Input& in) {
       add_unmanaged(in, "a");
       in.desired.push_back(make_spec("a"));
       spec_of(in, "a").import_id = id_for("a");
       spec_of(in, "a").attrs.expiry_period_in_days = 30;
       spec_of(in, "a").lifecycle.ignore_changes = {"expiry_period_in_days"};
     },
     "a import\n"},
    {"import: id already managed by another key",
     [](Input& in) {
       add_managed(in, "a");
       in.desired.push_back(make_spec("b"));
       spec_of(in, "b").import_id = id_for("a");
     },
     "error: import_id \"tok-a\" for astro_api_token.b is already managed by astro_api_token.a\n"},
    {"import: two specs import the same id",
     [](Input& in) {
       add_unmanaged(in, "x");
       in.desired.push_back(make_spec("a"));
       in.desired.push_back(make_spec("b"));
       spec_of(in, "a").import_id = id_for("x");
       spec_of(in, "b").import_id = id_for("x");
       spec_of(in, "a").attrs = workspace_attrs("x");
     },
     "a import\n"
     "error: import_id \"tok-x\" for astro_api_token.b is also imported by astro_api_token.a\n"},
    {"import_id on a managed key: ignored",
     [](Input& in) {
       add_managed(in, "a");
       spec_of(in, "a").import_id = "clm8q7f6q000008lcgyougpsk";
     },
     ""},
    {"import without refresh: trusted",
     [](Input& in) {
       in.observed.refreshed = false;
       in.desired.push_back(make_spec("a"));
       spec_of(in, "a").import_id = "clm8q7f6q000008lcgyougpsk";
     },
     "a import\n"},
    {"rotation: value lost",
     [](Input& in) {
       add_managed(in, "a");
       row_of(in, "a").rotate_pending = true;
     },
     "a rotate rotate=value_lost\n"},
    {"rotation: expired",
     [](Input& in) {
       add_managed(in, "a");
       remote_of(in, "a").end_at = now();
     },
     "a rotate rotate=expired\n"},
    {"rotation: sink missing",
     [](Input& in) {
       add_managed(in, "a");
       in.sinks["a"] = SinkStatus::Missing;
     },
     "a rotate rotate=sink_missing\n"},
    {"held back: an unreadable sink is no reason to rotate",
     [](Input& in) {
       add_managed(in, "a");
       in.sinks["a"] = SinkStatus::Unreadable;
     },
     ""},
    {"held back: an unreadable sink holds back whatever else is due",
     [](Input& in) {
       add_managed(in, "a");
       add_managed(in, "b");
       in.sinks["a"] = SinkStatus::Unreadable;
       spec_of(in, "a").attrs.name = "renamed";
       remote_of(in, "a").end_at = now();
       spec_of(in, "a").attrs.expiry_period_in_days = 30;
       in.sinks["b"] = SinkStatus::Missing;
     },
     "b rotate rotate=sink_missing\n"},
    {"held back: a token deleted outside is not created again while its sink is unreadable",
     [](Input& in) {
       add_managed(in, "a");
       in.sinks["a"] = SinkStatus::Unreadable;
       remove_remote(in, "a");
     },
     "drift a deleted\n"},
    {"held back: no longer in specs, the token is deleted as usual",
     [](Input& in) {
       add_managed(in, "a");
       in.sinks["a"] = SinkStatus::Unreadable;
       remove_spec(in, "a");
     },
     "a delete (delete_because_no_resource_config)\n"},
    {"rotation: sink mismatch",
     [](Input& in) {
       add_managed(in, "a");
       in.sinks["a"] = SinkStatus::Mismatch;
     },
     "a rotate rotate=sink_mismatch\n"},
    {"rotation: sink path changed",
     [](Input& in) {
       add_managed(in, "a");
       in.sinks["a"] = SinkStatus::Ok;
       spec_of(in, "a").sink = "/run/tokens/a.token";
     },
     "a rotate rotate=sink_mismatch\n"},
    {"rotation: sink ok",
     [](Input& in) {
       add_managed(in, "a");
       in.sinks["a"] = SinkStatus::Ok;
     },
     ""},
    {"rotation: imported token without a fingerprint is not rotated for its sink",
     [](Input& in) {
       add_managed(in, "a");
       row_of(in, "a").sink_sha256.clear();
       in.sinks["a"] = SinkStatus::Missing;
       spec_of(in, "a").sink = "/run/tokens/a.token";
     },
     ""},
    {"rotation: before expiry",
     [](Input& in) {
       add_managed(in, "a");
       remote_of(in, "a").end_at = days_from_now(6);
       spec_of(in, "a").rotate_before_expiry_days = 7;
     },
     "a rotate rotate=before_expiry\n"},
    {"rotation: before expiry, not yet",
     [](Input& in) {
       add_managed(in, "a");
       remote_of(in, "a").end_at = days_from_now(7);
       spec_of(in, "a").rotate_before_expiry_days = 7;
     },
     ""},
    {"rotation: cadence",
     [](Input& in) {
       add_managed(in, "a");
       spec_of(in, "a").rotate_every_days = 10;
     },
     "a rotate rotate=cadence\n"},
    {"rotation: cadence, not yet",
     [](Input& in) {
       add_managed(in, "a");
       spec_of(in, "a").rotate_every_days = 11;
     },
     ""},
    {"rotation: a token that never expires is only rotated on cadence",
     [](Input& in) {
       add_managed(in, "a");
       spec_of(in, "a").attrs.expiry_period_in_days.reset();
       row_of(in, "a").attrs.expiry_period_in_days.reset();
       row_of(in, "a").end_at.reset();
       remote_of(in, "a") = token_for(row_of(in, "a"));
       spec_of(in, "a").rotate_before_expiry_days = 7;
     },
     ""},
    {"rotation priority: value lost before expired",
     [](Input& in) {
       add_managed(in, "a");
       row_of(in, "a").rotate_pending = true;
       remote_of(in, "a").end_at = days_from_now(-1);
     },
     "a rotate rotate=value_lost\n"},
    {"rotation priority: expired before sink missing",
     [](Input& in) {
       add_managed(in, "a");
       remote_of(in, "a").end_at = days_from_now(-1);
       in.sinks["a"] = SinkStatus::Missing;
     },
     "a rotate rotate=expired\n"},
    {"rotation priority: sink before expiry window",
     [](Input& in) {
       add_managed(in, "a");
       in.sinks["a"] = SinkStatus::Mismatch;
       remote_of(in, "a").end_at = days_from_now(1);
       spec_of(in, "a").rotate_before_expiry_days = 7;
     },
     "a rotate rotate=sink_mismatch\n"},
    {"rotation priority: expiry window before cadence",
     [](Input& in) {
       add_managed(in, "a");
       remote_of(in, "a").end_at = days_from_now(1);
       spec_of(in, "a").rotate_before_expiry_days = 7;
       spec_of(in, "a").rotate_every_days = 1;
     },
     "a rotate rotate=before_expiry\n"},
    {"rotation with an update: update that rotates",
     [](Input& in) {
       add_managed(in, "a");
       spec_of(in, "a").attrs.name = "renamed";
       in.sinks["a"] = SinkStatus::Missing;
     },
     "a update name_description rotate=sink_missing\n"},
    {"rotation is not planned for a replace",
     [](Input& in) {
       add_managed(in, "a");
       spec_of(in, "a").attrs.expiry_period_in_days = 30;
       remote_of(in, "a").end_at = days_from_now(-1);
     },
     "a replace path=expiry_period_in_days (replace_because_cannot_update)\n"},
    {"rotation is not planned for a delete",
     [](Input& in) {
       add_managed(in, "a");
       remove_spec(in, "a");
       row_of(in, "a").rotate_pending = true;
     },
     "a delete (delete_because_no_resource_config)\n"},
    {"refresh=false: state is trusted, a token gone remotely is not noticed",
     [](Input& in) {
       add_managed(in, "a");
       in.observed.refreshed = false;
       remove_remote(in, "a");
     },
     ""},
    {"refresh=false: spec compared with the state row",
     [](Input& in) {
       add_managed(in, "a");
       add_managed(in, "b");
       in.observed.refreshed = false;
       in.observed.tokens.clear();
       spec_of(in, "a").attrs.name = "renamed";
       remove_spec(in, "b");
     },
     "a update name_description\nb delete (delete_because_no_resource_config)\n"},
    {"refresh=false: rotation from the state row",
     [](Input& in) {
       add_managed(in, "a");
       in.observed.refreshed = false;
       row_of(in, "a").end_at = days_from_now(-1);
     },
     "a rotate rotate=expired\n"},
    {"targets: only the targeted address is planned",
     [](Input& in) {
       add_managed(in, "a");
       add_managed(in, "b");
       add_managed(in, "c");
       spec_of(in, "a").attrs.name = "renamed";
       remote_of(in, "b").name = "renamed outside";
       remove_spec(in, "c");
       in.desired.push_back(make_spec("d"));
       spec_of(in, "d").import_id = "missing";
       in.targets = {"astro_api_token.a"};
     },
     "a update name_description\n"},
    {"targets: several, and one naming nothing",
     [](Input& in) {
       add_managed(in, "a");
       add_managed(in, "b");
       spec_of(in, "a").attrs.name = "renamed";
       remove_spec(in, "b");
       in.targets = {"astro_api_token.b", "astro_api_token.zzz"};
     },
     "b delete (delete_because_no_resource_config)\n"},
    {"--rotate: a fresh token rotates",
     [](Input& in) {
       add_managed(in, "a");
       add_managed(in, "b");
       in.rotations = {"astro_api_token.a"};
     },
     "a rotate rotate=requested\n"},
    {"--rotate: the request comes before any other reason",
     [](Input& in) {
       add_managed(in, "a");
       remote_of(in, "a").end_at = days_from_now(-1);
       in.rotations = {"astro_api_token.a"};
     },
     "a rotate rotate=requested\n"},
    {"--rotate: an update that also rotates",
     [](Input& in) {
       add_managed(in, "a");
       spec_of(in, "a").attrs.name = "renamed";
       in.rotations = {"astro_api_token.a"};
     },
     "a update name_description rotate=requested\n"},
    {"--rotate: a token never delivered (adopted) rotates",
     [](Input& in) {
       add_managed(in, "a");
       row_of(in, "a").sink_sha256.clear();
       in.rotations = {"astro_api_token.a", "astro_api_token.a"};
     },
     "a rotate rotate=requested\n"},
    {"--rotate: an import that also rotates",
     [](Input& in) {
       add_unmanaged(in, "a");
       in.desired.push_back(make_spec("a"));
       spec_of(in, "a").import_id = id_for("a");
       in.rotations = {"astro_api_token.a"};
     },
     "a import rotate=requested\n"},
    {"--rotate: a create or a replace issues a new value anyway",
     [](Input& in) {
       in.desired.push_back(make_spec("a"));
       add_managed(in, "b");
       spec_of(in, "b").attrs.expiry_period_in_days = 30;
       in.rotations = {"astro_api_token.a", "astro_api_token.b"};
     },
     "a create\n"
     "b replace path=expiry_period_in_days (replace_because_cannot_update)\n"},
    {"--rotate: addresses that name no token to rotate",
     [](Input& in) {
       add_managed(in, "a");
       add_managed(in, "gone");
       remove_spec(in, "gone");
       in.rotations = {"astro_api_token.nope", "api_token.a", "astro_api_token.gone",
                       "astro_api_token.a"};
     },
     "a rotate rotate=requested\n"
     "gone delete (delete_because_no_resource_config)\n"
     "error: --rotate astro_api_token.nope names no token in the configuration\n"
     "error: invalid --rotate \"api_token.a\": expected an address such as "
     "astro_api_token.<key>\n"
     "error: --rotate astro_api_token.gone names no token in the configuration\n"},
    {"--rotate: an address outside --target",
     [](Input& in) {
       add_managed(in, "a");
       add_managed(in, "b");
       in.targets = {"astro_api_token.a"};
       in.rotations = {"astro_api_token.b"};
     },
     "error: --rotate astro_api_token.b is not among the --target addresses\n"},
    {"tokens nobody manages are left alone",
     [](Input& in) {
       add_managed(in, "a");
       add_unmanaged(in, "stranger");
     },
     ""},
};

}  // namespace

TEST_CASE("differ: every row of the plan table and their combinations", "[plan]") {
  for (const Case& c : kCases) {
    SECTION(c.name) {
      Input input = make_input();
      c.setup(input);
      std::sort(input.desired.begin(), input.desired.end(),
                [](const auto& l, const auto& r) { return l.key < r.key; });
      Plan plan = compute(input);
      CHECK(describe(plan) == c.expected);
    }
  }
}

TEST_CASE("differ: create and recreate carry the spec - no before", "[plan]") {
  Input input = make_input();
  add_managed(input, "b");
  remove_remote(input, "b");
  input.desired.insert(input.desired.begin(), make_spec("a"));
  Plan plan = compute(input);
  REQUIRE(plan.changes.size() == 2);
  for (const Change& change : plan.changes) {
    CHECK(change.action == Action::Create);
    CHECK_FALSE(change.before);
    REQUIRE(change.after);
    CHECK(same_spec(*change.after, make_spec(change.key)));
  }
  REQUIRE(plan.drift.size() == 1);
  CHECK(plan.drift[0].recorded == make_row("b"));
  CHECK_FALSE(plan.drift[0].observed);
}

TEST_CASE("differ: before carries the refreshed attributes - drift the recorded ones", "[plan]") {
  Input input = make_input();
  add_managed(input, "a");
  astro::ApiToken& remote = remote_of(input, "a");
  remote.name = "renamed outside";
  remote.short_token = "short-new";
  remote.start_at = days_from_now(-1);
  remote.end_at = days_from_now(89);
  remote.updated_at = days_from_now(-1);

  Plan plan = compute(input);
  REQUIRE(plan.changes.size() == 1);
  const Change& change = plan.changes[0];
  REQUIRE(change.before);
  state::ResourceRecord expected = make_row("a");
  expected.attrs.name = "renamed outside";
  expected.short_token = "short-new";
  expected.start_at = days_from_now(-1);
  expected.end_at = days_from_now(89);
  expected.updated_at = days_from_now(-1);
  CHECK(*change.before == expected);
  CHECK(change.after->attrs.name == "a token");

  REQUIRE(plan.drift.size() == 1);
  CHECK(plan.drift[0].recorded == make_row("a"));
  REQUIRE(plan.drift[0].observed);
  CHECK(plan.drift[0].observed->name == "renamed outside");
}

TEST_CASE("differ: ignored attributes take their current value in after", "[plan]") {
  Input input = make_input();
  add_managed(input, "a");
  spec::TokenSpec& spec = spec_of(input, "a");
  spec.attrs.name = "renamed";
  spec.attrs.description = "new description";
  spec.attrs.role = "WORKSPACE_MEMBER";
  spec.attrs.roles = normalize_roles({{"WORKSPACE_MEMBER", kWorkspace, EntityType::Workspace}});
  spec.lifecycle.ignore_changes = {"name", "role"};

  Plan plan = compute(input);
  REQUIRE(plan.changes.size() == 1);
  const Change& change = plan.changes[0];
  CHECK(change.action == Action::Update);
  CHECK(change.update_name_description);
  CHECK(change.update_roles);
  // The name stays; the description is updated; the primary role stays and
  // the deployment role is dropped as the spec says.
  CHECK(change.after->attrs.name == "a token");
  CHECK(change.after->attrs.description == "new description");
  CHECK(change.after->attrs.role == "WORKSPACE_OWNER");
  CHECK(change.after->attrs.roles ==
        RoleSet{{"WORKSPACE_OWNER", kWorkspace, EntityType::Workspace}});
}

TEST_CASE("differ: import carries the token to adopt as before", "[plan]") {
  Input input = make_input();
  add_unmanaged(input, "x");
  spec::TokenSpec spec = make_spec("a");
  spec.import_id = id_for("x");
  spec.attrs.roles.push_back(kSecondDeploymentAdmin);
  input.desired.push_back(spec);

  Plan plan = compute(input);
  REQUIRE(plan.changes.size() == 1);
  const Change& change = plan.changes[0];
  CHECK(change.action == Action::Import);
  CHECK(change.update_name_description);
  CHECK(change.update_roles);
  CHECK_FALSE(change.rotate);
  REQUIRE(change.before);
  CHECK(change.before->key == "a");
  CHECK(change.before->id == "tok-x");
  CHECK(change.before->attrs == workspace_attrs("x"));
  CHECK(change.before->sink_sha256.empty());
  CHECK(change.before->sink_path.empty());
  CHECK(change.after->import_id == id_for("x"));
  CHECK(change.after->attrs.roles == normalize_roles(spec.attrs.roles));
}

TEST_CASE("differ: output is sorted by key whatever the input order", "[plan]") {
  Input input = make_input();
  for (const char* key : {"d", "b", "c", "a"}) add_managed(input, key);
  for (auto& spec : input.desired) spec.attrs.name = "renamed";
  for (const char* key : {"b", "d"}) remote_of(input, key).description = "changed outside";
  Plan plan = compute(input);
  std::vector<std::string> change_keys, drift_keys;
  for (const Change& change : plan.changes) change_keys.push_back(change.key);
  for (const Drift& drift : plan.drift) drift_keys.push_back(drift.key);
  CHECK(change_keys == std::vector<std::string>{"a", "b", "c", "d"});
  CHECK(drift_keys == std::vector<std::string>{"b", "d"});
  CHECK(describe(compute(input)) == describe(plan));
}

TEST_CASE("differ: the plan records what it was computed against", "[plan]") {
  Input input = make_input();
  input.observed.refreshed = false;
  input.targets = {"astro_api_token.a"};
  Plan plan = compute(input);
  CHECK(plan.lineage == input.lineage);
  CHECK(plan.serial == 7);
  CHECK(plan.spec_hash == input.spec_hash);
  CHECK_FALSE(plan.refreshed);
  CHECK(plan.created_at == now());
  CHECK(plan.targets == input.targets);
  CHECK(plan.empty());
  CHECK(plan.counts().empty());
}

TEST_CASE("plan counts follow Terraform", "[plan]") {
  Plan plan;
  auto add = [&](Action action, bool rotate = false) -> Change& {
    Change change;
    change.key = "k" + std::to_string(plan.changes.size());
    change.action = action;
    change.rotate = rotate;
    plan.changes.push_back(change);
    return plan.changes.back();
  };
  add(Action::Create);
  add(Action::Import);
  add(Action::Import, true).update_roles = true;  // imported, updated and rotated
  add(Action::Update);
  add(Action::Update, true);
  add(Action::Replace);
  add(Action::Delete);
  add(Action::Rotate, true);
  add(Action::Forget);
  Counts counts = plan.counts();
  CHECK(counts.import == 2);
  CHECK(counts.add == 2);
  CHECK(counts.change == 3);
  CHECK(counts.destroy == 2);
  CHECK(counts.rotate == 3);
  CHECK_FALSE(counts.empty());

  Plan import_only;
  import_only.changes.push_back(plan.changes[1]);
  Counts imported = import_only.counts();
  CHECK(imported.import == 1);
  CHECK(imported.add + imported.change + imported.destroy + imported.rotate == 0);
  CHECK_FALSE(imported.empty());
}

TEST_CASE("action and rotate reason names round-trip", "[plan]") {
  for (Action action : {Action::Create, Action::Import, Action::Update, Action::Replace,
                        Action::Delete, Action::Rotate, Action::Forget})
    CHECK(parse_action(to_string(action)) == action);
  for (RotateReason reason :
       {RotateReason::None, RotateReason::BeforeExpiry, RotateReason::Cadence,
        RotateReason::Expired, RotateReason::SinkMissing, RotateReason::SinkMismatch,
        RotateReason::ValueLost, RotateReason::Requested})
    CHECK(parse_rotate_reason(to_string(reason)) == reason);
  CHECK(to_string(Action::Replace) == "replace");
  CHECK(to_string(RotateReason::SinkMismatch) == "sink_mismatch");
  CHECK_FALSE(parse_action("destroy"));
  CHECK_FALSE(parse_rotate_reason(""));
}

TEST_CASE("next_rotation is the earliest of expiry, the window before it and the cadence",
          "[plan]") {
  spec::TokenSpec spec = make_spec("a");
  state::ResourceRecord row = make_row("a");
  row.start_at = at("2026-03-01T00:00:00Z");
  row.end_at = at("2026-03-31T00:00:00Z");
  CHECK(next_rotation(spec, row) == at("2026-03-31T00:00:00Z"));  // at expiry
  spec.rotate_before_expiry_days = 7;
  CHECK(next_rotation(spec, row) == at("2026-03-24T00:00:00Z"));
  spec.rotate_every_days = 5;
  CHECK(next_rotation(spec, row) == at("2026-03-06T00:00:00Z"));  // the cadence comes first
  row.end_at.reset();                                             // never expires: only the cadence
  CHECK(next_rotation(spec, row) == at("2026-03-06T00:00:00Z"));
  spec.rotate_every_days = 0;
  CHECK_FALSE(next_rotation(spec, row).has_value());
}

TEST_CASE("drifted_attributes names what changed outside astro-tokend", "[plan]") {
  Input input = make_input();
  add_managed(input, "a");
  astro::ApiToken& token = input.observed.tokens[id_for("a")];
  token.name = "renamed outside";
  token.roles.push_back({"DEPLOYMENT_ADMIN", "other-deployment", EntityType::Deployment});
  Plan plan = compute(input);
  REQUIRE(plan.drift.size() == 1);
  CHECK(drifted_attributes(plan.drift[0]) == std::vector<std::string>{"name", "roles"});

  Input gone = make_input();
  add_managed(gone, "b");
  gone.observed.tokens.clear();
  Plan deleted = compute(gone);
  REQUIRE(deleted.drift.size() == 1);
  CHECK(drifted_attributes(deleted.drift[0]).empty());
}

TEST_CASE("a held-back token is listed as unchanged - its drift still reported", "[plan]") {
  Input in = make_input();
  add_managed(in, "a");
  in.sinks["a"] = SinkStatus::Unreadable;
  in.observed.tokens[id_for("a")].name = "renamed outside";
  Plan plan = compute(in);
  CHECK(plan.changes.empty());
  REQUIRE(plan.unchanged.size() == 1);
  CHECK(plan.unchanged[0].key == "a");
  CHECK(plan.unchanged[0].attrs.name == "renamed outside");
  REQUIRE(plan.drift.size() == 1);
  CHECK(plan.drift[0].key == "a");
}

TEST_CASE("differ: record_unchanged false leaves the no-ops out and plans the same changes",
          "[plan]") {
  Input in = make_input();
  add_managed(in, "a");
  add_managed(in, "b");
  in.observed.tokens[id_for("b")].name = "renamed outside";
  in.sinks["a"] = SinkStatus::Ok;
  Plan full = compute(in);
  REQUIRE(full.unchanged.size() == 1);
  CHECK(full.unchanged[0].key == "a");

  in.record_unchanged = false;
  Plan lean = compute(in);
  CHECK(lean.unchanged.empty());
  REQUIRE(lean.changes.size() == full.changes.size());
  REQUIRE(lean.changes.size() == 1);
  CHECK(lean.changes[0].key == "b");
  CHECK(lean.changes[0].action == full.changes[0].action);
  CHECK(lean.drift.size() == full.drift.size());
}
