#include <CLI/CLI.hpp>

#include <unistd.h>

#include <iostream>
#include <memory>

#include "apply/recovery.h"
#include "cli/command.h"
#include "cli/output.h"
#include "runtime/runtime.h"

namespace tokend::cli {

namespace {

struct ImportFlags {
  std::string address;
  std::string token_id;
};

const spec::TokenSpec* find_spec(const spec::DesiredState& desired, const std::string& key) {
  for (const auto& token : desired.tokens)
    if (token.key == key) return &token;
  return nullptr;
}

int run_import(const GlobalOptions& global, const ImportFlags& flags) {
  const bool color = use_color(global, STDERR_FILENO);
  std::optional<spec::DesiredState> desired = load_desired_or_report(global, std::cerr);
  if (!desired) return 1;

  std::optional<std::string> key = key_for_address(flags.address);
  const spec::TokenSpec* spec = key ? find_spec(*desired, *key) : nullptr;
  if (spec == nullptr) {
    print_error(std::cerr,
                "resource address \"" + flags.address + "\" does not exist in the configuration.",
                color);
    std::cerr << "\nBefore importing this token, add its [api_token.<key>] table to a spec file.\n";
    return 1;
  }
  if (flags.token_id.empty()) {
    print_error(std::cerr, "the token id must not be empty", color);
    return 1;
  }

  runtime::RuntimeOptions options;
  options.human_log = true;
  options.command = "import";
  options.take_lock = true;
  auto runtime = runtime::open_runtime(desired->config, options, std::cerr);
  if (!runtime.ok()) {
    print_error(std::cerr, runtime.error(), color);
    return 1;
  }
  runtime::Runtime& rt = **runtime;
  auto rows = rt.store().resources();
  if (!rows.ok()) {
    print_error(std::cerr, rows.error(), color);
    return 1;
  }
  for (const auto& row : *rows) {
    if (row.key == spec->key) {
      print_error(std::cerr, "Resource already managed by astro-tokend", color);
      std::cerr << "\nastro-tokend is already managing a remote token for " << flags.address
                << " (id " << row.id
                << "). To import to this address you must first remove the existing token from "
                   "the state with \"astro-tokend state rm "
                << flags.address << "\".\n";
      return 1;
    }
    if (row.id == flags.token_id) {
      print_error(std::cerr,
                  "token \"" + flags.token_id + "\" is already managed as " + row.address() +
                      "; a token can be managed by one address only",
                  color);
      return 1;
    }
  }

  std::cout << flags.address << ": Importing from ID \"" << flags.token_id << "\"...\n";
  auto token = rt.client().get_token(flags.token_id);
  if (!token.ok()) {
    if (token.error().kind == ErrorKind::NotFound) {
      print_error(std::cerr, "Cannot import non-existent remote object", color);
      std::cerr << "\nWhile attempting to import an existing token to \"" << flags.address
                << "\", no token with id \"" << flags.token_id
                << "\" was found in the organization. Only existing tokens can be imported; check "
                   "the id, or let \"astro-tokend apply\" create a new token for this address.\n";
    } else {
      print_error(std::cerr, token.error(), color);
    }
    return 1;
  }
  std::cout << flags.address << ": Import prepared!\n"
            << "  Prepared astro_api_token for import\n";

  state::ResourceRecord row = apply::record_from_token(spec->key, *token, spec->sink, "");
  if (Status recorded = rt.store().record_outcome({spec->key, row, std::nullopt}); !recorded.ok()) {
    print_error(std::cerr, recorded.error(), color);
    return 1;
  }
  std::cout
      << flags.address << ": Refreshing state... [id=" << row.id << "]\n\n"
      << "Import successful!\n\n"
      << "The token that was imported is shown above. It is now in your astro-tokend state and "
         "will henceforth be managed by astro-tokend.\n";
  if (row.attrs.type != spec->attrs.type ||
      row.attrs.expiry_period_in_days != spec->attrs.expiry_period_in_days ||
      row.attrs.kind != spec->attrs.kind)
    std::cerr << "\nWarning: the token's type, expiry_period_in_days or kind differs from the "
                 "configuration, which the API cannot update: the next plan replaces it.\n";
  std::cout << "\nIts secret value is not known to astro-tokend: nothing was written to "
            << spec->sink << ".\n";
  return 0;
}

}  // namespace

// `import ADDR TOKEN_ID`: adopts an existing token under the address of a spec
// that has no state row yet. Takes the writer lock; reads the token with one
// GetApiToken (no API write); records it with the spec's sink path and no
// fingerprint (its value was never delivered, so it is not rotated for that).
// Errors go to stderr, exit 1, and change nothing.
void add_import_command(CLI::App& app, const GlobalOptions& global, int* exit_code) {
  auto flags = std::make_shared<ImportFlags>();
  auto* cmd = app.add_subcommand("import", "Adopt an existing token under a configured address");
  cmd->add_option("ADDR", flags->address, "astro_api_token.<key> of a spec not yet managed")
      ->required();
  cmd->add_option("TOKEN_ID", flags->token_id, "The id of the existing API token")->required();
  cmd->footer("Uses the config given with -c (default " + GlobalOptions{}.config_path + ").");
  cmd->callback([&global, flags, exit_code] { *exit_code = run_import(global, *flags); });
}

}  // namespace tokend::cli
