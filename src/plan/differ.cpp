// The differ: compute() as specified in plan.h. Pure: no I/O, no clock.
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include "plan/plan.h"

namespace tokend::plan {

namespace {

constexpr std::chrono::seconds kDay{86400};

std::string describe_expiry(const std::optional<int>& days) {
  return days ? std::to_string(*days) : std::string("unset");
}

// The state row with what the API reports for its token.
state::ResourceRecord refreshed_record(const state::ResourceRecord& row,
                                       const astro::ApiToken& token) {
  state::ResourceRecord current = row;
  current.attrs = token.attrs();
  current.attrs.roles = normalize_roles(std::move(current.attrs.roles));
  current.short_token = token.short_token;
  current.created_at = token.created_at;
  current.updated_at = token.updated_at;
  current.start_at = token.start_at;
  current.end_at = token.end_at;
  current.last_rotated_at = token.last_rotated_at;
  return current;
}

// A token about to be imported, as a record: nothing delivered yet.
state::ResourceRecord imported_record(const std::string& key, const astro::ApiToken& token) {
  state::ResourceRecord record;
  record.key = key;
  record.id = token.id;
  return refreshed_record(record, token);
}

bool attrs_drifted(const TokenAttrs& recorded, const TokenAttrs& observed) {
  return recorded.name != observed.name || recorded.description != observed.description ||
         recorded.type != observed.type ||
         recorded.expiry_period_in_days != observed.expiry_period_in_days ||
         recorded.kind != observed.kind || !same_roles(recorded.roles, observed.roles);
}

// The spec's attributes with normalized roles and ignored attributes taken
// from `current`.
TokenAttrs effective_attrs(const spec::TokenSpec& spec, const TokenAttrs* current) {
  TokenAttrs attrs = spec.attrs;
  attrs.roles = normalize_roles(std::move(attrs.roles));
  if (current == nullptr) return attrs;
  const spec::Lifecycle& lifecycle = spec.lifecycle;
  if (lifecycle.ignores("name")) attrs.name = current->name;
  if (lifecycle.ignores("description")) attrs.description = current->description;
  if (lifecycle.ignores("expiry_period_in_days"))
    attrs.expiry_period_in_days = current->expiry_period_in_days;
  if (lifecycle.ignores("type")) attrs.type = current->type;
  if (lifecycle.ignores("kind")) attrs.kind = current->kind;
  if (attrs.type == current->type) {
    if (lifecycle.ignores("roles")) {
      attrs.roles = normalize_roles(current->roles);
      attrs.role = current->role;
    } else if (lifecycle.ignores("role")) {
      RoleSet roles;
      for (const Role& role : attrs.roles)
        if (role.entity_type != attrs.type) roles.push_back(role);
      for (const Role& role : current->roles)
        if (role.entity_type == attrs.type) roles.push_back(role);
      attrs.roles = normalize_roles(std::move(roles));
      attrs.role = current->role;
    }
  }
  return attrs;
}

// The spec with its effective attributes (effective_attrs).
spec::TokenSpec effective_spec(const spec::TokenSpec& spec, TokenAttrs attrs) {
  spec::TokenSpec effective = spec;
  effective.attrs = std::move(attrs);
  return effective;
}

spec::TokenSpec effective_spec(const spec::TokenSpec& spec, const TokenAttrs* current) {
  return effective_spec(spec, effective_attrs(spec, current));
}

RotateReason rotation_due(const state::ResourceRecord& row, const state::ResourceRecord& current,
                          const spec::TokenSpec& spec, const Input& input, bool requested) {
  if (requested) return RotateReason::Requested;
  if (row.rotate_pending) return RotateReason::ValueLost;
  if (current.end_at && *current.end_at <= input.now) return RotateReason::Expired;
  if (!row.sink_sha256.empty()) {
    auto sink = input.sinks.find(row.key);
    SinkStatus status = sink == input.sinks.end() ? SinkStatus::Ok : sink->second;
    if (status == SinkStatus::Missing) return RotateReason::SinkMissing;
    if (status == SinkStatus::Mismatch) return RotateReason::SinkMismatch;
    if (!spec.sink.empty() && spec.sink != row.sink_path) return RotateReason::SinkMismatch;
  }
  if (current.end_at && spec.rotate_before_expiry_days > 0 &&
      *current.end_at - input.now < spec.rotate_before_expiry_days * kDay)
    return RotateReason::BeforeExpiry;
  if (spec.rotate_every_days > 0 && input.now - current.start_at >= spec.rotate_every_days * kDay)
    return RotateReason::Cadence;
  return RotateReason::None;
}

void set_update_flags(Change& change, const TokenAttrs& before, const TokenAttrs& after) {
  change.update_name_description =
      before.name != after.name || before.description != after.description;
  change.update_roles = !same_roles(before.roles, after.roles);
}

class Differ {
 public:
  explicit Differ(const Input& input) : input_(input) {
    for (const spec::TokenSpec& spec : input.specs()) specs_.emplace(spec.key, &spec);
    for (const state::ResourceRecord& row : input.prior) {
      rows_.emplace(row.key, &row);
      keys_by_id_.emplace(row.id, row.key);
    }
    for (const spec::TokenSpec& spec : input.specs()) {
      if (!spec.import_id || rows_.count(spec.key)) continue;
      auto [first, inserted] = importers_.emplace(*spec.import_id, spec.key);
      if (!inserted && spec.key < first->second) first->second = spec.key;
    }
  }

