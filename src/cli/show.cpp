#include <CLI/CLI.hpp>

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "cli/command.h"
#include "cli/output.h"
#include "plan/plan_file.h"
#include "plan/render_json.h"
#include "plan/render_text.h"

namespace tokend::cli {

namespace {

struct ShowFlags {
  std::string file;
  bool json = false;
};

int run_show(const GlobalOptions& global, const ShowFlags& flags) {
  const bool err_color = use_color(global, STDERR_FILENO);
  auto plan = plan::load_plan_file(flags.file);
  if (!plan.ok()) {
    print_error(std::cerr, plan.error(), err_color);
    return 1;
  }
  if (flags.json)
    std::cout << plan::render_json(*plan);
  else
    std::cout << plan::render_text(
        *plan, plan::RenderOptions::for_terminal(use_color(global, STDOUT_FILENO)));
  return 0;
}

}  // namespace

// `show FILE [--json]`: prints a plan saved by `plan --out FILE`, as text or in
// Terraform's JSON plan shape. Reads only FILE: no config, state or API.
// Exit 1 when the file cannot be read or is not a plan file.
void add_show_command(CLI::App& app, const GlobalOptions& global, int* exit_code) {
  auto flags = std::make_shared<ShowFlags>();
  auto* cmd = app.add_subcommand("show", "Print a plan saved with `plan --out FILE`");
  cmd->add_option("FILE", flags->file, "The saved plan file")->required();
  cmd->add_flag("--json", flags->json, "Print the plan in Terraform's JSON plan shape");
  cmd->callback([&global, flags, exit_code] { *exit_code = run_show(global, *flags); });
}

}  // namespace tokend::cli
