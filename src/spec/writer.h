// Writing token specs as TOML: the inverse of the spec loader for the keys a
// spec of an existing token needs (name, description, type, role, roles,
// expiry_period_in_days, kind), used by `adopt` to generate spec files.
// Pure functions; no I/O.
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "spec/model.h"

namespace tokend::spec {

// `text` as a TOML basic string: in double quotes, with '"', '\\' and every
// control character (U+0000-U+001F, U+007F) escaped; other bytes, non-ASCII
// UTF-8 included, are kept as they are.
std::string toml_quote(std::string_view text);

// One spec to write, with the comment lines to put above its table.
struct WrittenSpec {
  std::string key;
  TokenAttrs attrs;
  std::vector<std::string> comments;  // each written as "# <line>"; control characters become '?'
};

// The TOML text of `specs`, in the order given: for each, its comment lines,
// `[api_token.<key>]`, name, description (when not empty), type, role, roles
// (one inline table per role, in the normalized order, deployment_id for DAG
// and DAG_TAG roles), expiry_period_in_days (when set) and kind (when not
// STANDARD). Loading the text gives back the same attributes.
std::string write_specs(const std::vector<WrittenSpec>& specs);

// A spec key made from `text` (a token name, a Terraform address): lowercase
// ASCII letters and digits, every other run of characters one "_", no "_" at
// either end, prefixed "token_" when it would not start with a letter ("token"
// when nothing is left), and "_2", "_3", … appended when `taken` holds it.
// The key returned is added to `taken`.
std::string derive_key(std::string_view text, std::set<std::string>& taken);

}  // namespace tokend::spec
