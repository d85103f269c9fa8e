#include "cli/output.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <set>

#include "spec/loader.h"

namespace tokend::cli {

bool use_color(const GlobalOptions& global, int fd) {
  if (global.no_color) return false;
  if (const char* no_color = std::getenv("NO_COLOR"); no_color != nullptr && *no_color != '\0')
    return false;
  if (const char* term = std::getenv("TERM"); term != nullptr && std::strcmp(term, "dumb") == 0)
    return false;
  return isatty(fd) == 1;
}

std::string count_of(size_t n, const std::string& singular, const std::string& plural) {
  return std::to_string(n) + " " + (n == 1 ? singular : plural);
}

void print_diagnostics(std::ostream& err, const std::vector<spec::Diagnostic>& diagnostics) {
  for (const spec::Diagnostic& diagnostic : diagnostics) err << diagnostic.format();
  err << count_of(diagnostics.size(), "error.", "errors.") << "\n";
}

void print_error(std::ostream& err, const std::string& message, bool color) {
  if (color)
    err << "\033[1;31mError:\033[0m \033[1m" << message << "\033[0m\n";
  else
    err << "Error: " << message << "\n";
}

void print_error(std::ostream& err, const Error& error, bool color) {
  print_error(err, error.describe(), color);
}

std::optional<spec::DesiredState> load_desired_or_report(const GlobalOptions& global,
                                                         std::ostream& err) {
  spec::Loaded<spec::DesiredState> loaded = spec::load_desired_state(global.config_path);
  if (!loaded.ok()) {
    print_diagnostics(err, loaded.diagnostics);
    return std::nullopt;
  }
  return std::move(loaded.value);
}

std::vector<std::string> target_problems(const std::vector<std::string>& targets,
                                         const spec::DesiredState& desired,
                                         state::StateStore& store) {
  std::vector<std::string> problems;
  if (targets.empty()) return problems;
  std::set<std::string> keys;
  for (const auto& token : desired.tokens) keys.insert(token.key);
  auto rows = store.resources();
  if (!rows.ok()) return {rows.error().describe()};
  for (const auto& row : *rows) keys.insert(row.key);
  for (const std::string& target : targets) {
    std::optional<std::string> key = key_for_address(target);
    if (!key)
      problems.push_back("invalid --target \"" + target +
                         "\": expected an address such as astro_api_token.<key>");
    else if (!keys.count(*key))
      problems.push_back("--target " + target +
                         " names no token in the configuration or the state");
  }
  return problems;
}

bool check_targets(const std::vector<std::string>& targets, const spec::DesiredState& desired,
                   state::StateStore& store, bool color) {
  const std::vector<std::string> problems = target_problems(targets, desired, store);
  for (const std::string& problem : problems) print_error(std::cerr, problem, color);
  return problems.empty();
}

std::string held_back_text(const apply::HeldBack& held) {
  if (held.unwritable)
    return held.address() + ": " + held.error.describe() +
           "; the token is held back: no value is created or rotated while its sink cannot be "
           "written";
  return held.address() + ": " + held.error.describe() +
         "; the token is held back: it is not rotated while its sink cannot be read";
}

}  // namespace tokend::cli
