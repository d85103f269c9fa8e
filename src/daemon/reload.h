// The reload decision: given the configuration in force and the result of
// loading the files again, whether to keep the old set (anything invalid:
// never a half-loaded set) or to switch, and what must be rebuilt.
// Pure; no I/O.
#pragma once

#include <string>
#include <vector>

#include "spec/loader.h"
#include "spec/model.h"

namespace tokend::daemon {

// Which sections of the daemon config differ.
struct ConfigChanges {
  bool astro = false;      // [astro] (and its rate limits): a new API client
  bool state = false;      // [state] backend, path or dsn: a new store and writer lock
  bool server = false;     // [server] listen: a new HTTP server
  bool log = false;        // [log]: a new logger
  bool reconcile = false;  // [reconcile]: new timing, mode or limits
  bool specs = false;      // [specs] paths: a new set of watched directories
  bool secrets = false;    // [secrets] dir

  bool any() const { return astro || state || server || log || reconcile || specs || secrets; }
  // The changed sections by TOML name ("astro", "state", …), in file order.
  std::vector<std::string> names() const;
};

ConfigChanges compare_configs(const spec::Config& before, const spec::Config& after);

struct ReloadDecision {
  bool accept = false;  // false: keep everything as it is; `diagnostics` says why
  std::vector<spec::Diagnostic> diagnostics;
  ConfigChanges changes;
  bool specs_changed = false;    // the token specs differ (by spec_hash)
  bool rebuild_runtime = false;  // astro, state or log changed: new client, store and logger
  bool move_lock = false;        // the state location changed: take the new writer lock first
  bool restart_server = false;   // the listen address changed
};

// Accepts only a load without any diagnostic; the previous set stays in
// force otherwise.
ReloadDecision decide_reload(const spec::DesiredState& current,
                             const spec::Loaded<spec::DesiredState>& loaded);

}  // namespace tokend::daemon
