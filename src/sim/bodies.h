// JSON bodies that belong to the simulator alone: the seed file, the
// Workspace and Deployment pages of the lookups, and the token controls
// under /_sim/. (The v1beta1 IAM bodies shared with the client are in
// astro/json.h, the v1 token bodies in sim/v1_json.h.) Token bodies under
// /_sim/ and in the seed file speak v1 (scope, kind, roles with deploymentId)
// and also accept the v1beta1 `type` for `scope`. Decoders never throw; they
// return Invalid with a message naming the field. Encoders and decoders
// round-trip.
#pragma once

#include <string>
#include <vector>

#include "sim/org.h"

namespace tokend::sim {

// The two API versions served at once, each in its own contract's shape.
enum class ApiVersion { V1, V1Beta1 };

// The seed file (--seed):
//   {"workspaces":  [{"id": "...", "name": "...", "description": "..."}],
//    "deployments": [{"id": "...", "name": "...", "workspaceId": "...", "description": "..."}],
//    "tokens":      [NewToken…]}
// Every key is optional. Ids of workspaces and deployments are required and
// unique; a deployment's workspaceId must name a seeded workspace. Tokens are
// created at start exactly as POST /_sim/tokens would create them. DAGs are
// not seeded: like the API, the simulator takes any DAG id or tag value on an
// existing deployment.
struct Seed {
  std::vector<Workspace> workspaces;
  std::vector<Deployment> deployments;
  std::vector<NewToken> tokens;
};
// Workspace clx42sxw501gl01o0gjenthnh with deployment clyn6kxud003x01mtxmccegnh.
Seed default_seed(Timestamp now);
Result<Seed> decode_seed(const std::string& json, Timestamp now);

// A NewToken in JSON: the v1 CreateApiTokenRequest fields (name,
// description, scope (or type), kind, role, entityId,
// tokenExpiryPeriodInDays) plus optional "id" and "roles" (a full v1
// ApiTokenRole set, DAG roles included, applied as UpdateApiTokenRoles would).
std::string encode_new_token(const NewToken& token);

// POST /_sim/tokens: either {"tokens": [NewToken…]} or
// {"template": NewToken, "count": N} (names get "-1" … "-N" appended);
// "includeValues": true asks for the secret values in the answer.
struct BulkCreate {
  std::vector<NewToken> tokens;
  bool include_values = false;
};
std::string encode_bulk_create(const BulkCreate& request);
Result<BulkCreate> decode_bulk_create(const std::string& body);
// The answer: {"ids": [...], "values": [...]} ("values" only when asked for).
struct BulkCreated {
  std::vector<std::string> ids;
  std::vector<std::string> values;
};
std::string encode_bulk_created(const BulkCreated& created);
Result<BulkCreated> decode_bulk_created(const std::string& body);

// PATCH /_sim/tokens/{id}: any of name, description, roles (v1 ApiTokenRole,
// with deploymentId), kind, startAt, createdAt, updatedAt, endAt (null
// clears), lastUsedAt (null clears), lastRotatedAt (null clears),
// expiryPeriodInDays (null clears). Unknown fields are rejected.
std::string encode_token_patch(const TokenPatch& patch);
Result<TokenPatch> decode_token_patch(const std::string& body);

// WorkspacesPaginated / DeploymentsPaginated with every field the published
// schemas require, filled with plausible values; v1 Deployments also carry
// apiUrl and uiUrl.
std::string encode_workspace_page(const Page<Workspace>& page, const std::string& org_id);
std::string encode_deployment_page(const Page<Deployment>& page, const Organization& org,
                                   ApiVersion version);

// {"values": [...]} for GET /_sim/issued-values.
std::string encode_string_list(const std::string& key, const std::vector<std::string>& values);
Result<std::vector<std::string>> decode_string_list(const std::string& body,
                                                    const std::string& key);

}  // namespace tokend::sim