  Plan run() {
    plan_.lineage = input_.lineage;
    plan_.serial = input_.serial;
    plan_.spec_hash = input_.spec_hash;
    plan_.refreshed = input_.observed.refreshed;
    plan_.created_at = input_.now;
    plan_.targets = input_.targets;
    // Most rows are kept unchanged: room for all at once, not twice as much.
    if (input_.record_unchanged) plan_.unchanged.reserve(input_.prior.size());

    std::set<std::string> targets(input_.targets.begin(), input_.targets.end());
    check_rotations(targets);
    // Every key of specs_ and rows_ once, in order: both are sorted.
    auto spec = specs_.begin();
    auto row = rows_.begin();
    while (spec != specs_.end() || row != rows_.end()) {
      const bool take_spec =
          spec != specs_.end() && (row == rows_.end() || spec->first <= row->first);
      const bool take_row =
          row != rows_.end() && (spec == specs_.end() || row->first <= spec->first);
      const std::string key(take_spec ? spec->first : row->first);
      if (targets.empty() || targets.count(address_for_key(key)))
        plan_key(key, take_spec ? spec->second : nullptr, take_row ? row->second : nullptr);
      if (take_spec) ++spec;
      if (take_row) ++row;
    }
    return std::move(plan_);
  }

 private:
  void keep_unchanged(state::ResourceRecord&& current) {
    if (input_.record_unchanged) plan_.unchanged.push_back(std::move(current));
  }

  // Records each valid --rotate address's key; an error for every other.
  void check_rotations(const std::set<std::string>& targets) {
    for (const std::string& address : input_.rotations) {
      std::optional<std::string> key = key_for_address(address);
      if (!key) {
        plan_.errors.push_back("invalid --rotate \"" + address +
                               "\": expected an address such as astro_api_token.<key>");
      } else if (!specs_.count(*key)) {
        plan_.errors.push_back("--rotate " + address + " names no token in the configuration");
      } else if (!targets.empty() && !targets.count(address)) {
        plan_.errors.push_back("--rotate " + address + " is not among the --target addresses");
      } else {
        rotations_.insert(*key);
      }
    }
  }

