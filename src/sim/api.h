// The request dispatcher of astro-api-sim, free of any HTTP library: it maps
// one request (method, path, query, Authorization, body) to one answer, for
// the API routes of both versions — v1 (/v1/organizations/{org}/…) and
// v1beta1 (/iam/v1beta1/…, /platform/v1beta1/…) — and the test controls
// (/_sim/…). The HTTP front end (server.h) only moves bytes.
//
// Both versions serve the same operations (the same operationIds, for fault
// rules and the request log) over one Organization, each in its own
// contract's shape. v1 answers carry scope, kind, lastRotatedAt and DAG and
// DAG_TAG roles with deploymentId; v1 list parameters repeat their key
// (sorts=a&sorts=b); a v1 400 caused by one field carries fieldErrors.
// v1beta1 answers leave out what their contract cannot express: no kind, no
// lastRotatedAt, and a token's DAG and DAG_TAG roles are not shown, not
// matched by list filters, and kept by a v1beta1 UpdateApiTokenRoles (which
// replaces only the roles v1beta1 can name). v1beta1 list parameters may also
// be comma-separated (ids=a,b).
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

#include "sim/bodies.h"
#include "sim/controls.h"
#include "sim/org.h"
#include "sim/v1_json.h"

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
  // false: the v1beta1 routes answer 404, as for a server that only speaks v1.
  bool serve_v1beta1 = true;
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
  SimResponse perform(const std::string& operation, ApiVersion version, const SimRequest& request,
                      const std::string& token_id);
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
// The Error body for `status` with `message` and a fresh requestId (the
// shape both versions share: no fieldErrors).
SimResponse error_response(int status, std::string message);

// The v1 FieldValidationError for a validation message that starts with the
// field at fault ("roles[1].deploymentId is required …", "missing required
// field name", "sorts: …"); nullopt when the message names no request field.
// `code` is "required", "not_found" or "invalid"; `message` is the whole message.
std::optional<v1::FieldError> field_error_of(std::string_view message);

}  // namespace tokend::sim
