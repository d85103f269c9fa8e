// The attribute-level view of a Change or Drift that the text and JSON
// renderers share: for each attribute of the `astro_api_token` resource, its
// value before and after. Internal to plan/. Values never include a secret:
// the token appears only as a sensitivity marker.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "plan/plan.h"

namespace tokend::plan::attributes {

struct Value {
  enum class Kind {
    Null,          // absent / no such object
    String,        // `text`
    Number,        // `number`
    Roles,         // `roles`
    Unknown,       // known after apply
    Sensitive,     // the secret token, unchanged
    NewSensitive,  // a new secret token will be issued
  };
  Kind kind = Kind::Null;
  std::string text;
  int64_t number = 0;
  RoleSet roles;

  bool operator==(const Value&) const = default;
};

struct Attribute {
  std::string name;
  Value before;
  Value after;
  bool forces_replacement = false;

  bool changed() const { return after.kind == Value::Kind::NewSensitive || before != after; }
};

// The attributes of both sides of a change, sorted by name (Terraform's
// order). `has_before` / `has_after` say whether each object exists at all.
struct ObjectDiff {
  bool has_before = false;
  bool has_after = false;
  std::vector<Attribute> attributes;
};

ObjectDiff diff(const Change& change);
ObjectDiff diff(const Drift& drift);
// A token the plan leaves as it is: the same values before and after.
ObjectDiff unchanged(const state::ResourceRecord& record);

// The attribute names Terraform always shows for an object being updated.
bool identifying(const std::string& name);

}  // namespace tokend::plan::attributes
