#include "plan/render_json.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <map>

#include "plan/attributes.h"
#include "plan/json_output.h"
#include "version.h"

namespace tokend::plan {

namespace {

using attributes::ObjectDiff;
using attributes::Value;
using Kind = Value::Kind;
using Poco::JSON::Array;
using Poco::JSON::Object;

Object::Ptr new_object() { return new Object(Poco::JSON_PRESERVE_KEY_ORDER); }

Array::Ptr string_array(const std::vector<std::string>& items) {
  Array::Ptr array = new Array;
  for (const std::string& item : items) array->add(item);
  return array;
}

Array::Ptr roles_array(const RoleSet& roles) {
  Array::Ptr array = new Array;
  for (const Role& role : roles) {
    Object::Ptr entry = new_object();
    // Only DAG and DAG_TAG roles have a deployment_id.
    if (!role.deployment_id.empty()) entry->set("deployment_id", role.deployment_id);
    entry->set("entity_id", role.entity_id);
    entry->set("entity_type", std::string(to_string(role.entity_type)));
    entry->set("role", role.role);
    array->add(entry);
  }
  return array;
}

// Sets `name` in `object` to a known value; false for unknown and sensitive values.
bool set_known(Object& object, const std::string& name, const Value& value) {
  switch (value.kind) {
    case Kind::Null:
      object.set(name, Poco::Dynamic::Var());
      return true;
    case Kind::String:
      object.set(name, value.text);
      return true;
    case Kind::Number:
      object.set(name, static_cast<Poco::Int64>(value.number));
      return true;
    case Kind::Roles:
      object.set(name, roles_array(value.roles));
      return true;
    case Kind::Unknown:
    case Kind::Sensitive:
    case Kind::NewSensitive:
      return false;
  }
  return false;
}

Poco::Dynamic::Var sensitivity(bool exists) {
  if (!exists) return false;
  Object::Ptr marks = new_object();
  marks->set("token", true);
  return marks;
}

Object::Ptr change_body(const ObjectDiff& diff, const std::vector<std::string>& actions) {
  Object::Ptr before = new_object();
  Object::Ptr after = new_object();
  Object::Ptr after_unknown = new_object();
  for (const auto& attribute : diff.attributes) {
    if (diff.has_before) set_known(*before, attribute.name, attribute.before);
    if (diff.has_after && !set_known(*after, attribute.name, attribute.after)) {
      if (attribute.after.kind == Kind::Unknown || attribute.after.kind == Kind::NewSensitive)
        after_unknown->set(attribute.name, true);
    }
  }
  Object::Ptr change = new_object();
  change->set("actions", string_array(actions));
  change->set("before", diff.has_before ? Poco::Dynamic::Var(before) : Poco::Dynamic::Var());
  change->set("after", diff.has_after ? Poco::Dynamic::Var(after) : Poco::Dynamic::Var());
  change->set("after_unknown", after_unknown);
  change->set("before_sensitive", sensitivity(diff.has_before));
  change->set("after_sensitive", sensitivity(diff.has_after));
  return change;
}

Object::Ptr resource_entry(const std::string& key, const Object::Ptr& change) {
  Object::Ptr entry = new_object();
  entry->set("address", address_for_key(key));
  entry->set("mode", "managed");
  entry->set("type", "astro_api_token");
  entry->set("name", key);
  entry->set("provider_name", kProviderName);
  entry->set("change", change);
  return entry;
}

std::vector<std::string> actions_of(const Change& change) {
  switch (change.action) {
    case Action::Create:
      return {"create"};
    case Action::Import:
      if (change.update_name_description || change.update_roles || change.rotate) return {"update"};
      return {"no-op"};
    case Action::Update:
    case Action::Rotate:
      return {"update"};
    case Action::Replace:
      if (change.create_before_destroy) return {"create", "delete"};
      return {"delete", "create"};
    case Action::Delete:
      return {"delete"};
    case Action::Forget:
      return {"forget"};
  }
  return {};
}

Object::Ptr change_entry(const Change& change) {
  Object::Ptr body = change_body(attributes::diff(change), actions_of(change));
  if (!change.replace_paths.empty()) {
    Array::Ptr paths = new Array;
    for (const std::string& path : change.replace_paths) paths->add(string_array({path}));
    body->set("replace_paths", paths);
  }
  if (change.action == Action::Import) {
    Object::Ptr importing = new_object();
    importing->set("id", change.after->import_id.value_or(""));
    body->set("importing", importing);
  }
  if (change.rotate) {
    body->set("rotate", true);
    body->set("rotate_reason", std::string(to_string(change.rotate_reason)));
  }
  Object::Ptr entry = resource_entry(change.key, body);
  if (!change.action_reason.empty()) entry->set("action_reason", change.action_reason);
  return entry;
}

Object::Ptr drift_entry(const Drift& drift) {
  std::vector<std::string> actions{drift.kind == Drift::Kind::Changed ? "update" : "delete"};
  return resource_entry(drift.key, change_body(attributes::diff(drift), actions));
}

// Terraform's values representation of one resource instance: its known
// attributes on one side of `diff`.
Object::Ptr resource_values(const std::string& key, const ObjectDiff& diff, bool after_side) {
  Object::Ptr values = new_object();
  for (const auto& attribute : diff.attributes)
    set_known(*values, attribute.name, after_side ? attribute.after : attribute.before);
  Object::Ptr entry = new_object();
  entry->set("address", address_for_key(key));
  entry->set("mode", "managed");
  entry->set("type", "astro_api_token");
  entry->set("name", key);
  entry->set("provider_name", kProviderName);
  entry->set("schema_version", 0);
  entry->set("values", values);
  entry->set("sensitive_values", sensitivity(true));
  return entry;
}

Object::Ptr root_module(const std::map<std::string, Object::Ptr>& by_key) {
  Array::Ptr resources = new Array;
  for (const auto& entry : by_key) resources->add(entry.second);
  Object::Ptr module = new_object();
  module->set("resources", resources);
  Object::Ptr values = new_object();
  values->set("root_module", module);
  return values;
}

Object::Ptr diagnostic_entry(const JsonDiagnostic& diagnostic) {
  Object::Ptr entry = new_object();
  entry->set("severity", "error");
  entry->set("summary", diagnostic.summary);
  entry->set("detail", diagnostic.detail);
  if (!diagnostic.filename.empty() && diagnostic.line > 0) {
    auto position = [&] {
      Object::Ptr pos = new_object();
      pos->set("line", diagnostic.line);
      pos->set("column", diagnostic.column > 0 ? diagnostic.column : 1);
      return pos;
    };
    Object::Ptr range = new_object();
    range->set("filename", diagnostic.filename);
    range->set("start", position());
    range->set("end", position());
    entry->set("range", range);
  }
  return entry;
}

Array::Ptr diagnostics_array(const std::vector<JsonDiagnostic>& diagnostics) {
  Array::Ptr array = new Array;
  for (const JsonDiagnostic& diagnostic : diagnostics) array->add(diagnostic_entry(diagnostic));
  return array;
}

}  // namespace

JsonDiagnostic json_diagnostic(const spec::Diagnostic& diagnostic) {
  JsonDiagnostic out;
  out.summary = diagnostic.message;
  out.filename = diagnostic.pos.file;
  out.line = diagnostic.pos.line;
  out.column = diagnostic.pos.column;
  if (out.line == 0 && !out.filename.empty()) out.detail = "In " + out.filename + ".";
  return out;
}

JsonDiagnostic json_diagnostic(const Error& error) { return json_diagnostic(error.describe()); }

JsonDiagnostic json_diagnostic(const std::string& message) {
  JsonDiagnostic out;
  out.summary = message;
  return out;
}

std::string render_json(const Plan& plan, const std::vector<JsonDiagnostic>& problems) {
  // planned_values and prior_state, by key (so sorted by address).
  std::map<std::string, Object::Ptr> planned;
  std::map<std::string, Object::Ptr> prior;
  for (const Change& change : plan.changes) {
    const ObjectDiff diff = attributes::diff(change);
    if (diff.has_after) planned[change.key] = resource_values(change.key, diff, true);
    const bool in_state = change.action != Action::Import && change.action != Action::Forget;
    if (diff.has_before && in_state) prior[change.key] = resource_values(change.key, diff, false);
  }
  for (const state::ResourceRecord& row : plan.unchanged) {
    const ObjectDiff diff = attributes::unchanged(row);
    planned[row.key] = resource_values(row.key, diff, true);
    prior[row.key] = resource_values(row.key, diff, false);
  }
  const bool errored = !plan.errors.empty();

  Object root(Poco::JSON_PRESERVE_KEY_ORDER);
  root.set("format_version", "1.2");
  root.set("terraform_version", kVersion);
  root.set("astro_tokend_version", kVersion);
  root.set("lineage", plan.lineage);
  root.set("serial", static_cast<Poco::Int64>(plan.serial));
  root.set("timestamp", format_rfc3339(plan.created_at));
  root.set("applyable", !errored && !plan.changes.empty());
  root.set("complete", !errored && plan.targets.empty() && problems.empty());
  root.set("errored", errored);
  root.set("refreshed", plan.refreshed);
  root.set("planned_values", root_module(planned));
  Array::Ptr drift = new Array;
  for (const Drift& d : plan.drift) drift->add(drift_entry(d));
  root.set("resource_drift", drift);
  Array::Ptr changes = new Array;
  for (const Change& c : plan.changes) changes->add(change_entry(c));
  root.set("resource_changes", changes);
  Object::Ptr prior_state = new_object();
  prior_state->set("format_version", "1.0");
  prior_state->set("terraform_version", kVersion);
  prior_state->set("values", root_module(prior));
  root.set("prior_state", prior_state);
  root.set("errors", string_array(plan.errors));
  std::vector<JsonDiagnostic> diagnostics;
  for (const std::string& error : plan.errors) diagnostics.push_back(json_diagnostic(error));
  diagnostics.insert(diagnostics.end(), problems.begin(), problems.end());
  root.set("diagnostics", diagnostics_array(diagnostics));
  return indented_json(root);
}

std::string render_json_failure(const std::vector<JsonDiagnostic>& diagnostics) {
  Object root(Poco::JSON_PRESERVE_KEY_ORDER);
  root.set("format_version", "1.2");
  root.set("terraform_version", kVersion);
  root.set("astro_tokend_version", kVersion);
  root.set("applyable", false);
  root.set("complete", false);
  root.set("errored", true);
  root.set("diagnostics", diagnostics_array(diagnostics));
  return indented_json(root);
}

}  // namespace tokend::plan
