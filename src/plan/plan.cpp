#include "plan/plan.h"

#include <array>
#include <utility>

namespace tokend::plan {

namespace {

constexpr std::array<std::pair<Action, std::string_view>, 7> kActionNames{{
    {Action::Create, "create"},
    {Action::Import, "import"},
    {Action::Update, "update"},
    {Action::Replace, "replace"},
    {Action::Delete, "delete"},
    {Action::Rotate, "rotate"},
    {Action::Forget, "forget"},
}};

constexpr std::array<std::pair<RotateReason, std::string_view>, 8> kRotateReasonNames{{
    {RotateReason::None, "none"},
    {RotateReason::BeforeExpiry, "before_expiry"},
    {RotateReason::Cadence, "cadence"},
    {RotateReason::Expired, "expired"},
    {RotateReason::SinkMissing, "sink_missing"},
    {RotateReason::SinkMismatch, "sink_mismatch"},
    {RotateReason::ValueLost, "value_lost"},
    {RotateReason::Requested, "requested"},
}};

}  // namespace

std::string_view to_string(Action action) {
  for (const auto& [value, name] : kActionNames)
    if (value == action) return name;
  return "unknown";
}

std::optional<Action> parse_action(std::string_view text) {
  for (const auto& [value, name] : kActionNames)
    if (name == text) return value;
  return std::nullopt;
}

std::string_view to_string(RotateReason reason) {
  for (const auto& [value, name] : kRotateReasonNames)
    if (value == reason) return name;
  return "unknown";
}

std::optional<RotateReason> parse_rotate_reason(std::string_view text) {
  for (const auto& [value, name] : kRotateReasonNames)
    if (name == text) return value;
  return std::nullopt;
}

Counts Plan::counts() const {
  Counts counts;
  for (const Change& change : changes) {
    switch (change.action) {
      case Action::Create:
        ++counts.add;
        break;
      case Action::Import:
        ++counts.import;
        if (change.update_name_description || change.update_roles) ++counts.change;
        if (change.rotate) ++counts.rotate;
        break;
      case Action::Update:
        ++counts.change;
        if (change.rotate) ++counts.rotate;
        break;
      case Action::Replace:
        ++counts.add;
        ++counts.destroy;
        break;
      case Action::Delete:
        ++counts.destroy;
        break;
      case Action::Rotate:
        ++counts.rotate;
        break;
      case Action::Forget:
        break;
    }
  }
  return counts;
}

}  // namespace tokend::plan
