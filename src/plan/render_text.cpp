#include "plan/render_text.h"

#include <algorithm>
#include <string_view>
#include <utility>
#include <vector>

#include "plan/attributes.h"
#include "util/json_text.h"

namespace tokend::plan {

namespace {

using attributes::Attribute;
using attributes::ObjectDiff;
using attributes::Value;
using Kind = Value::Kind;

constexpr std::string_view kTool = "astro-tokend";
constexpr std::string_view kResourceType = "astro_api_token";
constexpr size_t kRuleWidth = 77;

constexpr const char* kGreen = "\x1b[32m";
constexpr const char* kYellow = "\x1b[33m";
constexpr const char* kRed = "\x1b[31m";
constexpr const char* kCyan = "\x1b[36m";
constexpr const char* kBold = "\x1b[1m";
constexpr const char* kReset = "\x1b[0m";

// The marker of one attribute line or one block.
enum class Marker {
  None,
  Create,
  Import,
  Update,
  Delete,
  Rotate,
  Forget,
  DeleteCreate,
  CreateDelete
};

class Writer {
 public:
  explicit Writer(const RenderOptions& options) : options_(options) {}

  std::string paint(const char* code, std::string_view text) const {
    if (!options_.color) return std::string(text);
    return std::string(code) + std::string(text) + kReset;
  }

  // A bold coloured lead word followed by bold text (in `rest_code` too when
  // given), Terraform's style for "Note:", "Error:" and "No changes.".
  std::string lead(const char* code, std::string_view word, std::string_view rest,
                   const char* rest_code = "") const {
    if (!options_.color) return std::string(word) + std::string(rest);
    return std::string(kBold) + code + std::string(word) + kReset + kBold + rest_code +
           std::string(rest) + kReset;
  }

  // The symbol, coloured, without padding.
  std::string symbol(Marker marker) const {
    switch (marker) {
      case Marker::None:
        return " ";
      case Marker::Create:
        return paint(kGreen, "+");
      case Marker::Import:
        return paint(kCyan, "<=");
      case Marker::Update:
        return paint(kYellow, "~");
      case Marker::Delete:
        return paint(kRed, "-");
      case Marker::Rotate:
        return paint(kCyan, options_.ascii_symbols ? "R" : "↻");
      case Marker::Forget:
        return ".";
      case Marker::DeleteCreate:
        return paint(kRed, "-") + "/" + paint(kGreen, "+");
      case Marker::CreateDelete:
        return paint(kGreen, "+") + "/" + paint(kRed, "-");
    }
    return " ";
  }

  // The symbol right-aligned in three columns, as Terraform lays out blocks.
  std::string block_symbol(Marker marker) const {
    switch (marker) {
      case Marker::DeleteCreate:
      case Marker::CreateDelete:
        return symbol(marker);
      case Marker::Import:
        return " " + symbol(marker);
      default:
        return "  " + symbol(marker);
    }
  }

  std::string rule() const {
    std::string line;
    for (size_t i = 0; i < kRuleWidth; ++i) line += options_.ascii_symbols ? "-" : "─";
    return line;
  }

  std::string out;

