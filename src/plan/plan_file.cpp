#include "plan/plan_file.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <limits>
#include <map>
#include <set>
#include "plan/json_output.h"
#include "util/files.h"
#include "util/json_parse.h"
#include "util/json_text.h"
#include "version.h"

namespace tokend::plan {

namespace {

using Poco::Dynamic::Var;
using Poco::JSON::Array;
using Poco::JSON::Object;

// ---- encoding ---------------------------------------------------------------

Object::Ptr new_object() { return new Object(Poco::JSON_PRESERVE_KEY_ORDER); }

Array::Ptr string_array(const std::vector<std::string>& items) {
  Array::Ptr array = new Array;
  for (const std::string& item : items) array->add(item);
  return array;
}

Var optional_time(const std::optional<Timestamp>& t) { return t ? Var(format_rfc3339(*t)) : Var(); }
Var optional_int(const std::optional<int>& n) { return n ? Var(*n) : Var(); }

Array::Ptr encode_roles(const RoleSet& roles) {
  Array::Ptr array = new Array;
  for (const Role& role : roles) {
    Object::Ptr entry = new_object();
    entry->set("role", role.role);
    entry->set("entity_id", role.entity_id);
    entry->set("entity_type", std::string(to_string(role.entity_type)));
    if (!role.deployment_id.empty()) entry->set("deployment_id", role.deployment_id);
    array->add(entry);
  }
  return array;
}

Object::Ptr encode_attrs(const TokenAttrs& attrs) {
  Object::Ptr o = new_object();
  o->set("name", attrs.name);
  o->set("description", attrs.description);
  o->set("type", std::string(to_string(attrs.type)));
  o->set("role", attrs.role);
  o->set("roles", encode_roles(attrs.roles));
  o->set("expiry_period_in_days", optional_int(attrs.expiry_period_in_days));
  o->set("kind", std::string(to_string(attrs.kind)));
  return o;
}

Object::Ptr encode_record(const state::ResourceRecord& r) {
  Object::Ptr o = new_object();
  o->set("key", r.key);
  o->set("id", r.id);
  o->set("attrs", encode_attrs(r.attrs));
  o->set("short_token", r.short_token);
  o->set("created_at", format_rfc3339(r.created_at));
  o->set("updated_at", format_rfc3339(r.updated_at));
  o->set("start_at", format_rfc3339(r.start_at));
  o->set("end_at", optional_time(r.end_at));
  o->set("last_rotated_at", optional_time(r.last_rotated_at));
  o->set("sink_path", r.sink_path);
  o->set("sink_sha256", r.sink_sha256);
  o->set("rotate_pending", r.rotate_pending);
  o->set("delivery_pending", r.delivery_pending);
  return o;
}

Object::Ptr encode_spec(const spec::TokenSpec& s) {
  Object::Ptr o = new_object();
  o->set("key", s.key);
  o->set("attrs", encode_attrs(s.attrs));
  o->set("rotate_before_expiry_days", s.rotate_before_expiry_days);
  o->set("rotate_every_days", s.rotate_every_days);
  o->set("sink", s.sink);
  o->set("import_id", s.import_id ? Var(*s.import_id) : Var());
  Object::Ptr lifecycle = new_object();
  lifecycle->set("prevent_destroy", s.lifecycle.prevent_destroy);
  lifecycle->set("create_before_destroy", s.lifecycle.create_before_destroy);
  lifecycle->set("ignore_changes", string_array(s.lifecycle.ignore_changes));
  o->set("lifecycle", lifecycle);
  Object::Ptr pos = new_object();
  pos->set("file", s.pos.file);
  pos->set("line", s.pos.line);
  pos->set("column", s.pos.column);
  o->set("pos", pos);
  return o;
}

Object::Ptr encode_api_token(const astro::ApiToken& t) {
  Object::Ptr o = new_object();
  o->set("id", t.id);
  o->set("name", t.name);
  o->set("description", t.description);
  o->set("type", std::string(to_string(t.type)));
  o->set("kind", std::string(to_string(t.kind)));
  o->set("roles", encode_roles(t.roles));
  o->set("expiry_period_in_days", optional_int(t.expiry_period_in_days));
  o->set("short_token", t.short_token);
  o->set("created_at", format_rfc3339(t.created_at));
  o->set("updated_at", format_rfc3339(t.updated_at));
  o->set("start_at", format_rfc3339(t.start_at));
  o->set("end_at", optional_time(t.end_at));
  o->set("last_used_at", optional_time(t.last_used_at));
  o->set("last_rotated_at", optional_time(t.last_rotated_at));
  return o;  // never the secret value
}

Object::Ptr encode_change(const Change& c) {
  Object::Ptr o = new_object();
  o->set("key", c.key);
  o->set("action", std::string(to_string(c.action)));
  o->set("before", c.before ? Var(encode_record(*c.before)) : Var());
  o->set("after", c.after ? Var(encode_spec(*c.after)) : Var());
  o->set("update_name_description", c.update_name_description);
  o->set("update_roles", c.update_roles);
  o->set("rotate", c.rotate);
  o->set("rotate_reason", std::string(to_string(c.rotate_reason)));
  o->set("replace_paths", string_array(c.replace_paths));
  o->set("create_before_destroy", c.create_before_destroy);
  o->set("action_reason", c.action_reason);
  o->set("recreate_after_remote_delete", c.recreate_after_remote_delete);
  return o;
}

Object::Ptr encode_drift(const Drift& d) {
  Object::Ptr o = new_object();
  o->set("key", d.key);
  o->set("kind", d.kind == Drift::Kind::Changed ? "changed" : "deleted");
  o->set("recorded", encode_record(d.recorded));
  o->set("observed", d.observed ? Var(encode_api_token(*d.observed)) : Var());
  return o;
}

// ---- decoding ---------------------------------------------------------------

// Thrown inside this file only; load_plan turns it into Error Invalid.
struct DecodeError {
  std::string message;
};

// Typed access to the fields of one JSON object, naming the field's path in
// every error.
class Fields {
 public:
  Fields(Object::Ptr object, std::string path)
      : object_(std::move(object)), path_(std::move(path)) {}

