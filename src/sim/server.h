// sim/ — astro-api-sim: a local, stateful implementation of the Astro API
// operations astro-tokend uses, faithful to shared/astro-openapi/ (product.md §8).
// Used by tests, benchmarks and the demo; never by the daemon itself.
//
//   org.h        the organization: workspaces, deployments, tokens, API rules
//   api.h        request dispatch: API routes and the /_sim/ test controls
//   controls.h   fault injection, rate limits, the request log
//   bodies.h     seed file and control bodies, Workspace/Deployment pages
//   data_file.h  the --data file (atomic, debounced writes)
//   server.h     this file: the HTTP(S) front end on Poco's HTTPServer
//
// May not: be linked into astro-tokend, log a bearer token or token value,
// or let a Poco exception escape.
#pragma once

#include <memory>
#include <string>

#include "sim/api.h"
#include "util/log.h"
#include "util/result.h"

namespace tokend::sim {

struct ServerOptions {
  std::string listen = "127.0.0.1:0";  // HOST:PORT; port 0 picks a free one
  std::string tls_cert;                // PEM files; both or neither
  std::string tls_key;
  int max_threads = 64;  // concurrent connections served (keep-alive holds one each)
};

// Serves a Simulator over HTTP/1.1 with keep-alive, or HTTPS when a
// certificate is given. Logs one line per request (method, path, status,
// operation, duration) at info level; never headers or bodies.
class SimServer {
 public:
  // Binds and starts accepting before returning. Invalid for a bad listen
  // address, Io when the address cannot be bound, Tls when the certificate
  // or key cannot be loaded.
  static Result<std::unique_ptr<SimServer>> start(const ServerOptions& options,
                                                  Simulator& simulator, Logger& log);
  ~SimServer();  // stop()
  SimServer(const SimServer&) = delete;
  SimServer& operator=(const SimServer&) = delete;

  int port() const { return port_; }
  bool tls() const { return tls_; }
  // Stops accepting, closes open connections and waits for request threads.
  // Call Simulator::shutdown() first so injected latencies end. Idempotent.
  void stop();

 private:
  struct Impl;
  explicit SimServer(std::unique_ptr<Impl> impl, int port, bool tls);

  std::unique_ptr<Impl> impl_;
  int port_;
  bool tls_;
};

}  // namespace tokend::sim
