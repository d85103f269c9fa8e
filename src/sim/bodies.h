// JSON bodies that belong to the simulator alone: the seed file, the
// Workspace and Deployment pages of the Platform API, and the token controls
// under /_sim/. (The IAM bodies shared with the client are in astro/json.h.)
// Decoders never throw; they return Invalid with a message naming the field.
// Encoders and decoders round-trip.
#pragma once

#include <string>
#include <vector>

#include "sim/org.h"

namespace tokend::sim {

// The seed file (--seed):
//   {"workspaces":  [{"id": "...", "name": "...", "description": "..."}],
//    "deployments": [{"id": "...", "name": "...", "workspaceId": "...", "description": "..."}],
//    "tokens":      [NewToken…]}
// Every key is optional. Ids of workspaces and deployments are required and
// unique; a deployment's workspaceId must name a seeded workspace. Tokens are
// created at start exactly as POST /_sim/tokens would create them.
struct Seed {
  std::vector<Workspace> workspaces;
  std::vector<Deployment> deployments;
  std::vector<NewToken> tokens;
};
// Workspace clx42sxw501gl01o0gjenthnh with deployment clyn6kxud003x01mtxmccegnh.
Seed default_seed(Timestamp now);
Result<Seed> decode_seed(const std::string& json, Timestamp now);

// A NewToken in JSON: the CreateApiTokenRequest fields (name, description,
// type, role, entityId, tokenExpiryPeriodInDays) plus optional "id" and
// "roles" (a full ApiTokenRole set applied as UpdateApiTokenRoles would).
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

// PATCH /_sim/tokens/{id}: any of name, description, roles, startAt,
// createdAt, updatedAt, endAt (null clears), lastUsedAt (null clears),
// expiryPeriodInDays (null clears). Unknown fields are rejected.
std::string encode_token_patch(const TokenPatch& patch);
Result<TokenPatch> decode_token_patch(const std::string& body);

// WorkspacesPaginated / DeploymentsPaginated with every field the published
// schemas require, filled with plausible values.
std::string encode_workspace_page(const Page<Workspace>& page, const std::string& org_id);
std::string encode_deployment_page(const Page<Deployment>& page, const Organization& org);

// {"values": [...]} for GET /_sim/issued-values.
std::string encode_string_list(const std::string& key, const std::vector<std::string>& values);
Result<std::vector<std::string>> decode_string_list(const std::string& body,
                                                    const std::string& key);

}  // namespace tokend::sim