 private:
  const RenderOptions& options_;
};

std::string scalar(const Value& value) {
  switch (value.kind) {
    case Kind::Null:
      return "null";
    case Kind::String:
      return json_quote(value.text);
    case Kind::Number:
      return std::to_string(value.number);
    case Kind::Unknown:
      return "(known after apply)";
    case Kind::Sensitive:
    case Kind::NewSensitive:
      return "(sensitive value)";
    case Kind::Roles:
      return "[...]";
  }
  return "null";
}

std::string padded(const std::string& name, size_t width) {
  return name + std::string(width > name.size() ? width - name.size() : 0, ' ');
}

std::string plural(int n, std::string_view singular) {
  return std::to_string(n) + " " + std::string(singular) + (n == 1 ? "" : "s");
}

// How a block shows its attributes.
enum class Mode { Create, Destroy, Update, Forget };

void write_role_fields(Writer& w, const Role& role, Marker marker, bool to_null) {
  // A DAG or DAG_TAG role also names its deployment; other roles have no
  // deployment_id, so it is left out (as Terraform leaves out null fields).
  std::vector<std::pair<const char*, std::string>> fields;
  if (!role.deployment_id.empty()) fields.emplace_back("deployment_id", role.deployment_id);
  fields.emplace_back("entity_id", role.entity_id);
  fields.emplace_back("entity_type", std::string(to_string(role.entity_type)));
  fields.emplace_back("role", role.role);
  const size_t width = role.deployment_id.empty() ? 11 : 13;
  for (const auto& [name, text] : fields) {
    w.out +=
        "              " + w.symbol(marker) + " " + padded(name, width) + " = " + json_quote(text);
    if (to_null) w.out += " -> null";
    w.out += "\n";
  }
}

void write_role_element(Writer& w, const Role& role, Marker marker) {
  w.out += "          " + w.symbol(marker) + " {\n";
  write_role_fields(w, role, marker, marker == Marker::Delete);
  w.out += "            },\n";
}

// `roles = [ … ]`, a set of objects: added, removed and hidden unchanged elements.
void write_roles(Writer& w, const std::string& head, Marker marker, const RoleSet& before,
                 const RoleSet& after, Mode mode) {
  if (mode == Mode::Create && after.empty()) {
    w.out += head + "[]\n";
    return;
  }
  if (mode == Mode::Destroy && before.empty()) {
    w.out += head + "[] -> null\n";
    return;
  }
  w.out += head + "[\n";
  int unchanged = 0;
  RoleSet all;
  std::set_union(before.begin(), before.end(), after.begin(), after.end(), std::back_inserter(all));
  for (const Role& role : all) {
    bool in_before = std::binary_search(before.begin(), before.end(), role);
    bool in_after = std::binary_search(after.begin(), after.end(), role);
    if (in_before && in_after) {
      ++unchanged;
    } else {
      write_role_element(w, role, in_after ? Marker::Create : Marker::Delete);
    }
  }
  if (unchanged > 0)
    w.out += "            # (" + plural(unchanged, "unchanged element") + " hidden)\n";
  w.out += "        ]";
  if (marker == Marker::Delete) w.out += " -> null";
  w.out += "\n";
}

void write_attribute(Writer& w, const Attribute& a, size_t width, Mode mode) {
  Marker marker = Marker::None;
  std::string text;
  const RoleSet empty;
  switch (mode) {
    case Mode::Create:
      marker = Marker::Create;
      text = scalar(a.after);
      break;
    case Mode::Destroy:
      marker = Marker::Delete;
      text = scalar(a.before) + " -> null";
      break;
    case Mode::Forget:
      text = scalar(a.before);
      break;
    case Mode::Update:
      if (!a.changed()) {
        text = scalar(a.after);
      } else if (a.before.kind == Kind::Null) {
        marker = Marker::Create;
        text = scalar(a.after);
      } else if (a.after.kind == Kind::Null) {
        marker = Marker::Delete;
        text = scalar(a.before) + " -> null";
      } else if (a.after.kind == Kind::NewSensitive) {
        marker = Marker::Update;
        text = scalar(a.after);
      } else {
        marker = Marker::Update;
        text = scalar(a.before) + " -> " + scalar(a.after);
      }
      break;
  }

  std::string head = "      " + w.symbol(marker) + " " + padded(a.name, width) + " = ";
  bool roles = a.before.kind == Kind::Roles || a.after.kind == Kind::Roles;
  if (roles && marker != Marker::None) {
    const RoleSet& before = a.before.kind == Kind::Roles ? a.before.roles : empty;
    const RoleSet& after = a.after.kind == Kind::Roles ? a.after.roles : empty;
    write_roles(w, head, marker, before, after, mode);
    return;
  }
  w.out += head + text;
  if (a.forces_replacement) w.out += w.paint(kRed, " # forces replacement");
  w.out += "\n";
}

// Whether the attribute has a value on the side(s) a block in `mode` shows.
bool has_value(const Attribute& a, Mode mode) {
  switch (mode) {
    case Mode::Create:
      return a.after.kind != Kind::Null;
    case Mode::Destroy:
    case Mode::Forget:
      return a.before.kind != Kind::Null;
    case Mode::Update:
      return a.before.kind != Kind::Null || a.after.kind != Kind::Null;
  }
  return false;
}

void write_block(Writer& w, Marker block_marker, const std::string& key, const ObjectDiff& diff,
                 Mode mode) {
  std::vector<const Attribute*> shown;
  int hidden = 0;
  for (const Attribute& a : diff.attributes) {
    if (!has_value(a, mode)) continue;
    bool show = mode == Mode::Create || mode == Mode::Destroy || attributes::identifying(a.name) ||
                (mode == Mode::Update && a.changed());
    if (show) {
      shown.push_back(&a);
    } else {
      ++hidden;
    }
  }
  size_t width = 0;
  for (const Attribute* a : shown) width = std::max(width, a->name.size());

  w.out += w.block_symbol(block_marker) + " resource \"" + std::string(kResourceType) + "\" \"" +
           key + "\" {\n";
  for (const Attribute* a : shown) write_attribute(w, *a, width, mode);
  if (hidden > 0) w.out += "        # (" + plural(hidden, "unchanged attribute") + " hidden)\n";
  w.out += "    }\n";
}

void write_heading(Writer& w, const std::string& address, std::string_view what) {
  w.out += "  " + w.paint(kBold, "# " + address) + " " + std::string(what) + "\n";
}

void write_change(Writer& w, const Change& change) {
  const std::string address = change.address();
  ObjectDiff diff = attributes::diff(change);
  switch (change.action) {
    case Action::Create:
      write_heading(w, address, "will be created");
      write_block(w, Marker::Create, change.key, diff, Mode::Create);
      break;
    case Action::Import: {
      const bool updates = change.update_name_description || change.update_roles;
      write_heading(w, address,
                    updates && change.rotate ? "will be imported, updated in-place and rotated"
                    : updates                ? "will be imported and updated in-place"
                    : change.rotate          ? "will be imported and rotated"
                                             : "will be imported");
      w.out += "  # (imported from " + json_quote(change.after->import_id.value_or("")) + ")\n";
      if (change.rotate) w.out += "  # (because " + describe_rotation(change) + ")\n";
      write_block(w, Marker::Import, change.key, diff, change.before ? Mode::Update : Mode::Create);
      break;
    }
    case Action::Update:
      write_heading(
          w, address,
          change.rotate ? "will be updated in-place and rotated" : "will be updated in-place");
      if (change.rotate) w.out += "  # (because " + describe_rotation(change) + ")\n";
      write_block(w, Marker::Update, change.key, diff, Mode::Update);
      break;
    case Action::Replace:
      write_heading(w, address, "must be replaced");
      write_block(w, change.create_before_destroy ? Marker::CreateDelete : Marker::DeleteCreate,
                  change.key, diff, Mode::Update);
      break;
    case Action::Delete: {
      // A deposed key, "<key>~<token id>": an extra token of <key>, shown as
      // Terraform shows a deposed object.
      const size_t tilde = change.key.find('~');
      if (tilde == std::string::npos) {
        write_heading(w, address, "will be destroyed");
        w.out += "  # (because " + address + " is not in configuration)\n";
      } else {
        const std::string owner = address_for_key(change.key.substr(0, tilde));
        write_heading(w, owner + " (deposed object " + change.key.substr(tilde + 1) + ")",
                      "will be destroyed");
        w.out += "  # (because it is not the token of " + owner +
                 ": left over from a replacement, or made by a create that took effect late)\n";
      }
      write_block(w, Marker::Delete, change.key, diff, Mode::Destroy);
      break;
    }
    case Action::Rotate:
      write_heading(w, address, "will be rotated");
      w.out += "  # (because " + describe_rotation(change) + ")\n";
      write_block(w, Marker::Rotate, change.key, diff, Mode::Update);
      break;
    case Action::Forget:
      write_heading(w, address, "will no longer be managed by astro-tokend");
      w.out += "  # (because it was deleted outside astro-tokend and is not in configuration)\n";
      write_block(w, Marker::Forget, change.key, diff, Mode::Forget);
      break;
  }
}

void write_drift(Writer& w, const Plan& plan) {
  w.out +=
      w.lead(kCyan, "Note:", " Objects have changed outside of " + std::string(kTool)) + "\n\n";
  w.out += std::string(kTool) + " detected the following changes made outside of " +
           std::string(kTool) + " since the last \"" + std::string(kTool) + " apply\":\n";
  for (const Drift& drift : plan.drift) {
    w.out += "\n";
    const std::string address = address_for_key(drift.key);
    ObjectDiff diff = attributes::diff(drift);
    if (drift.kind == Drift::Kind::Changed) {
      write_heading(w, address, "has changed");
      write_block(w, Marker::Update, drift.key, diff, Mode::Update);
    } else {
      write_heading(w, address, "has been deleted");
      write_block(w, Marker::Delete, drift.key, diff, Mode::Destroy);
    }
  }
  w.out +=
      "\nUnless you have made equivalent changes to your configuration, or ignored the relevant "
      "attributes using ignore_changes, the following plan may include actions to undo or "
      "respond to these changes.\n\n";
  w.out += w.rule() + "\n\n";
}

void write_legend(Writer& w, const Plan& plan) {
  auto has = [&](auto predicate) {
    return std::any_of(plan.changes.begin(), plan.changes.end(), predicate);
  };
  w.out += std::string(kTool) + " compared the token specs with " +
           (plan.refreshed ? "the organization's tokens" : "the state") +
           " and generated the following execution plan. Resource actions are indicated with "
           "the following symbols:\n";
  auto line = [&](Marker marker, std::string_view text) {
    w.out += w.block_symbol(marker) + " " + std::string(text) + "\n";
  };
  if (has([](const Change& c) { return c.action == Action::Import; }))
    line(Marker::Import, "import");
  if (has([](const Change& c) { return c.action == Action::Create; }))
    line(Marker::Create, "create");
  if (has([](const Change& c) { return c.action == Action::Update; }))
    line(Marker::Update, "update in-place");
  if (has([](const Change& c) { return c.action == Action::Delete; }))
    line(Marker::Delete, "destroy");
  if (has([](const Change& c) { return c.action == Action::Replace && !c.create_before_destroy; }))
    line(Marker::DeleteCreate, "destroy and then create replacement");
  if (has([](const Change& c) { return c.action == Action::Replace && c.create_before_destroy; }))
    line(Marker::CreateDelete, "create replacement and then destroy");
  if (has([](const Change& c) { return c.action == Action::Rotate; }))
    line(Marker::Rotate, "rotate");
  if (has([](const Change& c) { return c.action == Action::Forget; }))
    line(Marker::Forget, "forget");
}

}  // namespace

std::string describe_rotation(const Change& change) {
  if (change.rotate && change.rotate_reason == RotateReason::Requested)
    return "its rotation was requested with --rotate";
  if (!change.rotate || !change.before) return "";
  const state::ResourceRecord& before = *change.before;
  const std::string end_at = before.end_at ? format_rfc3339(*before.end_at) : "never";
  const std::string sink =
      before.sink_path.empty() && change.after ? change.after->sink : before.sink_path;
  switch (change.rotate_reason) {
    case RotateReason::None:
    case RotateReason::Requested:
      return "";
    case RotateReason::ValueLost:
      return "its current value was lost before it was delivered";
    case RotateReason::Expired:
      return "it expired at " + end_at;
    case RotateReason::SinkMissing:
      return "its sink file " + json_quote(sink) + " is missing";
    case RotateReason::SinkMismatch:
      if (change.after && !change.after->sink.empty() && change.after->sink != before.sink_path)
        return "its sink moved from " + json_quote(before.sink_path) + " to " +
               json_quote(change.after->sink);
      return "its sink file " + json_quote(sink) + " does not hold the delivered value";
    case RotateReason::BeforeExpiry:
      return "it expires at " + end_at + ", within rotate_before_expiry_days = " +
             std::to_string(change.after ? change.after->rotate_before_expiry_days : 0);
    case RotateReason::Cadence:
      return "its value was issued at " + format_rfc3339(before.start_at) +
             ", at least rotate_every_days = " +
             std::to_string(change.after ? change.after->rotate_every_days : 0) + " ago";
  }
  return "";
}

std::string render_text(const Plan& plan, const RenderOptions& options) {
  Writer w(options);
  if (!plan.drift.empty()) write_drift(w, plan);

  if (!plan.errors.empty()) {
    for (size_t i = 0; i < plan.errors.size(); ++i) {
      if (i > 0) w.out += "\n";
      w.out += w.lead(kRed, "Error:", " " + plan.errors[i]) + "\n";
    }
    return w.out;
  }

  if (plan.changes.empty()) {
    w.out += w.lead(kGreen, "No changes.", " Your tokens match the configuration.", kGreen) + "\n";
    return w.out;
  }

  write_legend(w, plan);
  w.out += "\n" + std::string(kTool) + " will perform the following actions:\n";
  for (const Change& change : plan.changes) {
    w.out += "\n";
    write_change(w, change);
  }
  Counts counts = plan.counts();
  w.out += "\n" + w.paint(kBold, "Plan:") + " ";
  if (counts.import > 0) w.out += std::to_string(counts.import) + " to import, ";
  w.out += std::to_string(counts.add) + " to add, " + std::to_string(counts.change) +
           " to change, " + std::to_string(counts.destroy) + " to destroy, " +
           std::to_string(counts.rotate) + " to rotate.\n";
  return w.out;
}

}  // namespace tokend::plan
