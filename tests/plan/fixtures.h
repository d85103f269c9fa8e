// Builders for plan tests: specs, state rows and API tokens that agree with
// each other unless a test changes one of them.
#pragma once

#include <algorithm>
#include <string>

#include "plan/plan.h"

namespace tokend::plan::testing {

inline constexpr const char* kWorkspace = "clx42sxw501gl01o0gjenthnh";
inline constexpr const char* kDeployment = "clyn6kxud003x01mtxmccegnh";
inline constexpr const char* kOrganization = "clx42kkcm01fo01o06agtmshg";

inline Timestamp at(const char* rfc3339) { return *parse_rfc3339(rfc3339); }
inline Timestamp now() { return at("2026-03-01T12:00:00Z"); }
inline Timestamp days_from_now(int days) { return now() + std::chrono::hours(24 * days); }

inline std::string id_for(const std::string& key) { return "tok-" + key; }

// A WORKSPACE token with a primary WORKSPACE_OWNER role and a deployment role.
inline TokenAttrs workspace_attrs(const std::string& key) {
  TokenAttrs attrs;
  attrs.name = key + " token";
  attrs.description = "used by " + key;
  attrs.type = EntityType::Workspace;
  attrs.role = "WORKSPACE_OWNER";
  attrs.roles = normalize_roles({{"WORKSPACE_OWNER", kWorkspace, EntityType::Workspace},
                                 {"DEPLOYMENT_ADMIN", kDeployment, EntityType::Deployment}});
  attrs.expiry_period_in_days = 90;
  return attrs;
}

inline std::string sink_for(const std::string& key) {
  return "/var/lib/astro-tokend/tokens/" + key + ".token";
}

inline spec::TokenSpec make_spec(const std::string& key) {
  spec::TokenSpec spec;
  spec.key = key;
  spec.attrs = workspace_attrs(key);
  spec.sink = sink_for(key);
  spec.pos = {"/etc/astro-tokend/tokens.d/tokens.toml", 1, 1};
  return spec;
}

// A row whose value was delivered 10 days ago and expires in 80 days.
inline state::ResourceRecord make_row(const std::string& key) {
  state::ResourceRecord row;
  row.key = key;
  row.id = id_for(key);
  row.attrs = workspace_attrs(key);
  row.short_token = "short-" + key;
  row.created_at = days_from_now(-10);
  row.updated_at = days_from_now(-10);
  row.start_at = days_from_now(-10);
  row.end_at = days_from_now(80);
  row.sink_path = sink_for(key);
  row.sink_sha256 = std::string(64, 'a');
  return row;
}

// The API's view of a row.
inline astro::ApiToken token_for(const state::ResourceRecord& row) {
  astro::ApiToken token;
  token.id = row.id;
  token.name = row.attrs.name;
  token.description = row.attrs.description;
  token.type = row.attrs.type;
  token.kind = row.attrs.kind;
  token.roles = row.attrs.roles;
  token.expiry_period_in_days = row.attrs.expiry_period_in_days;
  token.short_token = row.short_token;
  token.created_at = row.created_at;
  token.updated_at = row.updated_at;
  token.start_at = row.start_at;
  token.end_at = row.end_at;
  token.last_rotated_at = row.last_rotated_at;
  return token;
}

// Field-by-field equality of two specs (TokenSpec's defaulted == is not
// usable because SourcePos has none).
inline bool same_spec(const spec::TokenSpec& a, const spec::TokenSpec& b) {
  return a.key == b.key && a.attrs == b.attrs &&
         a.rotate_before_expiry_days == b.rotate_before_expiry_days &&
         a.rotate_every_days == b.rotate_every_days && a.sink == b.sink &&
         a.import_id == b.import_id && a.lifecycle == b.lifecycle && a.pos.file == b.pos.file &&
         a.pos.line == b.pos.line && a.pos.column == b.pos.column;
}

inline Input make_input() {
  Input input;
  input.now = now();
  input.lineage = "6f1c2a9e-8d4b-4e7f-9a3c-2b5d8e1f0a47";
  input.serial = 7;
  input.spec_hash = std::string(64, 'c');
  return input;
}

// Adds a managed token that matches its spec: spec, state row and remote token.
inline void add_managed(Input& input, const std::string& key) {
  input.desired.push_back(make_spec(key));
  state::ResourceRecord row = make_row(key);
  input.observed.tokens[row.id] = token_for(row);
  input.prior.push_back(std::move(row));
}

// An input whose plan has every action, drift of both kinds and a no-op:
//   a_create       create
//   b_import       import, with a name update
//   c_update       name and roles update
//   d_replace      expiry differs: -/+
//   e_replace_cbd  type differs, create_before_destroy: +/-
//   f_delete       not in specs
//   g_rotate       expired
//   h_update_rotate description update, sink file missing
//   i_recreate     deleted outside: drift + create
//   j_forget       deleted outside, not in specs: drift + forget
//   k_drift        renamed outside: drift + update back
//   l_noop         equal
inline Input all_actions_input() {
  Input input = make_input();
  for (const char* key : {"c_update", "d_replace", "e_replace_cbd", "f_delete", "g_rotate",
                          "h_update_rotate", "i_recreate", "j_forget", "k_drift", "l_noop"})
    add_managed(input, key);
  auto spec = [&](const std::string& key) -> spec::TokenSpec& {
    for (auto& s : input.desired)
      if (s.key == key) return s;
    return input.desired.front();
  };
  auto remote = [&](const std::string& key) -> astro::ApiToken& {
    return input.observed.tokens[id_for(key)];
  };
  auto drop_spec = [&](const std::string& key) {
    std::erase_if(input.desired, [&](const spec::TokenSpec& s) { return s.key == key; });
  };

  input.desired.push_back(make_spec("a_create"));
  spec("a_create").attrs.description = "";

  spec::TokenSpec import = make_spec("b_import");
  import.import_id = "clm8q7f6q000008lcgyougpsk";
  astro::ApiToken existing = token_for(make_row("b_import"));
  existing.id = *import.import_id;
  existing.name = "legacy name";
  input.observed.tokens[existing.id] = existing;
  input.desired.push_back(import);

  spec("c_update").attrs.name = "c_update renamed";
  spec("c_update").attrs.roles =
      normalize_roles({{"WORKSPACE_OWNER", kWorkspace, EntityType::Workspace},
                       {"DEPLOYMENT_ADMIN", "clz0000000000000000000002", EntityType::Deployment}});

  spec("d_replace").attrs.expiry_period_in_days = 30;

  spec::TokenSpec& cbd = spec("e_replace_cbd");
  cbd.attrs.type = EntityType::Deployment;
  cbd.attrs.role = "DEPLOYMENT_ADMIN";
  cbd.attrs.roles = {{"DEPLOYMENT_ADMIN", kDeployment, EntityType::Deployment}};
  cbd.lifecycle.create_before_destroy = true;

  drop_spec("f_delete");

  remote("g_rotate").end_at = days_from_now(-2);

  spec("h_update_rotate").attrs.description = "new description";
  input.sinks["h_update_rotate"] = SinkStatus::Missing;

  input.observed.tokens.erase(id_for("i_recreate"));

  drop_spec("j_forget");
  input.observed.tokens.erase(id_for("j_forget"));

  remote("k_drift").name = "renamed outside";

  std::sort(input.desired.begin(), input.desired.end(),
            [](const auto& l, const auto& r) { return l.key < r.key; });
  return input;
}

}  // namespace tokend::plan::testing
