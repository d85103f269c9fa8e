// The JSON bodies of the Astro API v1 (shared/astro-openapi/v1.yaml) as
// astro-api-sim speaks them, both directions: the answers its /v1/ routes
// encode and the requests they decode, and the reverse directions for its
// data file, its /_sim/ controls and the tests that drive them. The v1beta1
// bodies the simulator shares with the client are in astro/json.h; these are
// the simulator's own, so that the v1 contract tests hold the client's and
// the simulator's encodings to v1.yaml independently.
//
// What v1 adds over v1beta1: `scope` where v1beta1 says `type`, `kind`,
// `lastRotatedAt`, roles on DAG and DAG_TAG entities with `deploymentId`,
// SubjectRoles.dagRoles, and Error.fieldErrors. Decoders never throw; a
// missing or mistyped field is Error Invalid naming the field. Unknown fields
// are tolerated. Encoders and decoders round-trip.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "astro/json.h"
#include "astro/types.h"
#include "util/result.h"

namespace tokend::sim::v1 {

// Which spellings a decoder accepts. Legacy also takes what data files and
// /_sim/ bodies written for v1beta1 hold: `type` standing in for `scope`, and
// no `kind` (STANDARD).
enum class Dialect { V1, Legacy };

// Schema ApiToken. The secret `token` field is written only when
// `include_secret` is true (create and rotate answers); `deploymentId` only
// on DAG and DAG_TAG roles.
std::string encode_token(const astro::ApiToken& token, bool include_secret);
Result<astro::ApiToken> decode_token(const std::string& body, Dialect dialect = Dialect::V1);

// Schema ApiTokensPaginated.
std::string encode_token_page(const astro::json::TokenPage& page);
Result<astro::json::TokenPage> decode_token_page(const std::string& body,
                                                 Dialect dialect = Dialect::V1);

// Schema CreateApiTokenRequest (entityId omitted when empty,
// tokenExpiryPeriodInDays when nullopt; kind always written).
std::string encode_create_request(const astro::CreateTokenRequest& request);
Result<astro::CreateTokenRequest> decode_create_request(const std::string& body,
                                                        Dialect dialect = Dialect::V1);

// Schema UpdateApiTokenRolesRequest ({"roles": [ApiTokenRole…]}).
std::string encode_roles_request(const RoleSet& roles);
Result<RoleSet> decode_roles_request(const std::string& body);

// Schema SubjectRoles (the answer to UpdateApiTokenRoles): organizationRole,
// workspaceRoles, deploymentRoles and dagRoles ({dagId | dagTag,
// deploymentId, role}).
std::string encode_subject_roles(const RoleSet& roles);
Result<RoleSet> decode_subject_roles(const std::string& body, const std::string& org_id);

// Schema FieldValidationError and Error.
struct FieldError {
  std::string code;
  std::string field;
  std::string message;

  bool operator==(const FieldError&) const = default;
};
struct ErrorBody {
  std::string message;
  std::string request_id;
  int status_code = 0;
  std::vector<FieldError> field_errors;  // "fieldErrors" omitted when empty

  bool operator==(const ErrorBody&) const = default;
};
std::string encode_error(const ErrorBody& error);
// nullopt when the body is not an Error object.
std::optional<ErrorBody> decode_error(const std::string& body);

}  // namespace tokend::sim::v1