  void plan_key(const std::string& key, const spec::TokenSpec* spec,
                const state::ResourceRecord* row) {
    if (row == nullptr) {
      plan_new(key, *spec);
      return;
    }

    // The current attributes, and drift when refreshed.
    std::optional<state::ResourceRecord> current;
    if (!input_.observed.refreshed) {
      current = *row;
    } else {
      auto token = input_.observed.tokens.find(row->id);
      if (token == input_.observed.tokens.end()) {
        plan_.drift.push_back(Drift{key, Drift::Kind::Deleted, *row, std::nullopt});
      } else {
        current = refreshed_record(*row, token->second);
        if (attrs_drifted(row->attrs, current->attrs))
          plan_.drift.push_back(Drift{key, Drift::Kind::Changed, *row, token->second});
      }
    }

    if (spec == nullptr) {
      Change change;
      change.key = key;
      if (current) {
        change.action = Action::Delete;
        change.before = std::move(current);
        change.action_reason = "delete_because_no_resource_config";
      } else {
        change.action = Action::Forget;
        change.before = *row;
      }
      plan_.changes.push_back(std::move(change));
      return;
    }

    // A sink that cannot be read says nothing about the value: the token is
    // held back, neither rotated nor changed otherwise.
    if (auto sink = input_.sinks.find(key);
        sink != input_.sinks.end() && sink->second == SinkStatus::Unreadable) {
      if (current) keep_unchanged(std::move(*current));
      return;
    }

    if (!current) {
      Change change;
      change.key = key;
      change.action = Action::Create;
      change.after = effective_spec(*spec, nullptr);
      change.recreate_after_remote_delete = true;
      plan_.changes.push_back(std::move(change));
      return;
    }

    plan_existing(*spec, *row, std::move(*current));
  }

  // A spec with no state row: Create or Import.
  void plan_new(const std::string& key, const spec::TokenSpec& spec) {
    Change change;
    change.key = key;
    if (!spec.import_id) {
      change.action = Action::Create;
      change.after = effective_spec(spec, nullptr);
      plan_.changes.push_back(std::move(change));
      return;
    }

    const std::string& id = *spec.import_id;
    const std::string address = address_for_key(key);
    const std::string subject = "import_id \"" + id + "\" for " + address;
    if (auto owner = keys_by_id_.find(id); owner != keys_by_id_.end()) {
      plan_.errors.push_back(subject + " is already managed by " +
                             address_for_key(std::string(owner->second)));
      return;
    }
    if (auto first = importers_.find(id); first != importers_.end() && first->second != key) {
      plan_.errors.push_back(subject + " is also imported by " + address_for_key(first->second));
      return;
    }

    change.action = Action::Import;
    if (rotations_.count(key)) {
      change.rotate = true;
      change.rotate_reason = RotateReason::Requested;
    }
    if (!input_.observed.refreshed) {
      change.after = effective_spec(spec, nullptr);
      plan_.changes.push_back(std::move(change));
      return;
    }
    auto token = input_.observed.tokens.find(id);
    if (token == input_.observed.tokens.end()) {
      plan_.errors.push_back(subject + " does not exist in the organization");
      return;
    }
    state::ResourceRecord before = imported_record(key, token->second);
    spec::TokenSpec after = effective_spec(spec, &before.attrs);
    bool failed = false;
    if (after.attrs.type != before.attrs.type) {
      plan_.errors.push_back(subject + " names a " + std::string(to_string(before.attrs.type)) +
                             " token, but the spec asks for type " +
                             std::string(to_string(after.attrs.type)) +
                             "; an imported token cannot be replaced");
      failed = true;
    }
    if (after.attrs.expiry_period_in_days != before.attrs.expiry_period_in_days) {
      plan_.errors.push_back(subject + " names a token with expiry_period_in_days " +
                             describe_expiry(before.attrs.expiry_period_in_days) +
                             ", but the spec asks for " +
                             describe_expiry(after.attrs.expiry_period_in_days) +
                             "; an imported token cannot be replaced");
      failed = true;
    }
    if (after.attrs.kind != before.attrs.kind) {
      plan_.errors.push_back(subject + " names a " + std::string(to_string(before.attrs.kind)) +
                             " token, but the spec asks for kind " +
                             std::string(to_string(after.attrs.kind)) +
                             "; an imported token cannot be replaced");
      failed = true;
    }
    if (failed) return;
    set_update_flags(change, before.attrs, after.attrs);
    change.before = std::move(before);
    change.after = std::move(after);
    plan_.changes.push_back(std::move(change));
  }

