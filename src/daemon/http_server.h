// The daemon's HTTP endpoints on [server] listen, served by Poco's
// HTTPServer on a small thread pool of its own:
//   GET /metrics  200, Prometheus text format 0.0.4
//                 (Content-Type: text/plain; version=0.0.4; charset=utf-8)
//   GET /healthz  200 "ok" while the process runs
//   GET /readyz   200 "ok" when ready, else 503 with the reason
//   GET /         the status page (text/html; charset=utf-8), when given
//   GET /status.json  its data (application/json), when given
// Other paths answer 404, other methods 405. Pages are sent with
// Cache-Control: no-store, X-Content-Type-Options: nosniff and a
// Content-Security-Policy that allows no script and nothing from elsewhere.
// Poco exceptions stop here.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "daemon/health.h"
#include "util/result.h"

namespace Poco {
class ThreadPool;
}
namespace Poco::Net {
class HTTPServer;
}

namespace tokend::daemon {

// Called on the server's threads: must be thread-safe and quick.
struct HealthEndpoints {
  std::function<std::string()> metrics;  // the exposition text
  std::function<Readiness()> readiness;
  std::function<std::string()> status_html;  // optional: `/` answers 404 without it
  std::function<std::string()> status_json;  // optional: `/status.json` answers 404 without it
};

class HealthServer {
 public:
  // Binds `listen` ("HOST:PORT", "[V6]:PORT"; port 0 picks a free port) and
  // starts serving. Invalid for an address that does not parse, Io when it
  // cannot be bound.
  static Result<std::unique_ptr<HealthServer>> start(const std::string& listen,
                                                     HealthEndpoints endpoints);
  // Stops accepting, lets requests in progress finish, joins the threads.
  ~HealthServer();
  HealthServer(const HealthServer&) = delete;
  HealthServer& operator=(const HealthServer&) = delete;

  // The address actually bound, e.g. "127.0.0.1:40123".
  const std::string& address() const { return address_; }

 private:
  HealthServer() = default;
  std::unique_ptr<Poco::ThreadPool> pool_;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
  std::string address_;
};

}  // namespace tokend::daemon
