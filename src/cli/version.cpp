#include <CLI/CLI.hpp>

#include <iostream>

#include "cli/command.h"
#include "version.h"

namespace tokend::cli {

void add_version_command(CLI::App& app, const GlobalOptions&, int* exit_code) {
  auto* cmd = app.add_subcommand("version", "Print the version of astro-tokend");
  cmd->callback([exit_code] {
    std::cout << "astro-tokend " << kVersion << "\n";
    *exit_code = 0;
  });
}

}  // namespace tokend::cli
