#include <CLI/CLI.hpp>

#include <iostream>

#include "cli/command.h"
#include "cli/output.h"
#include "spec/loader.h"

namespace tokend::cli {

// `validate`: loads the config and every token spec without touching the
// network or the state. Prints each problem to stderr as
// FILE:LINE:COL: error: MESSAGE with its source line, then "N errors."
// (exit 1); or "N tokens valid." on stdout (exit 0).
void add_validate_command(CLI::App& app, const GlobalOptions& global, int* exit_code) {
  auto* cmd = app.add_subcommand("validate",
                                 "Check the config and every token spec, without network calls");
  cmd->footer("Uses the config given with -c (default " + GlobalOptions{}.config_path + ").");
  cmd->callback([&global, exit_code] {
    spec::Loaded<spec::DesiredState> loaded = spec::load_desired_state(global.config_path);
    if (!loaded.ok()) {
      print_diagnostics(std::cerr, loaded.diagnostics);
      *exit_code = 1;
      return;
    }
    std::cout << count_of(loaded.value->tokens.size(), "token valid.", "tokens valid.") << "\n";
    *exit_code = 0;
  });
}

}  // namespace tokend::cli
