// fuzz/ — libFuzzer targets for the readers of outside input: the spec and
// config loader (TOML), the Astro API JSON decoders, the plan-file reader and
// the simulator's body decoders. Built with TOKEND_BUILD_FUZZERS=ON (clang,
// ASan+UBSan+fuzzer) and run by scripts/fuzz.sh.
//
// The bodies live here, outside the entry points, so that the normal test
// suite replays every input in fuzz/regressions/ through exactly the same
// code (tests/fuzz/regressions_test.cpp). Each takes any bytes and must
// return without crashing, hanging or leaking; none throws.
#pragma once

#include <string_view>

#include "astro/json.h"

namespace tokend::fuzz {

// The bytes as a token spec file and as a daemon config, through
// spec::load_specs and spec::load_config (via a private temporary directory).
void toml_loaders(std::string_view bytes);
// Every decoder of astro/json.h, v1 and v1beta1; what decodes as v1beta1 is
// encoded and decoded again; a token page the one-pass scanner reads is the
// page the parse-tree decoder reads.
void api_json(std::string_view bytes);
// Both pages hold the same counts and tokens, field by field (the secret
// value too).
bool same_token_page(const astro::json::TokenPage& a, const astro::json::TokenPage& b);
// plan::load_plan; a plan that loads is saved and loaded again.
void plan_file(std::string_view bytes);
// Every body decoder of the simulator (sim/bodies.h, sim/controls.h).
void sim_bodies(std::string_view bytes);

}  // namespace tokend::fuzz
