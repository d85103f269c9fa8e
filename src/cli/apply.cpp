#include <unistd.h>
#include <CLI/CLI.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>

#include "apply/engine.h"
#include "apply/history.h"
#include "cli/command.h"
#include "cli/output.h"
#include "plan/plan_file.h"
#include "plan/render_text.h"
#include "runtime/runtime.h"

namespace tokend::cli {

namespace {

struct ApplyFlags {
  std::string plan_file;
  bool auto_approve = false;
  int parallelism = 0;  // 0: the config's reconcile.parallelism
  std::vector<std::string> targets;
  std::vector<std::string> rotations;
  bool allow_mass_delete = false;
  bool refresh = true;
};

// Raised by SIGINT/SIGTERM: no new change starts; those in flight finish.
std::atomic<bool> g_stop{false};
extern "C" void request_stop(int) { g_stop.store(true); }

// Installs the stop handlers for the lifetime of the object.
class StopSignals {
 public:
  StopSignals() {
    g_stop.store(false);
    struct sigaction action {};
    action.sa_handler = request_stop;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &old_int_);
    sigaction(SIGTERM, &action, &old_term_);
  }
  ~StopSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

std::string seconds_text(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1fs", seconds);
  return text;
}

std::string summary(const plan::Counts& counts) {
  std::string imported = counts.import > 0 ? std::to_string(counts.import) + " imported, " : "";
  return "Resources: " + imported + std::to_string(counts.add) + " added, " +
         std::to_string(counts.change) + " changed, " + std::to_string(counts.destroy) +
         " destroyed, " + std::to_string(counts.rotate) + " rotated.";
}

// Terraform's progress lines, one per start and one per end of a change,
// each prefixed "[i/N] " where i numbers the change in the order it started:
// a change's completion (or failure) carries the number of its start, so a
// reader can pair them however the parallel changes interleave. Thread-safe.
class ProgressPrinter final : public apply::ApplyObserver {
 public:
  ProgressPrinter(size_t total, bool out_color, bool err_color)
      : total_(total), out_color_(out_color), err_color_(err_color) {}

  void started(const plan::Change& change) override {
    std::lock_guard<std::mutex> lock(mutex_);
    const size_t number = ++started_;
    numbers_[change.key] = number;
    std::string id = change.before ? " [id=" + change.before->id + "]" : "";
    std::string line;
    switch (change.action) {
      case plan::Action::Create:
        line = "Creating...";
        break;
      case plan::Action::Import:
        line = "Importing..." + (change.after && change.after->import_id
                                     ? " [id=" + *change.after->import_id + "]"
                                     : std::string());
        break;
      case plan::Action::Update:
        line = "Modifying..." + id;
        break;
      case plan::Action::Replace:
        line = "Replacing..." + id;
        break;
      case plan::Action::Delete:
        line = "Destroying..." + id;
        break;
      case plan::Action::Rotate:
        line = "Rotating..." + id;
        break;
      case plan::Action::Forget:
        line = "Removing from state..." + id;
        break;
    }
    std::cout << prefix(number) << bold(change.address() + ":") << " " << line << "\n"
              << std::flush;
  }

  void finished(const plan::Change& change, const apply::ActionResult& result) override {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = numbers_.find(change.key);
    // A change that never started (refused, stopped) gets the next number.
    const size_t number = found != numbers_.end() ? found->second : ++started_;
    if (!result.ok) {
      print_error(std::cerr, prefix(number) + change.address() + ": " + result.error.describe(),
                  err_color_);
      std::cerr << std::flush;
      return;
    }
    const std::string after = " after " + seconds_text(result.seconds);
    const std::string id = result.token_id.empty() ? "" : " [id=" + result.token_id + "]";
    std::string line;
    switch (change.action) {
      case plan::Action::Create:
        line = "Creation complete" + after + id;
        break;
      case plan::Action::Import:
        line = "Import complete" + after + id;
        break;
      case plan::Action::Update:
        line = "Modifications complete" + after + id;
        break;
      case plan::Action::Replace:
        line = "Replacement complete" + after + id;
        break;
      case plan::Action::Delete:
        line = "Destruction complete" + after;
        break;
      case plan::Action::Rotate:
        line = "Rotation complete" + after + id;
        break;
      case plan::Action::Forget:
        line = "Removal from state complete (the token no longer existed)";
        break;
    }
    std::cout << prefix(number) << bold(change.address() + ":") << " " << line << "\n"
              << std::flush;
    if (result.hook && result.hook->ok)
      std::cout << prefix(number) << bold(change.address() + ":")
                << " Delivery hook complete after " << seconds_text(result.hook->seconds) << "\n"
                << std::flush;
  }

