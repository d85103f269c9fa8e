// The request dispatcher of astro-api-sim, free of any HTTP library: it maps
// one request (method, path, query, Authorization, body) to one answer, for
// the API routes (/iam/v1beta1/…, /platform/v1beta1/…) and the test controls
// (/_sim/…). The HTTP front end (server.h) only moves bytes.
//
// API routes go through, in order: fault rules (drop before / injected
// status), the per-method rate limits (429 + Retry-After), the bearer token
// (401), the organization id (403), the operation itself, injected latency,
// and drop after. /_sim/ routes skip all of that and need no bearer token.
// Every error body is the API's Error shape with a fresh requestId.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sim/controls.h"
#include "sim/org.h"

namespace tokend::sim {

struct SimRequest {
  std::string method;
  std::string path;           // as received, without the query
  std::string query;          // raw, without '?'
  std::string authorization;  // the Authorization header, "" when absent
  std::string body;
};

struct SimResponse {
  int status = 200;
  std::string body;  // JSON; empty for 204
  std::vector<std::pair<std::string, std::string>> headers;
  // Close the connection without sending anything.
  bool close_without_answer = false;
  // The operationId for API routes, "control" for /_sim/ routes, "unknown"
  // for anything else.
  std::string operation;
};

struct SimulatorOptions {
  std::string bearer_token;               // required on API routes
  std::optional<RateLimits> rate_limits;  // nullopt: no limits
};

class Simulator {
 public:
  // `org` must outlive the simulator.
  Simulator(Organization& org, SimulatorOptions options);

  // Thread-safe; never throws. May block for injected latency.
  SimResponse handle(const SimRequest& request);

  // Ends every injected latency wait at once (and makes later ones return
  // immediately). Call before stopping the HTTP server.
  void shutdown();

  Organization& organization() { return org_; }

 private:
  SimResponse handle_api(const SimRequest& request);
  SimResponse handle_control(const SimRequest& request);
  SimResponse perform(const std::string& operation, const SimRequest& request,
                      const std::vector<std::string>& segments);
  bool authorized(const std::string& authorization) const;
  void wait_latency(int latency_ms);

  Organization& org_;
  SimulatorOptions options_;
  FaultInjector faults_;
  RateLimiter limiter_;
  RequestLog log_;

  std::mutex wait_mutex_;
  std::condition_variable wait_cv_;
  bool stopping_ = false;
};

// A fresh request id (UUID text).
std::string new_request_id();
// The Error body for `status` with `message` and a fresh requestId.
SimResponse error_response(int status, std::string message);

}  // namespace tokend::sim
