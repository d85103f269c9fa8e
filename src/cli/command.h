// cli/ — one file per command: parse its flags, call the core, render the
// result for a human or as JSON. Commands return an exit code; they never call
// exit() and never print secrets.
//
// May not: hold logic the daemon also needs (that belongs in the core modules)
// or talk SQL/HTTP directly.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace tokend::cli {

// Options every command shares, filled in by main before a command runs.
struct GlobalOptions {
  std::string config_path = "/etc/astro-tokend/astro-tokend.toml";
  bool no_color = false;  // --no-color, or NO_COLOR set in the environment
};

// Each add_*_command registers one subcommand on `app`. When the subcommand
// is chosen, its callback runs and stores the process exit code in `*exit_code`
// (0 success, 1 error, 2 "changes present" for plan --detailed-exitcode).
void add_version_command(CLI::App& app, const GlobalOptions& global, int* exit_code);
void add_validate_command(CLI::App& app, const GlobalOptions& global, int* exit_code);
void add_plan_command(CLI::App& app, const GlobalOptions& global, int* exit_code);
void add_show_command(CLI::App& app, const GlobalOptions& global, int* exit_code);
void add_apply_command(CLI::App& app, const GlobalOptions& global, int* exit_code);
void add_run_command(CLI::App& app, const GlobalOptions& global, int* exit_code);
void add_state_command(CLI::App& app, const GlobalOptions& global, int* exit_code);
void add_import_command(CLI::App& app, const GlobalOptions& global, int* exit_code);
void add_adopt_command(CLI::App& app, const GlobalOptions& global, int* exit_code);
void add_history_command(CLI::App& app, const GlobalOptions& global, int* exit_code);

// `--version`: prints what `version` prints and exits 0.
void add_version_flag(CLI::App& app);

// Makes every subcommand's --help (nested ones too) list the global options
// (-c/--config, --no-color), which are accepted before or after the command.
// Call after every subcommand is added.
void list_global_options_in_help(CLI::App& app, const GlobalOptions& defaults);

// When the first word of the command line that is not a global option names
// no subcommand of `app`: the error to print, e.g.
//   Error: unknown command "plna" (did you mean "plan"?)
//   Run "astro-tokend --help" to see the commands.
// "" otherwise (also when --help or --version comes first).
std::string unknown_command(const CLI::App& app, int argc, const char* const* argv);

}  // namespace tokend::cli
