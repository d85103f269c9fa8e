#include <CLI/CLI.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>

#include "cli/command.h"
#include "cli/output.h"
#include "runtime/runtime.h"
#include "spec/loader.h"
#include "util/json_text.h"

namespace tokend::cli {

namespace {

struct HistoryFlags {
  int limit = 20;
  bool json = false;
};

std::string seconds_text(double seconds) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.2fs", seconds);
  return buffer;
}

std::string number_text(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.3f", value);
  return buffer;
}

// One line per run under a header, columns padded to their widest cell.
std::string render_table(const std::vector<state::RunRecord>& runs) {
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"TIME", "TRIGGER", "COMMAND", "RESULT", "ADD", "CHANGE", "DESTROY", "ROTATE",
                  "FAILED", "API CALLS", "DURATION"});
  for (const auto& run : runs) {
    rows.push_back({format_rfc3339(run.started_at), run.trigger, run.command,
                    std::string(state::to_string(run.result)), std::to_string(run.to_add),
                    std::to_string(run.to_change), std::to_string(run.to_destroy),
                    std::to_string(run.to_rotate), std::to_string(run.failed),
                    std::to_string(run.api_calls), seconds_text(run.duration_seconds)});
  }
  std::vector<size_t> widths(rows.front().size(), 0);
  for (const auto& row : rows)
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

std::string render_json(const std::vector<state::RunRecord>& runs) {
  std::string out = "{\n  \"runs\": [";
  for (size_t r = 0; r < runs.size(); ++r) {
    const state::RunRecord& run = runs[r];
    out += r == 0 ? "\n" : ",\n";
    out += "    {\n";
    out += "      \"id\": " + std::to_string(run.id) + ",\n";
    out += "      \"started_at\": " + json_quote(format_rfc3339(run.started_at)) + ",\n";
    out += "      \"finished_at\": " +
           (run.finished_at ? json_quote(format_rfc3339(*run.finished_at)) : std::string("null")) +
           ",\n";
    out += "      \"trigger\": " + json_quote(run.trigger) + ",\n";
    out += "      \"command\": " + json_quote(run.command) + ",\n";
    out += "      \"result\": " + json_quote(std::string(state::to_string(run.result))) + ",\n";
    out += "      \"message\": " + json_quote(run.message) + ",\n";
    out += "      \"to_add\": " + std::to_string(run.to_add) + ",\n";
    out += "      \"to_change\": " + std::to_string(run.to_change) + ",\n";
    out += "      \"to_destroy\": " + std::to_string(run.to_destroy) + ",\n";
    out += "      \"to_rotate\": " + std::to_string(run.to_rotate) + ",\n";
    out += "      \"failed\": " + std::to_string(run.failed) + ",\n";
    out += "      \"api_calls\": " + std::to_string(run.api_calls) + ",\n";
    out += "      \"duration_seconds\": " + number_text(run.duration_seconds) + ",\n";
    out += "      \"actions\": [";
    for (size_t a = 0; a < run.actions.size(); ++a) {
      const state::ActionRecord& action = run.actions[a];
      out += a == 0 ? "\n" : ",\n";
      out += "        {\"address\": " + json_quote(action.address) +
             ", \"action\": " + json_quote(action.action) +
             ", \"ok\": " + (action.ok ? "true" : "false") +
             ", \"message\": " + json_quote(action.message) +
             ", \"duration_seconds\": " + number_text(action.duration_seconds) + "}";
    }
    out += run.actions.empty() ? "]\n" : "\n      ]\n";
    out += "    }";
  }
  out += runs.empty() ? "]\n}\n" : "\n  ]\n}\n";
  return out;
}

int run_history(const GlobalOptions& global, const HistoryFlags& flags) {
  const bool color = use_color(global, STDERR_FILENO);
  if (flags.limit < 1) {
    print_error(std::cerr, "--limit must be at least 1, got " + std::to_string(flags.limit), color);
    return 1;
  }
  spec::Loaded<spec::Config> config = spec::load_config(global.config_path);
  if (!config.ok()) {
    print_diagnostics(std::cerr, config.diagnostics);
    return 1;
  }
  std::vector<state::RunRecord> runs;
  if (runtime::state_exists(*config.value)) {
    runtime::RuntimeOptions options;
    options.command = "history";
    options.need_client = false;
    options.create_state_dir = false;
    std::ostringstream no_log;
    auto runtime = runtime::open_runtime(*config.value, options, no_log);
    if (!runtime.ok()) {
      print_error(std::cerr, runtime.error(), color);
      return 1;
    }
    auto recorded = (*runtime)->store().runs(flags.limit);
    if (!recorded.ok()) {
      print_error(std::cerr, recorded.error(), color);
      return 1;
    }
    runs = std::move(recorded.value());
  }
  if (flags.json)
    std::cout << render_json(runs);
  else if (runs.empty())
    std::cout << "No runs recorded yet.\n";
  else
    std::cout << render_table(runs);
  return 0;
}

}  // namespace

// `history [--limit N] [--json]`: the recorded runs, newest first: time,
// trigger, command, result, planned counts, failed actions, API calls and
// duration; --json adds every run's message and actions. Reads the state
// (never creates it); exit 1 on a bad config or an unreadable state.
void add_history_command(CLI::App& app, const GlobalOptions& global, int* exit_code) {
  auto flags = std::make_shared<HistoryFlags>();
  auto* cmd = app.add_subcommand("history", "Show the recorded runs, newest first");
  cmd->add_option("--limit", flags->limit, "Show at most N runs")->capture_default_str();
  cmd->add_flag("--json", flags->json, "Print the runs and each run's actions as JSON");
  cmd->footer("Uses the config given with -c (default " + GlobalOptions{}.config_path + ").");
  cmd->callback([&global, flags, exit_code] { *exit_code = run_history(global, *flags); });
}

}  // namespace tokend::cli
