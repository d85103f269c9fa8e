// Reading a Terraform state file (format version 4, as `terraform state
// pull` writes it) for the astro_api_token resources it holds. Pure: the
// caller reads the file (bounded, util/files.h); parsing goes through
// parse_json (depth and integer limits). A token value found here is held as
// a SecretValue and never put into a message.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/token.h"
#include "util/result.h"

namespace tokend::spec {

// One managed astro_api_token instance.
struct TerraformToken {
  std::string address;     // module.team_a.astro_api_token.deployer["prod"]
  std::string key_source;  // the address without "module." and the type: team_a.deployer["prod"]
  std::string id;
  // What the state says about the attributes astro-tokend manages (absent
  // ones stay empty / nullopt).
  std::optional<std::string> name;
  std::optional<std::string> description;
  std::optional<std::string> type;
  std::optional<int> expiry_period_in_days;
  SecretValue value;  // the state's `token`; empty when it holds none
  bool tainted = false;
  bool deposed = false;
};

struct TerraformState {
  std::vector<TerraformToken> tokens;  // in the order of the file
  int data_sources = 0;                // instances of `data` resources (of any type)
  int other_resources = 0;             // instances of managed resources of other types
};

// Invalid, with a message naming what is wrong (not the file, which the
// caller prefixes), when `text` is not JSON, not a version 4 state, holds no
// managed astro_api_token instance, or holds an instance without an `id`.
Result<TerraformState> parse_terraform_state(std::string_view text);

}  // namespace tokend::spec