  std::string where(const std::string& name) const {
    return path_.empty() ? name : path_ + "." + name;
  }

  [[noreturn]] void fail(const std::string& name, const std::string& problem) const {
    throw DecodeError{where(name) + ": " + problem};
  }

  Var get(const std::string& name) const {
    if (!object_->has(name)) fail(name, "missing");
    return object_->get(name);
  }
  bool is_null(const std::string& name) const { return get(name).isEmpty(); }
  bool has(const std::string& name) const { return object_->has(name); }

  std::string str(const std::string& name) const {
    Var v = get(name);
    if (!v.isString()) fail(name, "expected a string");
    return v.extract<std::string>();
  }
  std::optional<std::string> optional_str(const std::string& name) const {
    if (is_null(name)) return std::nullopt;
    return str(name);
  }
  int64_t int64(const std::string& name) const {
    Var v = get(name);
    if (!v.isInteger()) fail(name, "expected an integer");
    try {
      return v.convert<Poco::Int64>();
    } catch (const Poco::Exception&) {
      fail(name, "integer out of range");
    }
  }
  int int32(const std::string& name) const {
    int64_t n = int64(name);
    if (n < std::numeric_limits<int>::min() || n > std::numeric_limits<int>::max())
      fail(name, "integer out of range");
    return static_cast<int>(n);
  }
  std::optional<int> optional_int32(const std::string& name) const {
    if (is_null(name)) return std::nullopt;
    return int32(name);
  }
  bool boolean(const std::string& name) const {
    Var v = get(name);
    if (!v.isBoolean()) fail(name, "expected true or false");
    return v.extract<bool>();
  }
  Timestamp time(const std::string& name) const {
    std::string text = str(name);
    auto t = parse_rfc3339(text);
    if (!t) fail(name, "expected an RFC 3339 time, got " + json_quote(text));
    return *t;
  }
  std::optional<Timestamp> optional_time(const std::string& name) const {
    if (is_null(name)) return std::nullopt;
    return time(name);
  }
  // A token's type: ORGANIZATION, WORKSPACE or DEPLOYMENT.
  EntityType token_type(const std::string& name) const {
    std::string text = str(name);
    auto type = parse_token_type(text);
    if (!type) fail(name, "unknown token type " + json_quote(text));
    return *type;
  }
  // A role's entity type: a token type, DAG or DAG_TAG.
  EntityType entity_type(const std::string& name) const {
    std::string text = str(name);
    auto type = parse_entity_type(text);
    if (!type) fail(name, "unknown entity type " + json_quote(text));
    return *type;
  }
  // Absent in plan files written before tokens had a kind: STANDARD.
  TokenKind token_kind(const std::string& name) const {
    if (!has(name)) return TokenKind::Standard;
    std::string text = str(name);
    auto kind = parse_token_kind(text);
    if (!kind) fail(name, "unknown token kind " + json_quote(text));
    return *kind;
  }
  Fields object(const std::string& name) const {
    Var v = get(name);
    if (v.type() != typeid(Object::Ptr)) fail(name, "expected an object");
    return Fields(v.extract<Object::Ptr>(), where(name));
  }
  std::optional<Fields> optional_object(const std::string& name) const {
    if (is_null(name)) return std::nullopt;
    return object(name);
  }
  // The elements of an array of objects.
  std::vector<Fields> objects(const std::string& name) const {
    Array::Ptr array = array_of(name);
    std::vector<Fields> result;
    for (size_t i = 0; i < array->size(); ++i) {
      std::string path = where(name) + "[" + std::to_string(i) + "]";
      Object::Ptr element = array->getObject(static_cast<unsigned>(i));
      if (element.isNull()) throw DecodeError{path + ": expected an object"};
      result.emplace_back(element, path);
    }
    return result;
  }
  std::vector<std::string> strings(const std::string& name) const {
    Array::Ptr array = array_of(name);
    std::vector<std::string> result;
    for (size_t i = 0; i < array->size(); ++i) {
      Var v = array->get(static_cast<unsigned>(i));
      if (!v.isString())
        throw DecodeError{where(name) + "[" + std::to_string(i) + "]: expected a string"};
      result.push_back(v.extract<std::string>());
    }
    return result;
  }

