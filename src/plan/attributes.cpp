#include "plan/attributes.h"

#include <algorithm>
#include <map>

namespace tokend::plan::attributes {

namespace {

using Kind = Value::Kind;
using Values = std::map<std::string, Value>;  // by attribute name, so sorted

Value null_value() { return Value{}; }
Value string_value(std::string text) { return Value{Kind::String, std::move(text), 0, {}}; }
Value number_value(int64_t number) { return Value{Kind::Number, "", number, {}}; }
Value roles_value(const RoleSet& roles) {
  return Value{Kind::Roles, "", 0, normalize_roles(roles)};
}
Value of_kind(Kind kind) { return Value{kind, "", 0, {}}; }
Value time_value(Timestamp t) { return string_value(format_rfc3339(t)); }
Value optional_time(const std::optional<Timestamp>& t) { return t ? time_value(*t) : null_value(); }
Value optional_number(const std::optional<int>& n) { return n ? number_value(*n) : null_value(); }
Value path_value(const std::string& path) {
  return path.empty() ? null_value() : string_value(path);
}

Values record_values(const state::ResourceRecord& record) {
  return {
      {"created_at", time_value(record.created_at)},
      {"description", string_value(record.attrs.description)},
      {"end_at", optional_time(record.end_at)},
      {"expiry_period_in_days", optional_number(record.attrs.expiry_period_in_days)},
      {"id", string_value(record.id)},
      {"kind", string_value(std::string(to_string(record.attrs.kind)))},
      {"last_rotated_at", optional_time(record.last_rotated_at)},
      {"name", string_value(record.attrs.name)},
      {"role", string_value(record.attrs.role)},
      {"roles", roles_value(record.attrs.roles)},
      {"short_token", string_value(record.short_token)},
      {"sink", path_value(record.sink_path)},
      {"start_at", time_value(record.start_at)},
      {"token", of_kind(Kind::Sensitive)},
      {"type", string_value(std::string(to_string(record.attrs.type)))},
      {"updated_at", time_value(record.updated_at)},
  };
}

// The attributes a spec sets.
void set_spec_values(Values& values, const spec::TokenSpec& spec) {
  values["description"] = string_value(spec.attrs.description);
  values["expiry_period_in_days"] = optional_number(spec.attrs.expiry_period_in_days);
  values["kind"] = string_value(std::string(to_string(spec.attrs.kind)));
  values["name"] = string_value(spec.attrs.name);
  values["role"] = string_value(spec.attrs.role);
  values["roles"] = roles_value(spec.attrs.roles);
  values["sink"] = path_value(spec.sink);
  values["type"] = string_value(std::string(to_string(spec.attrs.type)));
}

Value new_end_at(const spec::TokenSpec& spec) {
  return spec.attrs.expiry_period_in_days ? of_kind(Kind::Unknown) : null_value();
}

// A token that create (or replace) will make.
Values new_token_values(const spec::TokenSpec& spec) {
  Values values;
  set_spec_values(values, spec);
  for (const char* name : {"created_at", "id", "short_token", "start_at", "updated_at"})
    values[name] = of_kind(Kind::Unknown);
  values["end_at"] = new_end_at(spec);
  values["last_rotated_at"] = null_value();  // a new token has never been rotated
  values["token"] = of_kind(Kind::NewSensitive);
  return values;
}

ObjectDiff combine(const Values* before, const Values* after) {
  ObjectDiff result;
  result.has_before = before != nullptr;
  result.has_after = after != nullptr;
  std::map<std::string, Attribute> merged;
  if (before)
    for (const auto& [name, value] : *before) merged[name].before = value;
  if (after)
    for (const auto& [name, value] : *after) merged[name].after = value;
  for (auto& [name, attribute] : merged) {
    attribute.name = name;
    result.attributes.push_back(std::move(attribute));
  }
  return result;
}

}  // namespace

bool identifying(const std::string& name) { return name == "id" || name == "name"; }

ObjectDiff diff(const Change& change) {
  std::optional<Values> before;
  std::optional<Values> after;
  if (change.before) before = record_values(*change.before);

  switch (change.action) {
    case Action::Create:
      after = new_token_values(*change.after);
      break;
    case Action::Replace:
      after = new_token_values(*change.after);
      break;
    case Action::Import:
      if (!before) {
        after = new_token_values(*change.after);
        (*after)["id"] = string_value(change.after->import_id.value_or(""));
        (*after)["token"] = of_kind(change.rotate ? Kind::NewSensitive : Kind::Sensitive);
        break;
      }
      [[fallthrough]];
    case Action::Update:
    case Action::Rotate:
      after = *before;
      set_spec_values(*after, *change.after);
      if (change.update_name_description || change.update_roles || change.rotate)
        (*after)["updated_at"] = of_kind(Kind::Unknown);
      if (change.rotate) {
        (*after)["short_token"] = of_kind(Kind::Unknown);
        (*after)["start_at"] = of_kind(Kind::Unknown);
        (*after)["end_at"] = new_end_at(*change.after);
        (*after)["last_rotated_at"] = of_kind(Kind::Unknown);
        (*after)["token"] = of_kind(Kind::NewSensitive);
      }
      break;
    case Action::Delete:
    case Action::Forget:
      break;
  }

  ObjectDiff result = combine(before ? &*before : nullptr, after ? &*after : nullptr);
  for (Attribute& attribute : result.attributes) {
    attribute.forces_replacement =
        std::find(change.replace_paths.begin(), change.replace_paths.end(), attribute.name) !=
        change.replace_paths.end();
  }
  return result;
}

ObjectDiff diff(const Drift& drift) {
  Values before = record_values(drift.recorded);
  if (!drift.observed) return combine(&before, nullptr);
  state::ResourceRecord observed = drift.recorded;
  observed.attrs = drift.observed->attrs();
  observed.short_token = drift.observed->short_token;
  observed.created_at = drift.observed->created_at;
  observed.updated_at = drift.observed->updated_at;
  observed.start_at = drift.observed->start_at;
  observed.end_at = drift.observed->end_at;
  observed.last_rotated_at = drift.observed->last_rotated_at;
  Values after = record_values(observed);
  return combine(&before, &after);
}

ObjectDiff unchanged(const state::ResourceRecord& record) {
  Values values = record_values(record);
  return combine(&values, &values);
}

}  // namespace tokend::plan::attributes
