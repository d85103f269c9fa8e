#include "fuzz/targets.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>

#include "astro/json.h"
#include "astro/page_scanner.h"
#include "plan/plan_file.h"
#include "sim/bodies.h"
#include "sim/controls.h"
#include "spec/loader.h"

namespace tokend::fuzz {

namespace {

// A directory of this process's own, made once and reused by every input.
const std::string& scratch_dir() {
  static const std::string dir = [] {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/tokend-fuzz-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr)
      throw std::runtime_error("cannot make a scratch directory");
    return pattern;
  }();
  return dir;
}

void write_bytes(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A failed check inside a target is a finding: abort so libFuzzer keeps it.
void expect(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "fuzz target check failed: %s\n", what);
    std::abort();
  }
}

}  // namespace

void toml_loaders(std::string_view bytes) {
  const std::string& dir = scratch_dir();
  const std::string spec = dir + "/spec.toml";
  write_bytes(spec, bytes);
  spec::Config config;
  config.path = dir + "/astro-tokend.toml";
  config.organization_id = "clx42kkcm01fo01o06agtmshg";
  config.spec_paths = {spec};
  config.state_path = dir + "/state.db";
  config.secrets_dir = dir + "/tokens";
  auto specs = spec::load_specs(config);
  expect(specs.ok() || !specs.diagnostics.empty(), "a refused spec has a diagnostic");
  auto loaded = spec::load_config(spec);
  expect(loaded.ok() || !loaded.diagnostics.empty(), "a refused config has a diagnostic");
}

void api_json(std::string_view bytes) {
  const std::string body(bytes);
  if (auto token = astro::json::decode_token(body); token.ok()) {
    auto again = astro::json::decode_token(astro::json::encode_token(*token, true));
    expect(again.ok() && again->id == token->id && again->roles == token->roles,
           "a decoded token round-trips");
  }
  if (auto page = astro::json::decode_token_page(body); page.ok()) {
    auto again = astro::json::decode_token_page(astro::json::encode_token_page(*page));
    expect(again.ok() && again->tokens.size() == page->tokens.size() &&
               again->total_count == page->total_count,
           "a decoded token page round-trips");
  }
  if (auto create = astro::json::decode_create_request(body); create.ok()) {
    auto again = astro::json::decode_create_request(astro::json::encode_create_request(*create));
    expect(again.ok() && again->name == create->name, "a create request round-trips");
  }
  if (auto update = astro::json::decode_update_request(body); update.ok())
    expect(astro::json::decode_update_request(astro::json::encode_update_request(*update)).ok(),
           "an update request round-trips");
  if (auto roles = astro::json::decode_roles_request(body); roles.ok())
    expect(astro::json::decode_roles_request(astro::json::encode_roles_request(*roles)).ok(),
           "a roles request round-trips");
  if (auto error = astro::json::decode_error(body))
    expect(astro::json::decode_error(astro::json::encode_error(*error)).has_value(),
           "an error body round-trips");
  (void)astro::json::decode_id_page(body, "workspaces");
  (void)astro::json::decode_id_page(body, "deployments");
  // The v1 answers the client reads (scope, kind, lastRotatedAt, DAG roles).
  (void)astro::json::decode_token(body, astro::ApiVersion::V1);
  (void)astro::json::decode_token_page(body, astro::ApiVersion::V1);
  for (astro::ApiVersion version : {astro::ApiVersion::V1, astro::ApiVersion::V1Beta1}) {
    if (auto scanned = astro::json::scan_token_page(body, version)) {
      auto tree = astro::json::decode_token_page_via_tree(body, version);
      expect(tree.ok() && same_token_page(*scanned, *tree),
             "the page scanner reads what the parse-tree decoder reads");
    }
  }
}

bool same_token_page(const astro::json::TokenPage& a, const astro::json::TokenPage& b) {
  const auto same = [](const astro::ApiToken& x, const astro::ApiToken& y) {
    return x.id == y.id && x.name == y.name && x.description == y.description && x.type == y.type &&
           x.kind == y.kind && x.roles == y.roles &&
           x.expiry_period_in_days == y.expiry_period_in_days && x.short_token == y.short_token &&
           x.created_at == y.created_at && x.updated_at == y.updated_at &&
           x.start_at == y.start_at && x.end_at == y.end_at && x.last_used_at == y.last_used_at &&
           x.last_rotated_at == y.last_rotated_at && x.token.reveal() == y.token.reveal();
  };
  if (a.total_count != b.total_count || a.offset != b.offset || a.limit != b.limit ||
      a.tokens.size() != b.tokens.size())
    return false;
  for (std::size_t i = 0; i < a.tokens.size(); ++i)
    if (!same(a.tokens[i], b.tokens[i])) return false;
  return true;
}

void plan_file(std::string_view bytes) {
  auto plan = plan::load_plan(std::string(bytes));
  if (!plan.ok()) return;
  auto again = plan::load_plan(plan::save_plan(*plan));
  expect(again.ok() && again->changes.size() == plan->changes.size(),
         "a loaded plan saves and loads again");
}

void sim_bodies(std::string_view bytes) {
  const std::string body(bytes);
  const Timestamp now{std::chrono::seconds{1767225600}};  // 2026-01-01
  (void)sim::decode_seed(body, now);
  if (auto bulk = sim::decode_bulk_create(body); bulk.ok())
    expect(sim::decode_bulk_create(sim::encode_bulk_create(*bulk)).ok(),
           "a bulk create round-trips");
  (void)sim::decode_bulk_created(body);
  if (auto patch = sim::decode_token_patch(body); patch.ok())
    expect(sim::decode_token_patch(sim::encode_token_patch(*patch)).ok(),
           "a token patch round-trips");
  (void)sim::decode_string_list(body, "values");
  if (auto faults = sim::decode_fault_plan(body); faults.ok())
    expect(sim::decode_fault_plan(sim::encode_fault_plan(*faults)).ok(),
           "a fault plan round-trips");
}

}  // namespace tokend::fuzz
