// The keys the config and the token specs accept, table by table: the one
// list both the loaders' unknown-key checks and the reference documentation
// (docs/config-reference.md, docs/spec-reference.md, checked by a test) are
// held to. A key the loader reads must be listed here, or it is refused as
// unknown.
#pragma once

#include <string_view>
#include <vector>

namespace tokend::spec {

struct KeyTable {
  // The table as the documentation heads it: "" for the top level, then e.g.
  // "astro", "astro.rate_limits" (config) or "api_token.<key>",
  // "api_token.<key>.roles", "api_token.<key>.lifecycle" (specs; roles names
  // the keys of one entry of the array).
  std::string_view table;
  std::vector<std::string_view> keys;  // in documentation order
};

// Every table of the daemon config, top level first.
const std::vector<KeyTable>& config_key_tables();
// Every table of a token spec file, top level first.
const std::vector<KeyTable>& spec_key_tables();

// The keys of one table of config_key_tables() / spec_key_tables(); a table
// that is not listed is a programming error (empty list).
const std::vector<std::string_view>& config_keys(std::string_view table);
const std::vector<std::string_view>& spec_keys(std::string_view table);

}  // namespace tokend::spec
