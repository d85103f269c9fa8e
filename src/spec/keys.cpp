#include "spec/keys.h"

namespace tokend::spec {

namespace {

const std::vector<std::string_view>& keys_of(const std::vector<KeyTable>& tables,
                                             std::string_view table) {
  static const std::vector<std::string_view> none;
  for (const KeyTable& entry : tables)
    if (entry.table == table) return entry.keys;
  return none;
}

}  // namespace

const std::vector<KeyTable>& config_key_tables() {
  static const std::vector<KeyTable> tables = {
      {"", {"astro", "specs", "state", "ha", "reconcile", "secrets", "server", "log"}},
      {"astro",
       {"organization_id", "api_url", "api_version", "token_file", "token_env", "timeout",
        "max_response_bytes", "ca_file", "rate_limits"}},
      {"astro.rate_limits", {"get", "post", "delete"}},
      {"specs", {"paths", "cache_dir"}},
      {"state", {"backend", "path", "dsn"}},
      {"reconcile",
       {"interval", "jitter", "mode", "parallelism", "max_deletes_per_run",
        "max_rotations_per_run"}},
      {"ha", {"lease", "renew", "retry"}},
      {"secrets", {"dir", "sink_mode", "sink_group", "on_delivery", "hook_timeout"}},
      {"server", {"listen"}},
      {"log", {"level", "format"}},
  };
  return tables;
}

const std::vector<KeyTable>& spec_key_tables() {
  static const std::vector<KeyTable> tables = {
      {"", {"api_token"}},
      {"api_token.<key>",
       {"name", "description", "type", "role", "roles", "expiry_period_in_days",
        "rotate_before_expiry_days", "rotate_every_days", "sink", "sink_mode", "sink_group",
        "on_delivery", "import_id", "lifecycle", "kind"}},
      {"api_token.<key>.roles", {"role", "entity_id", "entity_type", "deployment_id"}},
      {"api_token.<key>.lifecycle", {"prevent_destroy", "create_before_destroy", "ignore_changes"}},
  };
  return tables;
}

const std::vector<std::string_view>& config_keys(std::string_view table) {
  return keys_of(config_key_tables(), table);
}

const std::vector<std::string_view>& spec_keys(std::string_view table) {
  return keys_of(spec_key_tables(), table);
}

}  // namespace tokend::spec
