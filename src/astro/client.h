// astro/ — the conversation with the Astro API (shared/astro-openapi/: v1,
// or the deprecated v1beta1 IAM and Platform APIs): one request/result pair
// per operation, JSON mapping, retries with backoff, per-method rate limits,
// TLS.
//
// May not: read specs or state, decide what to change, or let a Poco
// exception escape. Every failure comes back as an Error whose kind tells the
// caller whether retrying or resolving (Ambiguous) is its job. Secrets (the
// bearer token and token values) never appear in an Error or a log line.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "astro/types.h"
#include "model/token.h"
#include "util/result.h"

namespace tokend::astro {

// Called once per HTTP exchange (including each retry) with the HTTP status,
// or 0 when no answer arrived, and the exchange's wall time (connect, send,
// wait and read; not the rate limiter's wait). Used for metrics and run
// history. Must be thread-safe; must not block.
using RequestObserver =
    std::function<void(Operation op, int http_status, std::chrono::duration<double> elapsed)>;

// The API seam. Implementations: HttpClient (real HTTP/HTTPS) and FakeClient
// (in memory, for unit tests). All methods are thread-safe.
class Client {
 public:
  virtual ~Client() = default;

  // Every token in the organization, following pages (limit 1000, oldest
  // first: sorts=createdAt:asc) to the end; see TokenListing for what an
  // inconsistent listing means.
  virtual Result<TokenListing> list_tokens() = 0;
  virtual Result<ApiToken> get_token(const std::string& token_id) = 0;
  // Not idempotent: on an ambiguous failure returns ErrorKind::Ambiguous.
  virtual Result<ApiToken> create_token(const CreateTokenRequest& request) = 0;
  virtual Result<ApiToken> update_token(const std::string& token_id,
                                        const UpdateTokenRequest& request) = 0;
  virtual Status update_token_roles(const std::string& token_id, const RoleSet& roles) = 0;
  // Not idempotent: on an ambiguous failure returns ErrorKind::Ambiguous.
  virtual Result<ApiToken> rotate_token(const std::string& token_id) = 0;
  // NotFound when the token is already gone.
  virtual Status delete_token(const std::string& token_id) = 0;

  // Of `ids`, those that exist in the organization. One paginated lookup for
  // the whole list (never capped at the API's default page size).
  virtual Result<std::vector<std::string>> existing_workspaces(
      const std::vector<std::string>& ids) = 0;
  virtual Result<std::vector<std::string>> existing_deployments(
      const std::vector<std::string>& ids) = 0;

  // Closes the connections kept open for reuse. For a caller that is about
  // to wait longer than a server keeps an idle connection (the daemon between
  // cycles): it then holds no socket while it waits. The next request opens a
  // new connection. A client without connections does nothing.
  virtual void close_idle_connections() {}
};

}  // namespace tokend::astro
