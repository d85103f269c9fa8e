#include <CLI/CLI.hpp>

#include <iostream>

#include "cli/command.h"

namespace tokend::cli {

void add_apply_command(CLI::App& app, const GlobalOptions&, int* exit_code) {
  auto* cmd = app.add_subcommand("apply", "(not available in this build)");
  cmd->callback([exit_code] {
    std::cerr << "Error: the apply command is not available in this build\n";
    *exit_code = 1;
  });
}

}  // namespace tokend::cli
