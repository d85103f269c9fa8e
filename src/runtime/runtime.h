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
  // A command a person runs: with the config's "text" format, log lines are
  // human sentences (LogFormat::Human), e.g. the client's retries.
  bool human_log = false;
};

// The real seams of one command or daemon generation, built from a Config:
// logger, writer lock, state store, HTTP client, file sink, system clock.
// Members are destroyed in reverse order (the lock last).
class Runtime {
 public:
  Logger& logger() { return *logger_; }
  state::StateStore& store() { return *store_; }
  astro::Client& client() { return *client_; }
  bool has_client() const { return client_ != nullptr; }
  apply::FileSink& sink() { return sink_; }
  const Clock& clock() const { return clock_; }
  const MonotonicClock& steady_clock() const { return steady_clock_; }
  const RequestCounter& requests() const { return *requests_; }
  apply::Dependencies dependencies();

 private:
  friend Result<std::unique_ptr<Runtime>> open_runtime(const spec::Config&, const RuntimeOptions&,
                                                       std::ostream&);
  std::unique_ptr<Logger> logger_;
  std::unique_ptr<state::WriterLease> lock_;
  std::unique_ptr<state::StateStore> store_;
  std::shared_ptr<RequestCounter> requests_ = std::make_shared<RequestCounter>();
  std::unique_ptr<astro::Client> client_;
  apply::FileSink sink_;
  SystemClock clock_;
  SystemMonotonicClock steady_clock_;
};

// Where the config's [state] table says the state lives.
state::StoreLocation store_location(const spec::Config& config);

// False only when the config names an SQLite file that does not exist (yet):
// reading commands then show an empty state without creating one.
bool state_exists(const spec::Config& config);

// Creates the state file's directory (0700) when missing (SQLite) and takes
// the right to write the state for `command`: Error Conflict naming the
// holder, Io.
Result<std::unique_ptr<state::WriterLease>> take_writer_lock(const spec::Config& config,
                                                             const std::string& command);

// Builds the runtime: logger on `log_stream` with the config's level and
// format (Human for "text" when options.human_log; syslog priorities and no
// times when `log_stream` is std::cerr and stderr is the journal); the writer lock when asked
// (Error Conflict naming the holder); the store (creating its directory when asked); the client
// with the bearer token from $CREDENTIALS_DIRECTORY, token_file or token_env. Errors never contain
// the token.
Result<std::unique_ptr<Runtime>> open_runtime(const spec::Config& config,
                                              const RuntimeOptions& options,
                                              std::ostream& log_stream);

}  // namespace tokend::runtime
