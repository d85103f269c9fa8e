// The steps behind loader.h, exposed so that load_desired_state can go on to
// the token specs after config problems that do not prevent reading them, and
// report everything in one pass. Never throw.
#pragma once

#include <exception>
#include <string>
#include <vector>

#include "spec/model.h"

namespace tokend::spec {

struct ConfigReading {
  Config config;                        // defaults wherever a key was absent or invalid
  std::vector<Diagnostic> diagnostics;  // empty when the config is valid
  bool parsed = false;  // the file was read and is TOML: config.spec_paths are meaningful
};

// Reads and validates the daemon config at `path` (product.md §2).
ConfigReading read_config(const std::string& path);

// Reads and validates every spec file under config.spec_paths, appending
// problems to `diagnostics` (grouped by file in load order, each file's sorted
// by position). A spec path that does not exist is reported only when
// `report_missing_paths` (read_config already reports it at the `paths` key).
// Returns the tokens that are valid, sorted by key; `spec_hash` receives the
// SHA-256 over the files' names and bytes when given.
std::vector<TokenSpec> read_specs(const Config& config, bool report_missing_paths,
                                  std::vector<Diagnostic>& diagnostics, std::string* spec_hash);

// The last-resort diagnostic for an exception nothing else caught (such as
// std::bad_alloc), so that the public load_* functions never throw.
Diagnostic internal_error(const std::string& file, const std::exception& error);

}  // namespace tokend::spec
