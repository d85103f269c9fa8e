#include "spec/delivery.h"

#include <unistd.h>

#include <algorithm>
#include <string_view>

#include "spec/text.h"
#include "util/files.h"

namespace tokend::spec {

namespace {

constexpr std::string_view kModes[] = {"0600", "0640", "0400", "0440"};

}  // namespace

std::optional<int> read_sink_mode(TableReader& table) {
  std::optional<std::string> text = table.string("sink_mode");
  if (!text) return std::nullopt;
  if (std::find(std::begin(kModes), std::end(kModes), *text) == std::end(kModes)) {
    table.error_at_value(
        "sink_mode",
        "sink_mode must be one of \"0600\", \"0640\", \"0400\", \"0440\", got " + in_quotes(*text));
    return std::nullopt;
  }
  return std::stoi(*text, nullptr, 8);
}

std::optional<std::string> sink_group_problem(const std::string& name) {
  std::optional<gid_t> gid = group_id(name);
  if (!gid) return "sink_group " + in_quotes(name) + " is not a group on this system";
  if (may_use_group(*gid)) return std::nullopt;
  return "sink_group " + in_quotes(name) + ": astro-tokend runs as uid " +
         std::to_string(geteuid()) + ", which is not a member of that group, so it cannot give " +
         "sinks the group; add its user to the group (under systemd: SupplementaryGroups=" + name +
         ")";
}

std::optional<std::string> read_sink_group(TableReader& table) {
  std::optional<std::string> name = table.string("sink_group");
  if (!name) return std::nullopt;
  if (name->empty()) {
    table.error_at_value("sink_group", "sink_group must not be empty");
    return std::nullopt;
  }
  if (std::optional<std::string> problem = sink_group_problem(*name)) {
    table.error_at_value("sink_group", std::move(*problem));
    return std::nullopt;
  }
  return name;
}

std::optional<std::vector<std::string>> read_on_delivery(TableReader& table) {
  const toml::value* array = table.array("on_delivery");
  if (!array) return std::nullopt;
  std::vector<std::string> argv;
  bool valid = true;
  const auto error = [&](const toml::value& at, std::string message) {
    table.error_at(at, std::move(message));
    valid = false;
  };
  for (const toml::value& entry : array->as_array()) {
    if (!entry.is_string()) {
      error(entry, "on_delivery entries must be strings, got " + describe(entry));
      continue;
    }
    const std::string& text = entry.as_string().str;
    if (text.find('\0') != std::string::npos) {
      error(entry, "on_delivery entries must not contain a NUL character");
    } else if (argv.empty() && (text.empty() || text.front() != '/')) {
      error(entry,
            "on_delivery must start with the absolute path of a program (no shell runs "
            "it), got " +
                in_quotes(text));
    }
    argv.push_back(text);
  }
  if (!valid) return std::nullopt;
  return argv;
}

}  // namespace tokend::spec
