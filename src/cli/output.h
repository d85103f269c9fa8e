#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "apply/engine.h"
#include "cli/command.h"
#include "spec/model.h"
#include "state/store.h"
#include "util/result.h"

namespace tokend::cli {

// True when `fd` is a terminal, colour was not turned off (--no-color,
// NO_COLOR) and TERM is not "dumb".
bool use_color(const GlobalOptions& global, int fd);

// Each diagnostic as FILE:LINE:COL: error: MESSAGE plus its source line,
// then "N errors." / "1 error.".
void print_diagnostics(std::ostream& err, const std::vector<spec::Diagnostic>& diagnostics);

// "Error: <message (HTTP s, requestId r)>", in red and bold when `color`.
void print_error(std::ostream& err, const Error& error, bool color);
void print_error(std::ostream& err, const std::string& message, bool color);

// Loads the config and the specs named by global.config_path. On failure
// prints every diagnostic to `err` and returns nullopt (the caller exits 1).
std::optional<spec::DesiredState> load_desired_or_report(const GlobalOptions& global,
                                                         std::ostream& err);

// Every --target must be an address that a spec or a state row names: one
// message per bad target (or the store's error), empty when all are good.
std::vector<std::string> target_problems(const std::vector<std::string>& targets,
                                         const spec::DesiredState& desired,
                                         state::StateStore& store);

// target_problems, each printed as an error; false when there is any.
bool check_targets(const std::vector<std::string>& targets, const spec::DesiredState& desired,
                   state::StateStore& store, bool color);

// The error for a token whose sink could not be read: "astro_api_token.k:
// cannot read sink …: Permission denied; the token is held back: it is not
// rotated while its sink cannot be read".
std::string held_back_text(const apply::HeldBack& held);

// "1 token" / "3 tokens".
std::string count_of(size_t n, const std::string& singular, const std::string& plural);

}  // namespace tokend::cli