  // A spec whose recorded token still exists: Replace, Update, Rotate or no-op.
  void plan_existing(const spec::TokenSpec& spec, const state::ResourceRecord& row,
                     state::ResourceRecord current) {
    Change change;
    change.key = spec.key;
    // A spec that ignores nothing and whose roles are in normal order is its
    // own effective attributes: compared as it is, copied only for a change.
    std::optional<TokenAttrs> adjusted;
    if (!spec.lifecycle.ignore_changes.empty() || !roles_normalized(spec.attrs.roles))
      adjusted = effective_attrs(spec, &current.attrs);
    const TokenAttrs& after = adjusted ? *adjusted : spec.attrs;
    const auto after_spec = [&] {
      return effective_spec(spec, adjusted ? std::move(*adjusted) : spec.attrs);
    };

    if (after.type != current.attrs.type) change.replace_paths.push_back("type");
    if (after.expiry_period_in_days != current.attrs.expiry_period_in_days)
      change.replace_paths.push_back("expiry_period_in_days");
    if (after.kind != current.attrs.kind) change.replace_paths.push_back("kind");
    if (!change.replace_paths.empty()) {
      if (spec.lifecycle.prevent_destroy) {
        plan_.errors.push_back(address_for_key(spec.key) +
                               " has lifecycle.prevent_destroy set, but the plan calls for this "
                               "resource to be destroyed");
        return;
      }
      change.action = Action::Replace;
      change.action_reason = "replace_because_cannot_update";
      change.create_before_destroy = spec.lifecycle.create_before_destroy;
      change.before = std::move(current);
      change.after = after_spec();
      plan_.changes.push_back(std::move(change));
      return;
    }

    set_update_flags(change, current.attrs, after);
    change.rotate_reason = rotation_due(row, current, spec, input_, rotations_.count(spec.key) > 0);
    change.rotate = change.rotate_reason != RotateReason::None;
    if (change.update_name_description || change.update_roles) {
      change.action = Action::Update;
    } else if (change.rotate) {
      change.action = Action::Rotate;
    } else {
      keep_unchanged(std::move(current));
      return;
    }
    change.before = std::move(current);
    change.after = after_spec();
    plan_.changes.push_back(std::move(change));
  }

  const Input& input_;
  // Keys and ids are views of input_'s strings.
  std::map<std::string_view, const spec::TokenSpec*, std::less<>> specs_;
  std::map<std::string_view, const state::ResourceRecord*, std::less<>> rows_;
  std::map<std::string_view, std::string_view, std::less<>> keys_by_id_;  // row id -> key
  std::map<std::string, std::string> importers_;  // import_id -> first key importing it
  std::set<std::string> rotations_;               // keys named by valid --rotate addresses
  Plan plan_;
};

}  // namespace

Plan compute(const Input& input) { return Differ(input).run(); }

std::optional<Timestamp> next_rotation(const spec::TokenSpec& spec,
                                       const state::ResourceRecord& current) {
  std::optional<Timestamp> due;
  auto consider = [&due](Timestamp t) {
    if (!due || t < *due) due = t;
  };
  if (current.end_at) {
    consider(*current.end_at);
    if (spec.rotate_before_expiry_days > 0)
      consider(*current.end_at - spec.rotate_before_expiry_days * kDay);
  }
  if (spec.rotate_every_days > 0) consider(current.start_at + spec.rotate_every_days * kDay);
  return due;
}

std::vector<std::string> drifted_attributes(const Drift& drift) {
  if (drift.kind == Drift::Kind::Deleted || !drift.observed) return {};
  const TokenAttrs& recorded = drift.recorded.attrs;
  const TokenAttrs observed = drift.observed->attrs();
  std::vector<std::string> changed;
  if (recorded.name != observed.name) changed.push_back("name");
  if (recorded.description != observed.description) changed.push_back("description");
  if (recorded.type != observed.type) changed.push_back("type");
  if (recorded.role != observed.role) changed.push_back("role");
  if (normalize_roles(recorded.roles) != normalize_roles(observed.roles))
    changed.push_back("roles");
  if (recorded.expiry_period_in_days != observed.expiry_period_in_days)
    changed.push_back("expiry_period_in_days");
  if (recorded.kind != observed.kind) changed.push_back("kind");
  return changed;
}

}  // namespace tokend::plan