 private:
  std::string prefix(size_t i) const {
    return "[" + std::to_string(i) + "/" + std::to_string(total_) + "] ";
  }
  std::string bold(const std::string& text) const {
    return out_color_ ? "\033[1m" + text + "\033[0m" : text;
  }

  std::mutex mutex_;
  const size_t total_;
  const bool out_color_, err_color_;
  size_t started_ = 0;
  std::map<std::string, size_t> numbers_;  // by key: the number its start line carried
};

// A saved plan carries no delivery settings: each change takes its spec's
// sink mode and group and delivery hook from the specs as loaded (the plan's
// spec hash matched them).
void use_delivery_settings(plan::Plan& plan, const spec::DesiredState& desired) {
  std::map<std::string, const spec::TokenSpec*> specs;
  for (const spec::TokenSpec& token : desired.tokens) specs.emplace(token.key, &token);
  for (plan::Change& change : plan.changes) {
    if (!change.after) continue;
    auto spec = specs.find(change.key);
    if (spec == specs.end()) continue;
    change.after->sink_mode = spec->second->sink_mode;
    change.after->sink_group = spec->second->sink_group;
    change.after->on_delivery = spec->second->on_delivery;
  }
}

// One error per token whose sink could not be read (the plan left it out).
void print_held_back(std::ostream& err, const std::vector<apply::HeldBack>& held_back, bool color) {
  for (const apply::HeldBack& held : held_back) print_error(err, held_back_text(held), color);
}

// The delivery hooks of `report` that ran again (pending ones; hooks after a
// change are shown by the progress lines) and every failed one.
void print_hooks(std::ostream& out, std::ostream& err, const apply::ApplyReport& report,
                 bool color) {
  for (const apply::HookReport& hook : report.hooks) {
    if (hook.ok) {
      if (hook.action == apply::DeliveryAction::Deliver)
        out << hook.address() << ": Delivery hook complete after " << seconds_text(hook.seconds)
            << "\n";
      continue;
    }
    print_error(err,
                hook.address() + ": the delivery hook (after " +
                    std::string(to_string(hook.action)) + ") " + hook.status +
                    "; it runs again on the next apply or daemon cycle",
                color);
  }
}

// "1 delivery hook failed, 1 token held back (sink unreadable)", or "".
std::string problems_text(const apply::ApplyReport& report, const apply::PreparedPlan& prepared) {
  std::string text;
  const auto add = [&text](std::string part) { text += (text.empty() ? "" : ", ") + part; };
  if (report.hooks_failed > 0)
    add(count_of(static_cast<size_t>(report.hooks_failed), "delivery hook", "delivery hooks") +
        " failed");
  if (!prepared.held_back.empty())
    add(count_of(prepared.held_back.size(), "token", "tokens") + " held back (" +
        apply::held_back_reason(prepared.held_back) + ")");
  return text;
}

// Terraform's approval prompt; true only for the answer "yes". The answer is
// read from stdin whether or not it is a terminal; end of input is no answer.
bool approved(bool color) {
  std::cout << "\n"
            << (color ? "\033[1mDo you want to perform these actions?\033[0m"
                      : "Do you want to perform these actions?")
            << "\n  astro-tokend will perform the actions described above.\n"
               "  Only 'yes' will be accepted to approve.\n\n"
               "  "
            << (color ? "\033[1mEnter a value:\033[0m " : "Enter a value: ") << std::flush;
  std::string answer;
  if (!std::getline(std::cin, answer)) answer.clear();
  std::cout << "\n";
  return answer == "yes";
}

int run_apply(const GlobalOptions& global, const ApplyFlags& flags) {
  const bool out_color = use_color(global, STDOUT_FILENO);
  const bool err_color = use_color(global, STDERR_FILENO);
  const bool from_file = !flags.plan_file.empty();
  if (from_file && (!flags.targets.empty() || !flags.rotations.empty() || !flags.refresh)) {
    print_error(std::cerr,
                "--target, --rotate and --refresh cannot be used with a saved plan: the plan file "
                "already decides",
                err_color);
    return 1;
  }

  std::optional<spec::DesiredState> desired = load_desired_or_report(global, std::cerr);
  if (!desired) return 1;

  // Read before the writer lock is taken: a bad or endless file never holds it.
  std::optional<plan::Plan> saved;
  if (from_file) {
    auto loaded = plan::load_plan_file(flags.plan_file);
    if (!loaded.ok()) {
      print_error(std::cerr, loaded.error(), err_color);
      return 1;
    }
    saved = std::move(loaded.value());
  }

  runtime::RuntimeOptions runtime_options;
  runtime_options.human_log = true;
  runtime_options.command = "apply";
  runtime_options.take_lock = true;
  runtime_options.stop = &g_stop;
  auto opened = runtime::open_runtime(desired->config, runtime_options, std::cerr);
  if (!opened.ok()) {
    print_error(std::cerr, opened.error(), err_color);
    return 1;
  }
  runtime::Runtime& runtime = **opened;
  apply::RunRecorder history(
      runtime.store(), runtime.clock(), runtime.steady_clock(), runtime.logger(),
      [&runtime] { return runtime.requests().total(); }, "apply", "cli");
  apply::Dependencies deps = runtime.dependencies();

  apply::PreparedPlan prepared;
  if (from_file) {
    plan::Plan& loaded = *saved;
    auto snapshot = runtime.store().snapshot();
    if (!snapshot.ok()) {
      print_error(std::cerr, snapshot.error(), err_color);
      return 1;
    }
    if (Status current = plan::check_plan_current(loaded, snapshot->lineage, snapshot->serial,
                                                  desired->spec_hash);
        !current.ok()) {
      print_error(std::cerr, current.error().message + " Run astro-tokend plan again.", err_color);
      return 1;
    }
    auto intents = runtime.store().pending_intents();
    if (!intents.ok()) {
      print_error(std::cerr, intents.error(), err_color);
      return 1;
    }
    if (!intents->empty()) {
      print_error(
          std::cerr,
          "the state holds " + count_of(intents->size(), "intent", "intents") +
              " left by an interrupted apply; run astro-tokend plan again (or apply without a plan "
              "file) so that they are settled first",
          err_color);
      return 1;
    }
    if (Status creates = plan::check_plan_creates(loaded, snapshot->resources); !creates.ok()) {
      print_error(std::cerr, flags.plan_file + ": " + creates.error().message, err_color);
      return 1;
    }
    prepared.plan = std::move(loaded);
    use_delivery_settings(prepared.plan, *desired);
    prepared.deliveries =
        apply::pending_deliveries(snapshot->resources, *desired, prepared.plan, {});
  } else {
    if (!check_targets(flags.targets, *desired, runtime.store(), err_color)) return 1;
    apply::PlanRequest request;
    request.refresh = flags.refresh;
    request.targets = flags.targets;
    request.rotations = flags.rotations;
    request.check_entities = flags.refresh;
    auto planned = apply::prepare_plan(deps, *desired, request);
    if (!planned.ok()) {
      print_error(std::cerr, planned.error(), err_color);
      history.finish(state::RunResult::Failed, 0, "planning failed: " + planned.error().describe());
      return 1;
    }
    prepared = std::move(planned.value());
    if (!prepared.diagnostics.empty()) {
      print_diagnostics(std::cerr, prepared.diagnostics);
      return 1;
    }
  }

  const plan::Plan& plan = prepared.plan;
  if (!plan.errors.empty()) {
    for (const std::string& error : plan.errors) print_error(std::cerr, error, err_color);
    return 1;
  }
  print_held_back(std::cerr, prepared.held_back, err_color);
  if (!from_file) {
    std::cout << plan::render_text(plan, plan::RenderOptions::for_terminal(out_color));
    if (!flags.targets.empty())
      std::cerr << "\nWarning: Resource targeting is in effect: the plan covers only "
                << count_of(flags.targets.size(), "address", "addresses")
                << " given with --target and may be incomplete.\n";
  } else if (plan.empty()) {
    std::cout << "No changes. Your tokens match the configuration.\n";
  }

  apply::ApplyOptions options;
  options.parallelism = flags.parallelism > 0 ? flags.parallelism : desired->config.parallelism;
  options.max_deletes_per_run = desired->config.max_deletes_per_run;
  options.allow_mass_delete = flags.allow_mass_delete;
  options.stop = &g_stop;
  options.hook_timeout = desired->config.hook_timeout;
  options.settle_window = apply::settle_window_for(desired->config.timeout);
  options.settle_wait = options.settle_window;

  if (plan.empty()) {
    // Nothing to ask about; still settle what an interrupted run left, and
    // hand over the values whose delivery hooks failed before.
    history.begin(plan);
    apply::ApplyReport settled;
    if (!prepared.recovery.empty() || !prepared.dropped_intents.empty() ||
        !prepared.deliveries.empty()) {
      for (const apply::PendingDelivery& pending : prepared.deliveries)
        std::cout << pending.address() << ": Running the delivery hook again (it did not succeed "
                  << "before)...\n";
      options.run_id = history.id();
      StopSignals signals;
      settled = apply::apply_plan(deps, prepared, options);
      if (settled.refused) {
        print_error(std::cerr, settled.refusal, err_color);
        history.finish(state::RunResult::Refused, 0, settled.refusal);
        return 1;
      }
      print_hooks(std::cout, std::cerr, settled, err_color);
    }
    const std::string problems = problems_text(settled, prepared);
    history.finish(problems.empty() ? state::RunResult::NoOp : state::RunResult::Failed, 0,
                   problems);
    return problems.empty() ? 0 : 1;
  }

  if (std::string refusal = apply::apply_refusal(deps, prepared, options); !refusal.empty()) {
    std::cerr << "\n";
    print_error(std::cerr, refusal, err_color);
    history.begin(plan);
    history.finish(state::RunResult::Refused, 0, refusal);
    return 1;
  }

  if (!from_file && !flags.auto_approve) {
    if (!approved(out_color)) {
      std::cout << "Apply cancelled.\n";
      return 1;
    }
  }
  std::cout << "\n";

  history.begin(plan);
  options.run_id = history.id();
  ProgressPrinter progress(plan.changes.size(), out_color, err_color);
  StopSignals signals;
  apply::ApplyReport report = apply::apply_plan(deps, prepared, options, &progress);

  if (report.refused) {
    print_error(std::cerr, report.refusal, err_color);
    history.finish(state::RunResult::Refused, 0, report.refusal);
    return 1;
  }
  const std::string resources = summary(report.applied);
  print_hooks(std::cout, std::cerr, report, err_color);
  std::cout << "\n";
  if (report.failed == 0 && !report.stopped) {
    std::cout << (out_color ? "\033[1;32mApply complete!\033[0m " : "Apply complete! ") << resources
              << "\n";
    const std::string problems = problems_text(report, prepared);
    if (!problems.empty()) {
      std::cerr << "\n";
      print_error(std::cerr, "Not every token reached its consumer: " + problems + ".", err_color);
    }
    history.finish(problems.empty() ? state::RunResult::Ok : state::RunResult::Failed, 0, problems);
    return problems.empty() ? 0 : 1;
  }
  std::string message;
  if (report.stopped) {
    const size_t not_started = plan.changes.size() - report.results.size();
    message = "Apply interrupted: " + count_of(not_started, "change was", "changes were") +
              " not started.";
  } else {
    message = "Apply failed: " + count_of(static_cast<size_t>(report.failed), "change", "changes") +
              " of " + std::to_string(plan.changes.size()) + " did not complete.";
  }
  std::cout << message << " " << resources << "\n";
  history.finish(state::RunResult::Failed, report.failed, message);
  return 1;
}

}  // namespace

// `apply [PLANFILE]`: without a plan file, plans (like `plan`), shows the plan
// and asks for approval on stdin, terminal or not (only the answer "yes"
// proceeds; anything else or end of input prints "Apply cancelled." and
// exits 1); with one, applies exactly that plan once it is
// known to be current. Takes the writer lock; prints Terraform's progress
// lines and a final summary; records the run in history. Exit 0 when every
// change completed (or there was nothing to do), 1 otherwise.
void add_apply_command(CLI::App& app, const GlobalOptions& global, int* exit_code) {
  auto flags = std::make_shared<ApplyFlags>();
  auto* cmd =
      app.add_subcommand("apply", "Change the organization's tokens to match the token specs");
  cmd->add_option("PLANFILE", flags->plan_file,
                  "A plan saved with `plan --out FILE`: apply exactly it, without asking")
      ->type_name("PLANFILE");
  cmd->add_flag("--auto-approve", flags->auto_approve, "Do not ask for approval before applying");
  cmd->add_option("--parallelism", flags->parallelism,
                  "How many changes run at once (default: reconcile.parallelism of the config)")
      ->check(CLI::Range(1, 64))
      ->type_name("N");
  cmd->add_option("--target", flags->targets,
                  "Apply only this address (astro_api_token.<key>); repeat for more")
      ->allow_extra_args(false)
      ->type_name("ADDR");
  cmd->add_option("--rotate", flags->rotations,
                  "Rotate this address's token whatever its age (Terraform's -replace); repeat "
                  "for more")
      ->allow_extra_args(false)
      ->type_name("ADDR");
  cmd->add_flag("--allow-mass-delete", flags->allow_mass_delete,
                "Allow destroying more than max_deletes_per_run tokens, or every managed token");
  cmd->add_flag("--refresh", flags->refresh,
                "Default true. --refresh=false trusts the state instead of listing the "
                "organization's tokens");
  cmd->footer("Uses the config given with -c (default " + GlobalOptions{}.config_path + ").");
  cmd->callback([&global, flags, exit_code] { *exit_code = run_apply(global, *flags); });
}

}  // namespace tokend::cli
