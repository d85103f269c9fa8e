// runtime/ — the real seams of one command or daemon generation, wired from a
// Config: logger, writer lock, state store, Astro API client, secret sink,
// clock and the request counter. Shared by cli/ and daemon/, which never
// include each other.
//
// May not: decide or render anything. It builds objects and reports why one
// could not be built; what to do with them belongs to the caller.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>

#include "apply/engine.h"
#include "apply/fenced_client.h"
#include "apply/hook.h"
#include "apply/sink.h"
#include "astro/client.h"
#include "spec/model.h"
#include "state/store.h"
#include "util/clock.h"
#include "util/log.h"

namespace tokend::runtime {

// Counts API requests by operation and HTTP status (0 = no answer).
// Thread-safe; used as the client's RequestObserver.
class RequestCounter {
 public:
  void record(astro::Operation op, int http_status);
  int total() const;
  int count(astro::Operation op) const;
  std::map<std::pair<astro::Operation, int>, int> snapshot() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<astro::Operation, int>, int> counts_;
  int total_ = 0;
};

struct RuntimeOptions {
  std::string command;           // "plan", "apply", "run", … (shown to a lock contender)
  bool need_client = true;       // build the HTTP client (loads the bearer token)
  bool take_lock = false;        // take the state's writer lock (apply, run, state rm, import)
  bool create_state_dir = true;  // create the state file's directory (0700) when missing
  bool open_store = true;  // false: no state at all (store() and dependencies() must not be used)
  // Also told about every API request (metrics). Optional; must be thread-safe.
  astro::RequestObserver observer;
  // Raised on shutdown: the client's back-off and rate-limit waits end at once
  // (astro::HttpClientOptions::stop). Optional; must outlive the runtime.
  const std::atomic<bool>* stop = nullptr;
  // A command a person runs: with the config's "text" format, log lines are
  // human sentences (LogFormat::Human), e.g. the client's retries.
  bool human_log = false;
  // Record the config's organization in a state that records none yet (also
  // done whenever take_lock is set): the state is bound to it from then on.
  bool bind_organization = false;
  // The sink remembers the fingerprints it computed (apply::FileSink), for a
  // process that measures the same sinks again and again: the daemon.
  bool remember_fingerprints = false;
};

// The real seams of one command or daemon generation, built from a Config:
// logger, writer lock, state store, HTTP client, file sink, delivery hooks
// (child processes), system clock.
// Members are destroyed in reverse order (the lock last).
class Runtime {
 public:
  Logger& logger() { return *logger_; }
  state::StateStore& store() { return *store_; }
  // The API client; fenced by the writer lease once fence() was called.
  astro::Client& client() { return fenced_client_ ? *fenced_client_ : *client_; }
  bool has_client() const { return client_ != nullptr; }
  apply::FileSink& sink() { return sink_; }
  apply::HookRunner& hooks() { return hooks_; }
  const Clock& clock() const { return clock_; }
  const MonotonicClock& steady_clock() const { return steady_clock_; }
  const RequestCounter& requests() const { return *requests_; }
  apply::Dependencies dependencies();
  // Fences the store and the client with `lease`: every state write checks
  // its epoch, and every API write asks it first (apply::FencedClient).
  // Call again after the lease was taken anew (a new epoch). `lease` must
  // outlive this runtime's use of it. open_runtime does this for the lock it
  // takes.
  void fence(state::WriterLease& lease);

 private:
  friend Result<std::unique_ptr<Runtime>> open_runtime(const spec::Config&, const RuntimeOptions&,
                                                       std::ostream&);
  explicit Runtime(bool remember_fingerprints)
      : sink_(apply::FileSink::kSettle, remember_fingerprints) {}
  std::unique_ptr<Logger> logger_;
  std::unique_ptr<state::WriterLease> lock_;
  std::unique_ptr<state::StateStore> store_;
  std::shared_ptr<RequestCounter> requests_ = std::make_shared<RequestCounter>();
  std::unique_ptr<astro::Client> client_;
  std::unique_ptr<astro::Client> fenced_client_;
  apply::FileSink sink_;
  apply::ProcessHookRunner hooks_;
  SystemClock clock_;
  SystemMonotonicClock steady_clock_;
};

// Where the config's [state] table says the state lives.
state::StoreLocation store_location(const spec::Config& config);
// The [ha] timings.
state::LeaseTimings lease_timings(const spec::Config& config);

// False only when the config names an SQLite file that does not exist (yet):
// reading commands then show an empty state without creating one.
bool state_exists(const spec::Config& config);

// Creates the state file's directory (0700) when missing (SQLite) and takes
// the right to write the state for `command`: Error Conflict naming the
// holder, Io.
Result<std::unique_ptr<state::WriterLease>> take_writer_lock(const spec::Config& config,
                                                             const std::string& command);

// The API version [astro] api_version names.
astro::ApiVersion api_version(const spec::Config& config);

// With api_version = "v1beta1": logs the one warning (level warn, message
// "astro api v1beta1 is deprecated", fields api_version and support_ends)
// that v1beta1 support ends in January 2027. Nothing with "v1".
void warn_if_deprecated_api(const spec::Config& config, Logger& logger);

// Builds the runtime: logger on `log_stream` with the config's level and
// format (Human for "text" when options.human_log; syslog priorities and no
// times when `log_stream` is std::cerr and stderr is the journal); the writer lock when asked
// (Error Conflict naming the holder); the store (creating its directory when asked), refused
// (apply::check_organization: Invalid naming both ids) when it belongs to another organization
// than the config's and the runtime takes the lock or has a client, and bound to the config's
// organization when it records none yet and the runtime takes the lock or is asked to
// (bind_organization; a state that already held something says so in a log line); the client
// with the bearer token from $CREDENTIALS_DIRECTORY, token_file or token_env, speaking the
// config's api_version (and logging warn_if_deprecated_api() when it builds one). Errors never
// contain the token.
Result<std::unique_ptr<Runtime>> open_runtime(const spec::Config& config,
                                              const RuntimeOptions& options,
                                              std::ostream& log_stream);

}  // namespace tokend::runtime
