#include <CLI/CLI.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <set>

#include "apply/engine.h"
#include "cli/command.h"
#include "cli/output.h"
#include "plan/plan_file.h"
#include "plan/render_json.h"
#include "plan/render_text.h"
#include "runtime/runtime.h"
#include "spec/loader.h"
#include "util/files.h"

namespace tokend::cli {

namespace {

struct PlanFlags {
  std::string out;
  bool json = false;
  bool detailed_exitcode = false;
  std::vector<std::string> targets;
  std::vector<std::string> rotations;
  bool refresh = true;
};

// The command that applies `plan_file`, repeating -c when it is not the default.
std::string apply_command(const GlobalOptions& global, const std::string& plan_file) {
  std::string command = "astro-tokend";
  if (global.config_path != GlobalOptions{}.config_path)
    command += " -c \"" + global.config_path + "\"";
  return command + " apply \"" + plan_file + "\"";
}

std::string rule(bool unicode) {
  std::string line;
  for (int i = 0; i < 77; ++i) line += unicode ? "─" : "-";
  return line;
}

int run_plan(const GlobalOptions& global, const PlanFlags& flags) {
  const bool err_color = use_color(global, STDERR_FILENO);
  // Every failure is printed for people on stderr; with --json it is also
  // one JSON document with the diagnostics on stdout.
  auto fail = [&](const std::vector<plan::JsonDiagnostic>& diagnostics) {
    if (flags.json) std::cout << plan::render_json_failure(diagnostics);
    return 1;
  };
  auto fail_with = [&](const Error& error) {
    print_error(std::cerr, error, err_color);
    return fail({plan::json_diagnostic(error)});
  };
  auto fail_with_diagnostics = [&](const std::vector<spec::Diagnostic>& diagnostics) {
    print_diagnostics(std::cerr, diagnostics);
    std::vector<plan::JsonDiagnostic> json;
    for (const spec::Diagnostic& diagnostic : diagnostics)
      json.push_back(plan::json_diagnostic(diagnostic));
    return fail(json);
  };

  spec::Loaded<spec::DesiredState> loaded = spec::load_desired_state(global.config_path);
  if (!loaded.ok()) return fail_with_diagnostics(loaded.diagnostics);
  std::optional<spec::DesiredState>& desired = loaded.value;

  runtime::RuntimeOptions runtime_options;
  runtime_options.human_log = true;
  runtime_options.command = "plan";
  runtime_options.take_lock = false;  // plan never writes state
  auto runtime = runtime::open_runtime(desired->config, runtime_options, std::cerr);
  if (!runtime.ok()) return fail_with(runtime.error());
  runtime::Runtime& rt = **runtime;
  if (std::vector<std::string> problems = target_problems(flags.targets, *desired, rt.store());
      !problems.empty()) {
    std::vector<plan::JsonDiagnostic> json;
    for (const std::string& problem : problems) {
      print_error(std::cerr, problem, err_color);
      json.push_back(plan::json_diagnostic(problem));
    }
    return fail(json);
  }

  apply::PlanRequest request;
  request.refresh = flags.refresh;
  request.targets = flags.targets;
  request.rotations = flags.rotations;
  request.check_entities = flags.refresh;
  request.record_unchanged = flags.json || !flags.out.empty();  // JSON and saved plans carry them
  apply::Dependencies deps = rt.dependencies();
  auto prepared = apply::prepare_plan(deps, *desired, request);
  if (!prepared.ok()) return fail_with(prepared.error());
  if (!prepared->diagnostics.empty()) return fail_with_diagnostics(prepared->diagnostics);
  const plan::Plan& plan = prepared->plan;
  if (!plan.errors.empty()) {
    // The plan itself, errored, with its errors as diagnostics.
    if (flags.json) std::cout << plan::render_json(plan);
    for (const std::string& error : plan.errors) print_error(std::cerr, error, err_color);
    return 1;
  }

  const bool out_color = use_color(global, STDOUT_FILENO);
  std::vector<plan::JsonDiagnostic> held_back;
  for (const apply::HeldBack& held : prepared->held_back)
    held_back.push_back(plan::json_diagnostic(held_back_text(held)));
  if (flags.json)
    std::cout << plan::render_json(plan, held_back);
  else
    std::cout << plan::render_text(plan, plan::RenderOptions::for_terminal(out_color));
  if (!flags.json && !prepared->deliveries.empty()) {
    std::cout << "\nNote: the delivery hook of "
              << count_of(prepared->deliveries.size(), "token", "tokens")
              << " did not succeed before and runs again on apply:\n";
    for (const apply::PendingDelivery& pending : prepared->deliveries)
      std::cout << "  " << pending.address() << "\n";
  }
  for (const apply::HeldBack& held : prepared->held_back)
    print_error(std::cerr, held_back_text(held), err_color);

  if (!flags.targets.empty())
    std::cerr << "\nWarning: Resource targeting is in effect: the plan covers only "
              << count_of(flags.targets.size(), "address", "addresses")
              << " given with --target and may be incomplete.\n";

  if (!flags.out.empty()) {
    if (Status saved = write_file_atomically(flags.out, plan::save_plan(plan)); !saved.ok()) {
      print_error(std::cerr, saved.error(), err_color);
      return 1;
    }
    // Keep stdout pure JSON with --json.
    std::ostream& note = flags.json ? std::cerr : std::cout;
    const bool note_color = flags.json ? err_color : out_color;
    note << "\n"
         << rule(note_color) << "\n\nSaved the plan to: " << flags.out
         << "\n\nTo perform exactly these actions, run the following command to apply:\n    "
         << apply_command(global, flags.out) << "\n";
  } else if (!flags.json && !plan.empty()) {
    std::cout
        << "\n"
        << rule(out_color)
        << "\n\nNote: You didn't use the --out option to save this plan, so astro-tokend can't "
           "guarantee to take exactly these actions if you run \"astro-tokend apply\" now.\n";
  }

  if (!prepared->held_back.empty()) return 1;
  if (flags.detailed_exitcode && !plan.empty()) return 2;
  return 0;
}

}  // namespace

// `plan`: computes what apply would do and prints it (Terraform's text, or its
// JSON plan shape with --json). Read-only: takes no writer lock and never
// changes state or the API. Exit 0; 1 on bad input, unknown entity ids, plan
// errors, API failures or a token held back because its sink cannot be read
// (printed to stderr, after the plan of the other tokens; with --json also
// one JSON document with Terraform's diagnostics on stdout); with
// --detailed-exitcode 2 when there are changes.
void add_plan_command(CLI::App& app, const GlobalOptions& global, int* exit_code) {
  auto flags = std::make_shared<PlanFlags>();
  auto* cmd = app.add_subcommand("plan", "Show what apply would change, without changing anything");
  cmd->add_option("--out", flags->out,
                  "Save the plan to FILE (mode 0600) for `astro-tokend apply FILE`")
      ->type_name("FILE");
  cmd->add_flag("--json", flags->json, "Print the plan in Terraform's JSON plan shape");
  cmd->add_flag("--detailed-exitcode", flags->detailed_exitcode,
                "Exit 0 when there are no changes, 1 on error, 2 when there are changes");
  cmd->add_option("--target", flags->targets,
                  "Plan only this address (astro_api_token.<key>); repeat for more")
      ->allow_extra_args(false)
      ->type_name("ADDR");
  cmd->add_option("--rotate", flags->rotations,
                  "Plan a rotation of this address's token whatever its age (Terraform's "
                  "-replace); repeat for more")
      ->allow_extra_args(false)
      ->type_name("ADDR");
  cmd->add_flag("--refresh", flags->refresh,
                "Default true. --refresh=false trusts the state: no token listing and no workspace "
                "or deployment lookups, so no API call at all (except when an interrupted apply "
                "left intents to resolve, which takes one listing)");
  cmd->footer("Uses the config given with -c (default " + GlobalOptions{}.config_path + ").");
  cmd->callback([&global, flags, exit_code] { *exit_code = run_plan(global, *flags); });
}

}  // namespace tokend::cli
