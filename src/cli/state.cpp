#include <CLI/CLI.hpp>

#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>

#include "cli/command.h"
#include "cli/output.h"
#include "runtime/runtime.h"
#include "spec/loader.h"
#include "util/json_text.h"

namespace tokend::cli {

namespace {

struct StateFlags {
  std::string show_address;
  std::vector<std::string> rm_addresses;
};

// Loads the daemon config only: state commands work whatever the specs say.
std::optional<spec::Config> load_config_or_report(const GlobalOptions& global) {
  spec::Loaded<spec::Config> loaded = spec::load_config(global.config_path);
  if (!loaded.ok()) {
    print_diagnostics(std::cerr, loaded.diagnostics);
    return std::nullopt;
  }
  return std::move(loaded.value);
}

// What the state commands show: the rows and the state's own attributes.
struct StateView {
  std::vector<state::ResourceRecord> rows;
  std::string organization_id;  // "" when none is recorded yet
  std::string lineage;          // "" when there is no state
  int64_t serial = 0;
};

// The state, read without creating a state database when there is none (a
// missing file reads as no rows).
Result<StateView> read_state(const spec::Config& config) {
  if (!runtime::state_exists(config)) return StateView{};
  runtime::RuntimeOptions options;
  options.command = "state";
  options.need_client = false;
  options.create_state_dir = false;
  std::ostringstream no_log;
  auto runtime = runtime::open_runtime(config, options, no_log);
  if (!runtime.ok()) return runtime.error();
  state::StateStore& store = (*runtime)->store();
  auto snapshot = store.snapshot();
  if (!snapshot.ok()) return snapshot.error();
  auto organization = store.organization_id();
  if (!organization.ok()) return organization.error();
  return StateView{std::move(snapshot->resources), std::move(organization.value()),
                   snapshot->lineage, snapshot->serial};
}

// Terraform's `state show` layout: one attribute per line, names sorted and
// their `=` aligned, four spaces per level.
struct Line {
  std::string name;
  std::string value;  // already formatted; "" for the roles block
};

std::string render_record(const state::ResourceRecord& row, const std::string& organization_id) {
  std::vector<Line> lines;
  auto add = [&](const std::string& name, const std::string& value) {
    lines.push_back({name, value});
  };
  add("created_at", json_quote(format_rfc3339(row.created_at)));
  add("description", json_quote(row.attrs.description));
  if (row.end_at) add("end_at", json_quote(format_rfc3339(*row.end_at)));
  if (row.attrs.expiry_period_in_days)
    add("expiry_period_in_days", std::to_string(*row.attrs.expiry_period_in_days));
  add("id", json_quote(row.id));
  add("kind", json_quote(std::string(to_string(row.attrs.kind))));
  if (row.last_rotated_at) add("last_rotated_at", json_quote(format_rfc3339(*row.last_rotated_at)));
  add("name", json_quote(row.attrs.name));
  if (!organization_id.empty()) add("organization_id", json_quote(organization_id));
  add("role", json_quote(row.attrs.role));
  add("roles", "");
  add("rotate_pending", row.rotate_pending ? "true" : "false");
  add("short_token", json_quote(row.short_token));
  add("sink", json_quote(row.sink_path));
  // The fingerprint identifies the delivered value; it does not reveal it.
  if (!row.sink_sha256.empty()) add("sink_sha256", json_quote(row.sink_sha256));
  add("start_at", json_quote(format_rfc3339(row.start_at)));
  add("token", "(sensitive value)");
  add("type", json_quote(std::string(to_string(row.attrs.type))));
  add("updated_at", json_quote(format_rfc3339(row.updated_at)));
  add("value_delivered", row.sink_sha256.empty() ? "false" : "true");

  size_t width = 0;
  for (const Line& line : lines) width = std::max(width, line.name.size());
  std::string out = "# " + row.address() + ":\n";
  out += "resource \"astro_api_token\" " + json_quote(row.key) + " {\n";
  for (const Line& line : lines) {
    out += "    " + line.name + std::string(width - line.name.size(), ' ') + " = ";
    if (line.name != "roles") {
      out += line.value + "\n";
      continue;
    }
    out += "[\n";
    for (const Role& role : row.attrs.roles) {
      // Only DAG and DAG_TAG roles have a deployment_id; the names align
      // within each role.
      const bool dag = !role.deployment_id.empty();
      const std::string pad = dag ? "  " : "";
      out += "        {\n";
      if (dag) out += "            deployment_id = " + json_quote(role.deployment_id) + "\n";
      out += "            entity_id   " + pad + "= " + json_quote(role.entity_id) + "\n";
      out += "            entity_type " + pad + "= " +
             json_quote(std::string(to_string(role.entity_type))) + "\n";
      out += "            role        " + pad + "= " + json_quote(role.role) + "\n";
      out += "        },\n";
    }
    out += "    ]\n";
  }
  out += "}\n";
  return out;
}

int run_list(const GlobalOptions& global) {
  const bool err_color = use_color(global, STDERR_FILENO);
  std::optional<spec::Config> config = load_config_or_report(global);
  if (!config) return 1;
  auto view = read_state(*config);
  if (!view.ok()) {
    print_error(std::cerr, view.error(), err_color);
    return 1;
  }
  std::vector<std::string> addresses;
  for (const auto& row : view->rows) addresses.push_back(row.address());
  std::sort(addresses.begin(), addresses.end());
  for (const std::string& address : addresses) std::cout << address << "\n";
  return 0;
}

// The state's own attributes, in the layout of a record.
std::string render_state(const StateView& view) {
  std::string out = "# state:\n";
  out += "lineage         = " + json_quote(view.lineage) + "\n";
  out += "organization_id = " +
         (view.organization_id.empty() ? std::string("(none recorded yet)")
                                       : json_quote(view.organization_id)) +
         "\n";
  out += "resources       = " + std::to_string(view.rows.size()) + "\n";
  out += "serial          = " + std::to_string(view.serial) + "\n";
  return out;
}

int run_show(const GlobalOptions& global, const std::string& address) {
  const bool err_color = use_color(global, STDERR_FILENO);
  std::optional<std::string> key;
  if (!address.empty()) {
    key = key_for_address(address);
    if (!key) {
      print_error(
          std::cerr,
          "invalid address \"" + address + "\": expected an address such as astro_api_token.<key>",
          err_color);
      return 1;
    }
  }
  std::optional<spec::Config> config = load_config_or_report(global);
  if (!config) return 1;
  if (!key && !runtime::state_exists(*config)) {
    print_error(std::cerr, "there is no state yet at " + config->state_path, err_color);
    return 1;
  }
  auto view = read_state(*config);
  if (!view.ok()) {
    print_error(std::cerr, view.error(), err_color);
    return 1;
  }
  if (!key) {
    std::cout << render_state(*view);
    return 0;
  }
  for (const auto& row : view->rows) {
    if (row.key != *key) continue;
    std::cout << render_record(row, view->organization_id);
    return 0;
  }
  print_error(
      std::cerr,
      "no token " + address + " in the state; \"astro-tokend state list\" shows the addresses",
      err_color);
  return 1;
}

int run_rm(const GlobalOptions& global, const std::vector<std::string>& addresses) {
  const bool err_color = use_color(global, STDERR_FILENO);
  std::vector<std::string> keys;
  bool ok = true;
  for (const std::string& address : addresses) {
    std::optional<std::string> key = key_for_address(address);
    if (!key) {
      print_error(
          std::cerr,
          "invalid address \"" + address + "\": expected an address such as astro_api_token.<key>",
          err_color);
      ok = false;
    } else if (std::find(keys.begin(), keys.end(), *key) == keys.end()) {
      keys.push_back(*key);
    }
  }
  if (!ok) return 1;
  std::optional<spec::Config> config = load_config_or_report(global);
  if (!config) return 1;

  runtime::RuntimeOptions options;
  options.human_log = true;
  options.command = "state rm";
  options.need_client = false;
  options.take_lock = true;
  auto runtime = runtime::open_runtime(*config, options, std::cerr);
  if (!runtime.ok()) {
    print_error(std::cerr, runtime.error(), err_color);
    return 1;
  }
  state::StateStore& store = (*runtime)->store();
  auto rows = store.resources();
  if (!rows.ok()) {
    print_error(std::cerr, rows.error(), err_color);
    return 1;
  }
  std::set<std::string> recorded;
  for (const auto& row : *rows) recorded.insert(row.key);
  for (const std::string& key : keys) {
    if (recorded.count(key)) continue;
    print_error(std::cerr,
                "no token " + address_for_key(key) +
                    " in the state; \"astro-tokend state list\" shows the addresses",
                err_color);
    ok = false;
  }
  if (!ok) return 1;  // nothing removed

  std::vector<state::Outcome> removals;
  for (const std::string& key : keys) removals.push_back({key, std::nullopt, std::nullopt});
  if (Status done = store.record_outcomes(removals); !done.ok()) {
    print_error(std::cerr, done.error(), err_color);
    return 1;
  }
  for (const std::string& key : keys) std::cout << "Removed " << address_for_key(key) << "\n";
  std::cout << "Successfully removed " << keys.size() << " resource instance(s).\n";
  return 0;
}

}  // namespace

// `state list`: every managed address, one per line, sorted.
// `state show ADDR`: one state row in Terraform's `state show` layout; the
//   token value shows as (sensitive value) (state never holds it), and the
//   organization the state belongs to once it records one.
// `state show`: the state's own attributes: lineage, organization, number of
//   resources, serial.
// `state rm ADDR…`: under the writer lock, forgets the rows in one
//   transaction without any API call (the tokens keep existing). An unknown
//   address removes nothing.
// list and show never create a state database. Errors go to stderr, exit 1.
void add_state_command(CLI::App& app, const GlobalOptions& global, int* exit_code) {
  auto flags = std::make_shared<StateFlags>();
  auto* cmd = app.add_subcommand("state", "Inspect or edit the state (list, show, rm)");
  cmd->require_subcommand(1);

  auto* list = cmd->add_subcommand("list", "List the addresses of the managed tokens, sorted");
  list->callback([&global, exit_code] { *exit_code = run_list(global); });

  auto* show = cmd->add_subcommand(
      "show",
      "Show every recorded attribute of one managed token, or without ADDR the state's lineage, "
      "organization and serial");
  show->add_option("ADDR", flags->show_address, "astro_api_token.<key>");
  show->callback(
      [&global, flags, exit_code] { *exit_code = run_show(global, flags->show_address); });

  auto* rm = cmd->add_subcommand(
      "rm", "Stop managing tokens: remove their rows from the state, leaving the tokens in place");
  rm->add_option("ADDR", flags->rm_addresses, "astro_api_token.<key> (one or more)")->required();
  rm->callback([&global, flags, exit_code] { *exit_code = run_rm(global, flags->rm_addresses); });
}

}  // namespace tokend::cli
