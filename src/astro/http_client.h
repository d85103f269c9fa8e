// HttpClient: the production Client, speaking HTTP or HTTPS to the Astro API
// with Poco: by default v1, every operation under
// {api_url}/v1/organizations/{org}; with ApiVersion::V1Beta1 the deprecated
// IAM API ({api_url}/iam/v1beta1) for tokens and Platform API
// ({api_url}/platform/v1beta1) for the lookups. Both versions name the same
// tokens by the same ids.
//
// Behaviour every caller may rely on:
// - Thread-safe. Parallel callers share a small pool of keep-alive
//   connections; a request holds one connection for its duration.
// - Every request first waits for the per-method RateLimiter; a 429 pauses
//   that method for Retry-After (or the backoff when absent).
// - Idempotent operations (list, get, update, roles, delete, lookups) are
//   retried on 429, 5xx, timeouts, resets and refused connections with
//   capped exponential backoff and full jitter (RetryPolicy). Create and
//   rotate are retried only when the request never left (could not connect)
//   or on 429; any other failure after sending — timeout, reset, close without
//   answer, 5xx, or a success whose body cannot be read — is
//   ErrorKind::Ambiguous and is not retried. They always use a freshly opened
//   connection, so that a stale pooled connection cannot make them ambiguous.
// - A request the contract forbids is refused locally with Invalid and never
//   sent (create: tokenExpiryPeriodInDays outside 1..3650; update: name not
//   1..256 characters or description over 500; roles: an empty set, a DAG or
//   DAG_TAG role without deployment_id). Under v1beta1 also what that
//   version cannot express: a DIRECT_ACCESS create, DAG and DAG_TAG roles.
// - Listing pages with limit 1000 and offset; array query parameters repeat
//   their key (`?workspaceIds=a&workspaceIds=b`).
// - Other 4xx are never retried. Statuses map to ErrorKind as in retry.h; the
//   Error carries the API's `message` (with v1's `fieldErrors`, each as
//   "field: message") and `requestId`. A DELETE answering 404 is NotFound.
// - Every exchange is bounded. `request_timeout` is a deadline for the whole
//   exchange (connect, send, wait for the answer, read its status line,
//   headers and body), however slowly the bytes come: a RequestWatch shuts
//   the socket down at the deadline. An answer whose body is still arriving
//   at the deadline is not retried (the server answers, too slowly to be of
//   use).
//   An answer over `max_response_bytes` (its Content-Length, or the bytes
//   read) is an error naming the cap, and what was read is dropped. A
//   listing reads at most totalCount / 1000 + kPageSlack pages, and a page
//   that lists nothing new ends it with an error.
// - Back-off and rate-limit waits end early when `stop` is raised (a
//   shutdown): the request then fails with Unavailable "…: not sent,
//   shutting down" without being sent again (for create and rotate this only
//   happens before a first send or after a 429 or a refused connection, so
//   it is never ambiguous). An exchange in flight when `stop` is raised is
//   cut: a GET at once (Unavailable "…: cut short by shutdown"), a write
//   after RequestWatch::kWriteGraceOnStop if its answer has not come by then
//   (for create and rotate Ambiguous, like any answer lost after sending).
// - TLS verification is always on (system CAs plus `ca_file`); a handshake or
//   certificate failure is ErrorKind::Tls and is not retried.
// - The bearer token and token values never appear in a log line or an Error.
// - No exception escapes.
#pragma once

#include <Poco/AutoPtr.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "astro/client.h"
#include "astro/rate_limiter.h"
#include "astro/request_watch.h"
#include "astro/retry.h"
#include "model/token.h"
#include "util/log.h"
#include "util/result.h"

namespace Poco::Net {
class Context;
}

