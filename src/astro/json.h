// JSON bodies of the Astro API, both directions: the v1beta1 IAM API
// (shared/astro-openapi/iam.yaml), whose shapes the client and astro-api-sim's
// v1beta1 routes share, and the v1 API (v1.yaml) in the directions the client
// needs (its requests out, the answers in). Where the versions differ a
// function takes the ApiVersion; its default is v1beta1, the shape the
// simulator's v1beta1 routes speak (the simulator's v1 bodies are its own,
// sim/v1_json.h, so that the contract tests hold both sides independently).
//
// v1 over v1beta1: `scope` where v1beta1 says `type`, `kind` (required in
// answers, always sent on create), `lastRotatedAt`, roles on DAG and DAG_TAG
// entities with `deploymentId`, and Error.fieldErrors. Field names follow the
// published schemas. Decoders tolerate unknown fields and report a missing or
// mistyped required field as Error Invalid naming the field; they never
// throw.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "astro/client.h"

namespace tokend::astro::json {

// Schema ApiToken. The secret `token` field is written only when
// `include_secret` is true (create and rotate answers). The encoder writes
// the v1beta1 shape. The v1 decoder keeps `deploymentId` on DAG and DAG_TAG
// roles only (it names nothing on the other entity types).
std::string encode_token(const ApiToken& token, bool include_secret);
Result<ApiToken> decode_token(const std::string& body, ApiVersion version = ApiVersion::V1Beta1);

// Schema ApiTokensPaginated.
struct TokenPage {
  std::vector<ApiToken> tokens;
  int total_count = 0;
  int offset = 0;
  int limit = 0;
};
std::string encode_token_page(const TokenPage& page);  // v1beta1
Result<TokenPage> decode_token_page(const std::string& body,
                                    ApiVersion version = ApiVersion::V1Beta1);
// As decode_token_page, calling `counted(total_count, tokens)` at most once,
// as soon as the page's totalCount and the length of its tokens array are
// known (the decode may still fail afterwards), so that a caller can ask for
// the next page meanwhile.
Result<TokenPage> decode_token_page(const std::string& body, ApiVersion version,
                                    const std::function<void(int, std::size_t)>& counted);
// The decoder above takes a well-formed page in one pass (scan_token_page in
// astro/page_scanner.h) and anything else through a Poco parse tree, which
// reports what is wrong. This is the parse-tree decoder alone, for the tests
// and the fuzz target that compare the two.
Result<TokenPage> decode_token_page_via_tree(
    const std::string& body, ApiVersion version,
    const std::function<void(int, std::size_t)>& counted = {});

// Schema CreateApiTokenRequest (entityId omitted when empty,
// tokenExpiryPeriodInDays omitted when nullopt; v1 always writes `kind`,
// v1beta1 cannot express it). The decoder reads the v1beta1 shape.
std::string encode_create_request(const CreateTokenRequest& request,
                                  ApiVersion version = ApiVersion::V1Beta1);
Result<CreateTokenRequest> decode_create_request(const std::string& body);

// Schema UpdateApiTokenRequest.
std::string encode_update_request(const UpdateTokenRequest& request);
Result<UpdateTokenRequest> decode_update_request(const std::string& body);

// Schema UpdateApiTokenRolesRequest ({"roles": [ApiTokenRole…]}). v1 writes
// `deploymentId` on DAG and DAG_TAG roles; v1beta1 has no such roles (the
// client never asks it to encode one). The decoder reads the v1beta1 shape.
std::string encode_roles_request(const RoleSet& roles, ApiVersion version = ApiVersion::V1Beta1);
Result<RoleSet> decode_roles_request(const std::string& body);

// Schema SubjectRoles (the answer to UpdateApiTokenRoles), v1beta1.
std::string encode_subject_roles(const RoleSet& roles);

// Schema FieldValidationError (v1 Error.fieldErrors).
struct FieldError {
  std::string code;
  std::string field;
  std::string message;
};
// Schema Error.
struct ErrorBody {
  std::string message;
  std::string request_id;
  int status_code = 0;
  std::vector<FieldError> field_errors{};  // v1 only; read, never written
};
std::string encode_error(const ErrorBody& error);  // v1beta1
// nullopt when the body is not an Error object. Reads fieldErrors when
// present; an unreadable fieldErrors list is left out.
std::optional<ErrorBody> decode_error(const std::string& body);
// The error's message with its field errors, for an Error: "MESSAGE (FIELD:
// WHAT; …)", WHAT being the field error's message, or its code when the
// message adds nothing to MESSAGE. Just MESSAGE without field errors.
std::string describe(const ErrorBody& error);

// The ids and totalCount of a WorkspacesPaginated / DeploymentsPaginated page
// (`collection` is "workspaces" or "deployments"), alike in both versions.
struct IdPage {
  std::vector<std::string> ids;
  int total_count = 0;
};
Result<IdPage> decode_id_page(const std::string& body, const std::string& collection);

}  // namespace tokend::astro::json
