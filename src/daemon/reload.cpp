#include "daemon/reload.h"

namespace tokend::daemon {

std::vector<std::string> ConfigChanges::names() const {
  std::vector<std::string> out;
  if (astro) out.push_back("astro");
  if (specs) out.push_back("specs");
  if (state) out.push_back("state");
  if (reconcile) out.push_back("reconcile");
  if (secrets) out.push_back("secrets");
  if (server) out.push_back("server");
  if (log) out.push_back("log");
  return out;
}

ConfigChanges compare_configs(const spec::Config& a, const spec::Config& b) {
  ConfigChanges changes;
  changes.astro = a.organization_id != b.organization_id || a.api_url != b.api_url ||
                  a.token_file != b.token_file || a.token_env != b.token_env ||
                  a.timeout != b.timeout || a.ca_file != b.ca_file ||
                  !(a.rate_limits == b.rate_limits);
  changes.specs = a.spec_paths != b.spec_paths;
  changes.state = a.state_backend != b.state_backend || a.state_path != b.state_path ||
                  a.state_dsn != b.state_dsn || a.ha_lease != b.ha_lease ||
                  a.ha_renew != b.ha_renew || a.ha_retry != b.ha_retry;
  changes.reconcile = a.interval != b.interval || a.jitter != b.jitter || a.mode != b.mode ||
                      a.parallelism != b.parallelism ||
                      a.max_deletes_per_run != b.max_deletes_per_run ||
                      a.max_rotations_per_run != b.max_rotations_per_run;
  changes.secrets = a.secrets_dir != b.secrets_dir;
  changes.server = a.listen != b.listen;
  changes.log = a.log_level != b.log_level || a.log_format != b.log_format;
  return changes;
}

ReloadDecision decide_reload(const spec::DesiredState& current,
                             const spec::Loaded<spec::DesiredState>& loaded) {
  ReloadDecision decision;
  if (!loaded.ok()) {
    decision.diagnostics = loaded.diagnostics;
    if (decision.diagnostics.empty())
      decision.diagnostics.push_back(spec::Diagnostic{
          {current.config.path, 0, 0}, "the configuration could not be loaded", ""});
    return decision;
  }
  const spec::DesiredState& next = *loaded.value;
  decision.accept = true;
  decision.changes = compare_configs(current.config, next.config);
  decision.specs_changed = current.spec_hash != next.spec_hash;
  decision.rebuild_runtime =
      decision.changes.astro || decision.changes.state || decision.changes.log;
  decision.move_lock = decision.changes.state;
  decision.restart_server = decision.changes.server;
  return decision;
}

}  // namespace tokend::daemon
