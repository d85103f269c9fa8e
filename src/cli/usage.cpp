#include <CLI/CLI.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "cli/command.h"
#include "util/suggest.h"
#include "version.h"

namespace tokend::cli {

namespace {

void add_global_options_footer(CLI::App& command, const std::string& text) {
  command.footer([text] { return text; });
  for (CLI::App* sub : command.get_subcommands({})) add_global_options_footer(*sub, text);
}

}  // namespace

void add_version_flag(CLI::App& app) {
  app.set_version_flag("--version", std::string("astro-tokend ") + kVersion,
                       "Print the version of astro-tokend and exit");
}

void list_global_options_in_help(CLI::App& app, const GlobalOptions& defaults) {
  const std::string text =
      "Global options (before or after the command):\n"
      "  -c,--config FILE            Daemon config file (default " +
      defaults.config_path +
      ")\n"
      "  --no-color                  Never print ANSI colours (NO_COLOR is honoured too)\n";
  for (CLI::App* sub : app.get_subcommands({})) add_global_options_footer(*sub, text);
}

std::string unknown_command(const CLI::App& app, int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view word = argv[i];
    if (word == "-h" || word == "--help" || word == "--version" || word == "--") return "";
    if (word == "-c" || word == "--config") {
      ++i;  // its value
      continue;
    }
    if (!word.empty() && word[0] == '-') continue;  // another option; CLI11 judges it
    std::vector<std::string> names;
    for (const CLI::App* sub : app.get_subcommands({})) {
      if (sub->check_name(std::string(word))) return "";
      names.push_back(sub->get_name());
    }
    const std::vector<std::string_view> candidates(names.begin(), names.end());
    return "Error: unknown command \"" + std::string(word) + "\"" + did_you_mean(word, candidates) +
           "\nRun \"astro-tokend --help\" to see the commands.\n";
  }
  return "";
}

}  // namespace tokend::cli
