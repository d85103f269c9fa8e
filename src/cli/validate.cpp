#include <CLI/CLI.hpp>

#include <unistd.h>

#include <iostream>
#include <memory>

#include "apply/engine.h"
#include "cli/command.h"
#include "cli/output.h"
#include "runtime/runtime.h"
#include "spec/loader.h"
#include "util/log.h"

namespace tokend::cli {

namespace {

// The workspace and deployment ids of every spec, looked up with one
// paginated request per kind; each missing id is a diagnostic at its token.
// Opens no state. Returns the exit code (0 when every id exists).
int check_remote(const GlobalOptions& global, const spec::DesiredState& desired) {
  runtime::RuntimeOptions options;
  options.human_log = true;
  options.command = "validate";
  options.open_store = false;
  auto runtime = runtime::open_runtime(desired.config, options, std::cerr);
  if (!runtime.ok()) {
    print_error(std::cerr, runtime.error(), use_color(global, STDERR_FILENO));
    return 1;
  }
  auto diagnostics = apply::check_entities((*runtime)->client(), desired);
  if (!diagnostics.ok()) {
    print_error(std::cerr, diagnostics.error(), use_color(global, STDERR_FILENO));
    return 1;
  }
  if (!diagnostics->empty()) {
    print_diagnostics(std::cerr, *diagnostics);
    return 1;
  }
  return 0;
}

}  // namespace

// `validate [--remote]`: loads the config and every token spec without
// touching the network or the state. Prints each problem to stderr as
// FILE:LINE:COL: error: MESSAGE with its source line, then "N errors."
// (exit 1); or "N tokens valid." on stdout (exit 0). With --remote, a valid
// spec set is then checked against the organization: every workspace and
// deployment id must exist (one lookup per kind, never one per token).
void add_validate_command(CLI::App& app, const GlobalOptions& global, int* exit_code) {
  auto* cmd = app.add_subcommand("validate",
                                 "Check the config and every token spec, without network calls "
                                 "unless --remote is given");
  auto remote = std::make_shared<bool>(false);
  cmd->add_flag("--remote", *remote,
                "Also check that every workspace and deployment id exists in the organization "
                "(one API lookup per kind)");
  cmd->footer("Uses the config given with -c (default " + GlobalOptions{}.config_path + ").");
  cmd->callback([&global, exit_code, remote] {
    spec::Loaded<spec::DesiredState> loaded = spec::load_desired_state(global.config_path);
    if (!loaded.ok()) {
      print_diagnostics(std::cerr, loaded.diagnostics);
      *exit_code = 1;
      return;
    }
    if (*remote) {
      // The runtime built for the lookups warns about a deprecated api_version.
      if (check_remote(global, *loaded.value) != 0) {
        *exit_code = 1;
        return;
      }
    } else {
      const spec::Config& config = loaded.value->config;
      LogFormat format = parse_log_format(config.log_format).value_or(LogFormat::Text);
      Logger logger(std::cerr, parse_log_level(config.log_level).value_or(LogLevel::Info),
                    format == LogFormat::Text ? LogFormat::Human : format);
      runtime::warn_if_deprecated_api(config, logger);
    }
    std::cout << count_of(loaded.value->tokens.size(), "token valid.", "tokens valid.") << "\n";
    *exit_code = 0;
  });
}

}  // namespace tokend::cli
