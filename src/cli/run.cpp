#include <CLI/CLI.hpp>

#include <iostream>

#include "cli/command.h"
#include "cli/output.h"
#include "daemon/daemon.h"

namespace tokend::cli {

void add_run_command(CLI::App& app, const GlobalOptions& global, int* exit_code) {
  auto* cmd = app.add_subcommand("run", "Run the daemon: reconcile on a timer and on every change");
  auto once = std::make_shared<bool>(false);
  cmd->add_flag("--once", *once, "Run one reconcile cycle and exit (0 when it succeeded)");
  cmd->callback([&global, exit_code, once] {
    std::optional<spec::DesiredState> desired = load_desired_or_report(global, std::cerr);
    if (!desired) {
      *exit_code = 1;
      return;
    }
    daemon::DaemonOptions options;
    options.once = *once;
    Status status = daemon::run_daemon(std::move(*desired), options, std::cerr);
    if (!status.ok()) {
      print_error(std::cerr, status.error(), use_color(global, 2));
      *exit_code = 1;
      return;
    }
    *exit_code = 0;
  });
}

}  // namespace tokend::cli
