// The plain values astro/ exchanges with the Astro API: tokens as the API
// reports them, the write requests, and the operation names. No I/O; other
// modules (plan/, state/ callers) may name these without naming the Client
// seam (client.h, which also states the module's contract).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/token.h"

namespace tokend::astro {

// An API token as the API reports it (schema ApiToken).
struct ApiToken {
  std::string id;
  std::string name;
  std::string description;
  EntityType type = EntityType::Organization;  // a token type (v1 `scope`)
  TokenKind kind = TokenKind::Standard;
  RoleSet roles;  // normalized
  std::optional<int> expiry_period_in_days;
  std::string short_token;
  Timestamp created_at{};
  Timestamp updated_at{};
  Timestamp start_at{};
  std::optional<Timestamp> end_at;
  std::optional<Timestamp> last_used_at;
  std::optional<Timestamp> last_rotated_at;  // read-only; set by rotate
  SecretValue token;                         // only present in the answers to create and rotate

  // The attributes astro-tokend manages; `role` is the primary role's name.
  TokenAttrs attrs() const;
};

// Every token a listing of the organization returned (ListApiTokens, all
// pages). A listing is paged by offset, so tokens created or deleted while it
// runs shift the pages under it: `consistent` is false when the pages
// contradict each other (a token id on two pages, totalCount changing between
// pages, or fewer tokens than totalCount said). An inconsistent listing may
// lack tokens that exist; a consistent one can still lack some when the API
// misreports totalCount. Either way a token the listing does not show is not
// proven gone: only a GetApiToken answering 404 proves that.
struct TokenListing {
  std::vector<ApiToken> tokens;  // each id once, in the order listed
  bool consistent = true;
  std::string problem;  // what was inconsistent, for logs; "" when consistent
};

// CreateApiTokenRequest.
struct CreateTokenRequest {
  std::string name;
  std::string description;
  EntityType type = EntityType::Organization;  // a token type (v1 `scope`)
  std::string role;
  std::string entity_id;  // required for WORKSPACE and DEPLOYMENT, empty for ORGANIZATION
  std::optional<int> expiry_period_in_days;
  TokenKind kind = TokenKind::Standard;
};

// UpdateApiTokenRequest.
struct UpdateTokenRequest {
  std::string name;
  std::string description;
};

// Which Astro API the client speaks. V1 (GA): every operation under
// {api_url}/v1/organizations/{org}. V1Beta1 (deprecated; support ends in
// January 2027): tokens under {api_url}/iam/v1beta1, lookups under
// {api_url}/platform/v1beta1, without kind, lastRotatedAt or DAG roles.
enum class ApiVersion { V1, V1Beta1 };
// "v1", "v1beta1".
std::string_view to_string(ApiVersion version);
// Exact match of "v1" or "v1beta1"; nullopt otherwise.
std::optional<ApiVersion> parse_api_version(std::string_view text);

// The operations astro-tokend uses, named after their operationId.
enum class Operation {
  ListApiTokens,
  GetApiToken,
  CreateApiToken,
  UpdateApiToken,
  UpdateApiTokenRoles,
  RotateApiToken,
  DeleteApiToken,
  ListWorkspaces,
  ListDeployments,
};
std::string_view to_string(Operation op);

}  // namespace tokend::astro