namespace tokend::astro {

class HttpConnection;  // one pooled keep-alive connection (http_client.cpp)

struct HttpClientOptions {
  std::string api_url =
      "https://api.astronomer.io";  // scheme http or https, host, optional port and path
  std::string organization_id;
  ApiVersion api_version = ApiVersion::V1;
  SecretValue bearer_token;
  std::chrono::milliseconds connect_timeout{10000};  // TCP connect plus TLS handshake
  std::chrono::milliseconds request_timeout{30000};  // deadline of each exchange as a whole
  size_t max_response_bytes = size_t{64} << 20;      // cap of one answer's body
  const std::atomic<bool>* stop = nullptr;           // raised: waits end, nothing more is sent
  std::string ca_file;  // extra CA bundle (PEM file or hashed directory); "" = system CAs only
  RateLimits rate_limits;
  RetryPolicy retry;
  RequestObserver observer;         // optional
  size_t max_idle_connections = 8;  // kept open for reuse
};

class HttpClient final : public Client {
 public:
  // Invalid when api_url is not an http(s) URL with a host or organization_id
  // is empty; Io when ca_file cannot be read; Tls when the TLS context cannot
  // be set up. `logger` must outlive the client.
  static Result<std::unique_ptr<HttpClient>> create(HttpClientOptions options, Logger& logger);
  ~HttpClient() override;

  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  Result<TokenListing> list_tokens() override;
  Result<ApiToken> get_token(const std::string& token_id) override;
  Result<ApiToken> create_token(const CreateTokenRequest& request) override;
  Result<ApiToken> update_token(const std::string& token_id,
                                const UpdateTokenRequest& request) override;
  Status update_token_roles(const std::string& token_id, const RoleSet& roles) override;
  Result<ApiToken> rotate_token(const std::string& token_id) override;
  Status delete_token(const std::string& token_id) override;
  Result<std::vector<std::string>> existing_workspaces(
      const std::vector<std::string>& ids) override;
  Result<std::vector<std::string>> existing_deployments(
      const std::vector<std::string>& ids) override;
  void close_idle_connections() override;

  // A filtered lookup names at most this many ids in its query string; a
  // longer list is checked against the unfiltered listing instead (still one
  // paginated lookup), which keeps URLs within server limits.
  static constexpr size_t kMaxIdsPerQuery = 200;
  // list_tokens and the lookups give up (Internal) after this many pages, or
  // after totalCount / 1000 + kPageSlack pages, whichever comes first.
  static constexpr int kMaxPages = 10000;
  static constexpr int kPageSlack = 3;

 private:
  struct Exchange;
  struct Answer;

  HttpClient(HttpClientOptions options, Logger& logger, std::string scheme, std::string host,
             uint16_t port, std::string base_path, Poco::AutoPtr<Poco::Net::Context> tls_context);

  // Runs one operation with limits and retries; on success the 2xx answer.
  Result<Answer> perform(const Exchange& exchange);
  Result<std::vector<std::string>> existing(Operation op, const std::string& collection,
                                            const std::string& filter,
                                            const std::vector<std::string>& ids);

  // A pooled connection, or a new unconnected one when `fresh` or none is idle.
  std::unique_ptr<HttpConnection> take_connection(bool fresh);
  void return_connection(std::unique_ptr<HttpConnection> connection);
  std::unique_ptr<HttpConnection> new_connection();

  Error scrubbed(Error error) const;
  double unit_random();

  HttpClientOptions options_;
  Logger& logger_;
  std::string scheme_;
  std::string host_;
  uint16_t port_ = 0;
  std::string tokens_prefix_;   // "/v1/organizations/<org>" or "/iam/v1beta1/organizations/<org>"
  std::string lookups_prefix_;  // "/v1/organizations/<org>" or "/platform/v1beta1/…"
  std::string user_agent_;
  Poco::AutoPtr<Poco::Net::Context> tls_context_;  // null for http
  RateLimiter limiter_;

  std::mutex pool_mutex_;
  std::vector<std::unique_ptr<HttpConnection>> idle_;

  std::mutex random_mutex_;
  std::mt19937_64 random_;

  RequestWatch watch_{options_.stop};  // cuts exchanges at their deadline or a shutdown
};

}  // namespace tokend::astro
