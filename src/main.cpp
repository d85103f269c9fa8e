// astro-tokend: wiring only. Parses the command line, hands control to the
// chosen command in cli/, and turns its result into the process exit code.
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <iostream>

#include "cli/command.h"

int main(int argc, char** argv) {
  tokend::cli::GlobalOptions global;
  if (const char* no_color = std::getenv("NO_COLOR"); no_color != nullptr && *no_color != '\0')
    global.no_color = true;

  CLI::App app{"astro-tokend keeps the API tokens of an Astro organization as TOML files say."};
  app.require_subcommand(1);
  app.fallthrough();
  app.add_option("-c,--config", global.config_path, "Daemon config file")->capture_default_str();
  app.add_flag("--no-color", global.no_color, "Never print ANSI colours");

  int exit_code = 0;
  tokend::cli::add_version_command(app, global, &exit_code);
  tokend::cli::add_validate_command(app, global, &exit_code);
  tokend::cli::add_plan_command(app, global, &exit_code);
  tokend::cli::add_show_command(app, global, &exit_code);
  tokend::cli::add_apply_command(app, global, &exit_code);
  tokend::cli::add_run_command(app, global, &exit_code);
  tokend::cli::add_state_command(app, global, &exit_code);
  tokend::cli::add_import_command(app, global, &exit_code);
  tokend::cli::add_adopt_command(app, global, &exit_code);
  tokend::cli::add_history_command(app, global, &exit_code);
  tokend::cli::add_version_flag(app);
  tokend::cli::list_global_options_in_help(app, global);

  if (std::string unknown = tokend::cli::unknown_command(app, argc, argv); !unknown.empty()) {
    std::cerr << unknown;
    return 1;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 1;
  }
  return exit_code;
}