 private:
  Array::Ptr array_of(const std::string& name) const {
    Var v = get(name);
    if (v.type() != typeid(Array::Ptr)) fail(name, "expected an array");
    return v.extract<Array::Ptr>();
  }

  Object::Ptr object_;
  std::string path_;
};

RoleSet decode_roles(const Fields& f, const std::string& name) {
  RoleSet roles;
  for (const Fields& entry : f.objects(name)) {
    Role role{entry.str("role"), entry.str("entity_id"), entry.entity_type("entity_type"),
              entry.has("deployment_id") ? entry.str("deployment_id") : std::string()};
    const bool dag = is_dag_entity(role.entity_type);
    if (dag == role.deployment_id.empty())
      entry.fail("deployment_id",
                 dag ? "missing for a " + std::string(to_string(role.entity_type)) + " role"
                     : "only DAG and DAG_TAG roles have one");
    roles.push_back(std::move(role));
  }
  return roles;
}

TokenAttrs decode_attrs(const Fields& f) {
  TokenAttrs attrs;
  attrs.name = f.str("name");
  attrs.description = f.str("description");
  attrs.type = f.token_type("type");
  attrs.role = f.str("role");
  attrs.roles = decode_roles(f, "roles");
  attrs.expiry_period_in_days = f.optional_int32("expiry_period_in_days");
  attrs.kind = f.token_kind("kind");
  return attrs;
}

state::ResourceRecord decode_record(const Fields& f) {
  state::ResourceRecord r;
  r.key = f.str("key");
  r.id = f.str("id");
  r.attrs = decode_attrs(f.object("attrs"));
  r.short_token = f.str("short_token");
  r.created_at = f.time("created_at");
  r.updated_at = f.time("updated_at");
  r.start_at = f.time("start_at");
  r.end_at = f.optional_time("end_at");
  if (f.has("last_rotated_at")) r.last_rotated_at = f.optional_time("last_rotated_at");
  r.sink_path = f.str("sink_path");
  r.sink_sha256 = f.str("sink_sha256");
  r.rotate_pending = f.boolean("rotate_pending");
  r.delivery_pending = f.has("delivery_pending") && f.boolean("delivery_pending");
  return r;
}

spec::TokenSpec decode_spec(const Fields& f) {
  spec::TokenSpec s;
  s.key = f.str("key");
  s.attrs = decode_attrs(f.object("attrs"));
  s.rotate_before_expiry_days = f.int32("rotate_before_expiry_days");
  s.rotate_every_days = f.int32("rotate_every_days");
  s.sink = f.str("sink");
  s.import_id = f.optional_str("import_id");
  Fields lifecycle = f.object("lifecycle");
  s.lifecycle.prevent_destroy = lifecycle.boolean("prevent_destroy");
  s.lifecycle.create_before_destroy = lifecycle.boolean("create_before_destroy");
  s.lifecycle.ignore_changes = lifecycle.strings("ignore_changes");
  Fields pos = f.object("pos");
  s.pos.file = pos.str("file");
  s.pos.line = pos.int32("line");
  s.pos.column = pos.int32("column");
  return s;
}

astro::ApiToken decode_api_token(const Fields& f) {
  astro::ApiToken t;
  t.id = f.str("id");
  t.name = f.str("name");
  t.description = f.str("description");
  t.type = f.token_type("type");
  t.kind = f.token_kind("kind");
  t.roles = decode_roles(f, "roles");
  t.expiry_period_in_days = f.optional_int32("expiry_period_in_days");
  t.short_token = f.str("short_token");
  t.created_at = f.time("created_at");
  t.updated_at = f.time("updated_at");
  t.start_at = f.time("start_at");
  t.end_at = f.optional_time("end_at");
  t.last_used_at = f.optional_time("last_used_at");
  if (f.has("last_rotated_at")) t.last_rotated_at = f.optional_time("last_rotated_at");
  return t;
}

bool needs_before(Action action) {
  return action == Action::Update || action == Action::Rotate || action == Action::Replace ||
         action == Action::Delete || action == Action::Forget;
}

bool needs_after(Action action) { return action != Action::Delete && action != Action::Forget; }

Change decode_change(const Fields& f) {
  Change c;
  c.key = f.str("key");
  std::string action = f.str("action");
  auto parsed = parse_action(action);
  if (!parsed) f.fail("action", "unknown action " + json_quote(action));
  c.action = *parsed;
  if (auto before = f.optional_object("before")) c.before = decode_record(*before);
  if (auto after = f.optional_object("after")) c.after = decode_spec(*after);
  if (needs_before(c.action) && !c.before) f.fail("before", "required for " + action);
  if (needs_after(c.action) && !c.after) f.fail("after", "required for " + action);
  if (c.action == Action::Import && !c.after->import_id)
    f.fail("after.import_id", "required for import");
  c.update_name_description = f.boolean("update_name_description");
  c.update_roles = f.boolean("update_roles");
  c.rotate = f.boolean("rotate");
  std::string reason = f.str("rotate_reason");
  auto parsed_reason = parse_rotate_reason(reason);
  if (!parsed_reason) f.fail("rotate_reason", "unknown rotate reason " + json_quote(reason));
  c.rotate_reason = *parsed_reason;
  c.replace_paths = f.strings("replace_paths");
  c.create_before_destroy = f.boolean("create_before_destroy");
  c.action_reason = f.str("action_reason");
  c.recreate_after_remote_delete = f.boolean("recreate_after_remote_delete");
  return c;
}

Drift decode_drift(const Fields& f) {
  Drift d;
  d.key = f.str("key");
  std::string kind = f.str("kind");
  if (kind == "changed") {
    d.kind = Drift::Kind::Changed;
  } else if (kind == "deleted") {
    d.kind = Drift::Kind::Deleted;
  } else {
    f.fail("kind", "expected \"changed\" or \"deleted\", got " + json_quote(kind));
  }
  d.recorded = decode_record(f.object("recorded"));
  if (auto observed = f.optional_object("observed")) d.observed = decode_api_token(*observed);
  return d;
}

Plan decode_plan(const Fields& f) {
  Plan plan;
  plan.lineage = f.str("lineage");
  plan.serial = f.int64("serial");
  plan.spec_hash = f.str("spec_hash");
  plan.created_at = f.time("created_at");
  plan.refreshed = f.boolean("refreshed");
  plan.targets = f.strings("targets");
  std::map<std::string, size_t> first_change;  // key -> index in changes
  for (const Fields& change : f.objects("changes")) {
    plan.changes.push_back(decode_change(change));
    const std::string& key = plan.changes.back().key;
    const size_t at = plan.changes.size() - 1;
    if (auto [seen, fresh] = first_change.emplace(key, at); !fresh)
      throw DecodeError{"changes[" + std::to_string(at) + "]: a second change for " +
                        address_for_key(key) + " (changes[" + std::to_string(seen->second) +
                        "] is the first); a plan changes each token once"};
  }
  for (const Fields& drift : f.objects("drift")) plan.drift.push_back(decode_drift(drift));
  // Absent from files written before unchanged tokens were kept.
  if (f.has("unchanged"))
    for (const Fields& row : f.objects("unchanged")) plan.unchanged.push_back(decode_record(row));
  plan.errors = f.strings("errors");
  return plan;
}

Error invalid(const std::string& message) { return Error::invalid(message); }

Error stale(const std::string& message) {
  return Error::conflict("Saved plan is stale: " + message);
}

}  // namespace

std::string save_plan(const Plan& plan) {
  Object root(Poco::JSON_PRESERVE_KEY_ORDER);
  root.set("astro_tokend_plan", kPlanFileVersion);
  root.set("astro_tokend_version", kVersion);
  root.set("lineage", plan.lineage);
  root.set("serial", static_cast<Poco::Int64>(plan.serial));
  root.set("spec_hash", plan.spec_hash);
  root.set("created_at", format_rfc3339(plan.created_at));
  root.set("refreshed", plan.refreshed);
  root.set("targets", string_array(plan.targets));
  Array::Ptr changes = new Array;
  for (const Change& change : plan.changes) changes->add(encode_change(change));
  root.set("changes", changes);
  Array::Ptr drift = new Array;
  for (const Drift& d : plan.drift) drift->add(encode_drift(d));
  root.set("drift", drift);
  Array::Ptr unchanged = new Array;
  for (const state::ResourceRecord& row : plan.unchanged) unchanged->add(encode_record(row));
  root.set("unchanged", unchanged);
  root.set("errors", string_array(plan.errors));
  return indented_json(root);
}

Result<Plan> load_plan(const std::string& text) {
  auto parsed = parse_json(text);
  if (!parsed.ok())
    return invalid("not an astro-tokend plan file: invalid JSON: " + parsed.error().message);
  if (parsed->type() != typeid(Object::Ptr))
    return invalid("not an astro-tokend plan file: expected a JSON object");
  Object::Ptr root = parsed->extract<Object::Ptr>();
  if (!root->has("astro_tokend_plan"))
    return invalid("not an astro-tokend plan file: no \"astro_tokend_plan\" version field");
  try {
    Fields fields(root, "");
    int64_t version = fields.int64("astro_tokend_plan");
    if (version != kPlanFileVersion)
      return invalid("unsupported plan file version " + std::to_string(version) +
                     " (this astro-tokend reads version " + std::to_string(kPlanFileVersion) +
                     "); create the plan again with this version");
    return decode_plan(fields);
  } catch (const DecodeError& e) {
    return invalid("plan file: " + e.message);
  } catch (const Poco::Exception& e) {
    return invalid("plan file: " + e.message());
  } catch (const std::exception& e) {
    return invalid(std::string("plan file: ") + e.what());
  }
}

Status check_plan_current(const Plan& plan, const std::string& lineage, int64_t serial,
                          const std::string& spec_hash) {
  if (plan.lineage != lineage) return stale("it was created for a different state lineage.");
  if (plan.serial != serial)
    return stale("the state has changed since the plan was created (serial " +
                 std::to_string(plan.serial) + ", now " + std::to_string(serial) + ").");
  if (plan.spec_hash != spec_hash)
    return stale("the token specs have changed since the plan was created.");
  return ok_status();
}

Status check_plan_creates(const Plan& plan, const std::vector<state::ResourceRecord>& resources) {
  std::map<std::string, std::string> managed;  // key -> token id
  for (const state::ResourceRecord& row : resources) managed.emplace(row.key, row.id);
  // Tokens the plan saw deleted outside astro-tokend, as recorded: creating
  // them again is what the plan is for.
  std::set<std::pair<std::string, std::string>> deleted;
  for (const Drift& drift : plan.drift)
    if (drift.kind == Drift::Kind::Deleted) deleted.emplace(drift.key, drift.recorded.id);
  for (size_t i = 0; i < plan.changes.size(); ++i) {
    const Change& change = plan.changes[i];
    auto row = managed.find(change.key);
    if (change.action != Action::Create || row == managed.end()) continue;
    if (change.recreate_after_remote_delete && deleted.count({change.key, row->second})) continue;
    return invalid("plan file: changes[" + std::to_string(i) + "]: creates " + change.address() +
                   ", which the state already manages");
  }
  return ok_status();
}

Result<Plan> load_plan_file(const std::string& path) {
  auto text = read_file(path);
  if (!text.ok()) {
    Error error = text.error();
    if (error.kind == ErrorKind::Io && error.message.rfind("cannot read ", 0) == 0)
      error.message = "cannot read plan file " + error.message.substr(12);
    return error;
  }
  auto plan = load_plan(*text);
  if (!plan.ok()) return Error::invalid(path + ": " + plan.error().message);
  return plan;
}

}  // namespace tokend::plan
