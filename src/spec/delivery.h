// The delivery keys that a token spec and the [secrets] table share:
// sink_mode, sink_group and on_delivery. Each reader takes the key from a
// table, reports every problem at the value (file:line:col) and returns
// nullopt when the key is absent or invalid.
//
// sink_group is checked against this system: the group must exist, and the
// process loading the spec must be able to give files that group (root, or
// a member of it), since that process writes the sinks. Reads the group
// database; writes nothing.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "spec/toml_document.h"

namespace tokend::spec {

// "0600", "0640", "0400" or "0440" -> the mode bits.
std::optional<int> read_sink_mode(TableReader& table);

// A group name that exists here and that this process may give its files.
std::optional<std::string> read_sink_group(TableReader& table);

// An array of strings, the first an absolute path to a program; [] means
// "no hook" (a token's `on_delivery = []` turns the [secrets] default off).
std::optional<std::vector<std::string>> read_on_delivery(TableReader& table);

// Why this process cannot give its files group `name`, or nullopt when it
// can ("sink_group \"x\" is not a group on this system", …).
std::optional<std::string> sink_group_problem(const std::string& name);

}  // namespace tokend::spec
