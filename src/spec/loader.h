#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "spec/model.h"

namespace tokend::spec {

// Loading never throws: unreadable files, bad encodings, TOML syntax errors
// and invalid values all become diagnostics, in file load order and by
// position within a file. Diagnostics name a file relative to the working
// directory when it lies below it, otherwise by its absolute path.

// Either the loaded value or every diagnostic found (never empty on failure).
template <typename T>
struct Loaded {
  std::optional<T> value;
  std::vector<Diagnostic> diagnostics;
  bool ok() const { return value.has_value() && diagnostics.empty(); }
};

// Reads and validates the daemon config at `path` (product.md §2). Relative
// paths inside it resolve against the file's directory.
Loaded<Config> load_config(const std::string& path);

// Reads every `*.toml` under config.spec_paths (sorted order) and validates
// each token against §1 and against `config` (organization id, secrets dir).
// Does no network I/O; remote existence checks are a separate step.
Loaded<std::vector<TokenSpec>> load_specs(const Config& config, std::string* spec_hash = nullptr);

// load_config followed by load_specs; diagnostics from both. The specs are
// still read when the config has problems other than being unreadable or not
// TOML, so that one run reports everything.
Loaded<DesiredState> load_desired_state(const std::string& config_path);

}  // namespace tokend::spec
