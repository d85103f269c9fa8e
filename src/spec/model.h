// spec/ — the operator's intent: the daemon config (product.md §2) and the
// token specs (§1), loaded from TOML with toml11 into the plain types below,
// and validated before anything touches the network.
//
// May not: make network calls, touch state, or read the clock. Loading reports
// every problem it finds as a Diagnostic with file, line and column; it never
// stops at the first one and never throws.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "model/token.h"

namespace tokend::spec {

// A place in a source file; line and column (a byte offset within the line)
// are 1-based, 0 when unknown.
struct SourcePos {
  std::string file;
  int line = 0;
  int column = 0;
  bool operator==(const SourcePos&) const = default;
};

struct Diagnostic {
  SourcePos pos;
  std::string message;      // e.g. "expiry_period_in_days must be between 1 and 3650, got 0"
  std::string source_line;  // the offending line of the file, when known

  // "FILE:LINE:COL: error: MESSAGE\n", then, when the line is known, the
  // source line indented by four spaces and a caret under the column. LINE
  // and COL are left out when 0 ("FILE: error: MESSAGE" for a file that
  // cannot be read). Bytes that could disturb a terminal print as '?'.
  std::string format() const;
};

struct Lifecycle {
  bool prevent_destroy = false;
  bool create_before_destroy = false;
  // Attribute names (name, description, roles, role, type, expiry_period_in_days, kind)
  // whose differences are ignored; "all" ignores every attribute.
  std::vector<std::string> ignore_changes;

  bool ignores(std::string_view attribute) const;
  bool operator==(const Lifecycle&) const = default;
};

// One `[api_token.<key>]` table, validated.
struct TokenSpec {
  std::string key;  // address is address_for_key(key)
  TokenAttrs attrs;
  int rotate_before_expiry_days = 0;  // 0 = off
  int rotate_every_days = 0;          // 0 = off
  std::string sink;                   // absolute path; defaults to {secrets.dir}/{key}.token
  int sink_mode = 0600;               // 0600, 0640, 0400 or 0440; default [secrets] sink_mode
  std::string sink_group;             // group name of the sink file; "" = the writer's own
  // The delivery hook: program (absolute path) and arguments, run without a
  // shell after each delivery; empty = none. Default [secrets] on_delivery.
  std::vector<std::string> on_delivery;
  std::optional<std::string> import_id;
  Lifecycle lifecycle;
  SourcePos pos;  // where the table starts

  bool operator==(const TokenSpec&) const = default;
};

struct RateLimits {
  double get = 25;
  double post = 10;
  double del = 5;  // `delete` in TOML
  bool operator==(const RateLimits&) const = default;
};

enum class ReconcileMode { Apply, Plan };
// [astro] api_version: "v1" (the default) or "v1beta1" (deprecated; support
// ends in January 2027).
enum class ApiVersion { V1, V1Beta1 };
enum class StateBackend { Sqlite, Postgres };

struct Config {
  std::string path;  // the config file itself (absolute)

  // [astro]
  std::string organization_id;
  std::string api_url = "https://api.astronomer.io";
  ApiVersion api_version = ApiVersion::V1;
  std::string token_file;  // absolute when set
  std::string token_env = "ASTRO_API_TOKEN";
  std::chrono::milliseconds timeout{30000};
  std::int64_t max_response_bytes = std::int64_t{64} << 20;  // cap of one API answer's body
  std::string ca_file;                                       // absolute when set
  RateLimits rate_limits;

  // [specs]
  std::vector<std::string> spec_paths{"/etc/astro-tokend/tokens.d"};  // absolute
  // cache_dir: where validated spec files are cached (absolute; "" = no
  // cache); nullopt = the default place (spec_cache_dir() in spec/spec_cache.h).
  std::optional<std::string> spec_cache_dir;

  // [state]
  StateBackend state_backend = StateBackend::Sqlite;
  std::string state_path = "/var/lib/astro-tokend/state.db";  // absolute (sqlite)
  std::string state_dsn;  // postgres: a libpq connection string, never with a password

  // [ha] (postgres): leader lease length, renewal and standby retry periods
  std::chrono::milliseconds ha_lease{15000};
  std::chrono::milliseconds ha_renew{10000};
  std::chrono::milliseconds ha_retry{2000};

  // [reconcile]
  std::chrono::milliseconds interval{5 * 60 * 1000};
  std::chrono::milliseconds jitter{30 * 1000};
  ReconcileMode mode = ReconcileMode::Apply;
  int parallelism = 4;
  int max_deletes_per_run = 5;
  int max_rotations_per_run = 5;  // rotations of values whose sink file is missing, per run

  // [secrets]: the sink directory and the delivery defaults of every token
  std::string secrets_dir = "/var/lib/astro-tokend/tokens";  // absolute
  int sink_mode = 0600;
  std::string sink_group;                // "" = the writer's own group
  std::vector<std::string> on_delivery;  // empty = no hook
  std::chrono::milliseconds hook_timeout{30000};

  // [server]
  std::string listen = "127.0.0.1:9464";  // "" disables

  // [log]
  std::string log_level = "info";   // debug | info | warn | error
  std::string log_format = "text";  // text | json
};

// Everything the operator asked for: the config plus every token spec, keyed
// and sorted by key.
struct DesiredState {
  Config config;
  std::vector<TokenSpec> tokens;  // sorted by key
  // SHA-256 over the spec files' names and bytes, in load order; lets a saved
  // plan notice that the specs changed since it was made.
  std::string spec_hash;
};

}  // namespace tokend::spec
