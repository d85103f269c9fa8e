// JSON bodies of the Astro IAM API (shared/astro-openapi/iam.yaml), both
// directions, so that the client and astro-api-sim speak exactly the same
// shapes. Field names follow the published schemas. Decoders tolerate unknown
// fields and report a missing or mistyped required field as Error Invalid
// naming the field; they never throw.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "astro/client.h"

namespace tokend::astro::json {

// Schema ApiToken. The secret `token` field is written only when
// `include_secret` is true (create and rotate answers).
std::string encode_token(const ApiToken& token, bool include_secret);
Result<ApiToken> decode_token(const std::string& body);

// Schema ApiTokensPaginated.
struct TokenPage {
  std::vector<ApiToken> tokens;
  int total_count = 0;
  int offset = 0;
  int limit = 0;
};
std::string encode_token_page(const TokenPage& page);
Result<TokenPage> decode_token_page(const std::string& body);

// Schema CreateApiTokenRequest (entityId omitted when empty,
// tokenExpiryPeriodInDays omitted when nullopt).
std::string encode_create_request(const CreateTokenRequest& request);
Result<CreateTokenRequest> decode_create_request(const std::string& body);

// Schema UpdateApiTokenRequest.
std::string encode_update_request(const UpdateTokenRequest& request);
Result<UpdateTokenRequest> decode_update_request(const std::string& body);

// Schema UpdateApiTokenRolesRequest ({"roles": [ApiTokenRole…]}).
std::string encode_roles_request(const RoleSet& roles);
Result<RoleSet> decode_roles_request(const std::string& body);

// Schema SubjectRoles (the answer to UpdateApiTokenRoles).
std::string encode_subject_roles(const RoleSet& roles);

// Schema Error.
struct ErrorBody {
  std::string message;
  std::string request_id;
  int status_code = 0;
};
std::string encode_error(const ErrorBody& error);
// nullopt when the body is not an Error object.
std::optional<ErrorBody> decode_error(const std::string& body);

// The ids and totalCount of a WorkspacesPaginated / DeploymentsPaginated page
// (`collection` is "workspaces" or "deployments").
struct IdPage {
  std::vector<std::string> ids;
  int total_count = 0;
};
Result<IdPage> decode_id_page(const std::string& body, const std::string& collection);

}  // namespace tokend::astro::json
