// The simulated organization: its workspaces, deployments and API tokens, and
// the rules the Astro API applies when tokens are created or changed.
//
// One organization's state serves both API versions (api.h): the model holds
// everything v1 can express (kind, lastRotatedAt, DAG and DAG_TAG roles with
// their deployment); the v1beta1 routes show each token without what their
// contract cannot express.
//
// Thread-safe: every method may be called from any request thread. Reads
// share a lock; writes take it exclusively. Failures come back as Error
// values: kind Invalid (the API answers 400) or NotFound (404), with a
// message that starts with the offending field ("roles[1].deploymentId: …",
// "name must be …") whenever one field is at fault. Secret token values are
// returned only by create_tokens() and rotate_token(), and kept in memory
// only for issued_values().
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "astro/client.h"
#include "astro/json.h"
#include "util/clock.h"
#include "util/result.h"

namespace tokend::sim {

struct Workspace {
  std::string id;
  std::string name;
  std::string description;
  Timestamp created_at{};
};

struct Deployment {
  std::string id;
  std::string name;
  std::string description;
  std::string workspace_id;
  Timestamp created_at{};
};

// A token to create out of band (seed file, bulk control): a
// CreateApiTokenRequest, optionally a fixed id, and optionally a full role
// set applied afterwards exactly as UpdateApiTokenRoles would.
struct NewToken {
  astro::CreateTokenRequest request;
  std::optional<RoleSet> roles;
  std::string id;  // empty: generated
};

// The query of ListApiTokens, already checked for syntax. Without
// `dag_roles` (v1beta1) the filters look only at a token's other roles, as a
// v1beta1 client sees them.
struct TokenQuery {
  int offset = 0;
  int limit = 20;
  std::string workspace_id;           // empty: no filter
  std::string deployment_id;          // empty: no filter (also matches DAG roles on it)
  std::string dag_id;                 // empty: no filter; a DAG role on this DAG id
  std::vector<std::string> dag_tags;  // empty: no filter; a DAG_TAG role on one of them
  std::optional<TokenKind> kind;      // nullopt: no filter
  bool only_organization_tokens = false;
  bool dag_roles = true;
  // "name:asc" …, validated by list_tokens(). Ties (and no sorts at all) keep
  // the creation order, so the order is total and stable across pages.
  std::vector<std::string> sorts;
};

// The query of ListWorkspaces / ListDeployments.
struct EntityQuery {
  int offset = 0;
  int limit = 20;
  std::vector<std::string> ids;  // workspaceIds or deploymentIds
  std::vector<std::string> names;
  std::vector<std::string> workspace_ids;  // ListDeployments only
  std::vector<std::string> sorts;
};

template <typename T>
struct Page {
  std::vector<T> items;
  int total_count = 0;
  int offset = 0;
  int limit = 0;
};

// An out-of-band change (drift, ageing). Each engaged field replaces the
// token's value; `end_at`, `last_used_at`, `last_rotated_at` and
// `expiry_period_in_days` can be cleared with an engaged nullopt.
// `updated_at` defaults to now.
struct TokenPatch {
  std::optional<std::string> name;
  std::optional<std::string> description;
  std::optional<RoleSet> roles;
  std::optional<TokenKind> kind;
  std::optional<Timestamp> start_at;
  std::optional<Timestamp> created_at;
  std::optional<Timestamp> updated_at;
  std::optional<std::optional<Timestamp>> end_at;
  std::optional<std::optional<Timestamp>> last_used_at;
  std::optional<std::optional<Timestamp>> last_rotated_at;
  std::optional<std::optional<int>> expiry_period_in_days;
};

// The role names built into Astro, by the entity type they belong to. Any
// other non-empty name is a custom role, fit for a DEPLOYMENT, DAG or
// DAG_TAG entity.
bool is_organization_role(std::string_view role);
bool is_workspace_role(std::string_view role);
bool is_dag_role(std::string_view role);  // DAG_VIEWER, DAG_AUTHOR
bool role_fits_entity_type(std::string_view role, EntityType type);

// The roles a v1beta1 client sees: all but DAG and DAG_TAG roles.
RoleSet without_dag_roles(const RoleSet& roles);

// Number of Unicode code points in UTF-8 `text`.
size_t count_code_points(std::string_view text);

class Organization {
 public:
  Organization(std::string id, std::vector<Workspace> workspaces,
               std::vector<Deployment> deployments, const Clock& clock);

  const std::string& id() const { return id_; }

  // CreateApiToken. The answer carries the new secret value.
  Result<astro::ApiToken> create_token(const astro::CreateTokenRequest& request);
  // Creates all or none (every entry is validated first). Answers carry values.
  Result<std::vector<astro::ApiToken>> create_tokens(const std::vector<NewToken>& tokens);
  Result<astro::ApiToken> get_token(const std::string& token_id) const;
  // UpdateApiToken; `description` nullopt keeps the current one.
  Result<astro::ApiToken> update_token(const std::string& token_id, const std::string& name,
                                       const std::optional<std::string>& description);
  // UpdateApiTokenRoles; answers the normalized role set now held. With
  // `keep_dag_roles` (the v1beta1 route, whose roles cannot name DAGs) the
  // token's DAG and DAG_TAG roles stay and `roles` replaces the others.
  Result<RoleSet> update_token_roles(const std::string& token_id, const RoleSet& roles,
                                     bool keep_dag_roles = false);
  // RotateApiToken: same id, new value, new startAt, endAt = startAt + expiry,
  // lastRotatedAt = now.
  Result<astro::ApiToken> rotate_token(const std::string& token_id);
  Status delete_token(const std::string& token_id);
  Result<astro::json::TokenPage> list_tokens(const TokenQuery& query) const;
  Result<Page<Workspace>> list_workspaces(const EntityQuery& query) const;
  Result<Page<Deployment>> list_deployments(const EntityQuery& query) const;

  // Out-of-band controls. patch_token() applies no API validation beyond
  // the shape (drift may be anything the real API could end up holding).
  Result<astro::ApiToken> patch_token(const std::string& token_id, const TokenPatch& patch);
  std::vector<astro::ApiToken> all_tokens() const;  // creation order, without values
  size_t token_count() const;
  // Every token value issued since start, in issue order.
  std::vector<std::string> issued_values() const;
  const Workspace* find_workspace(const std::string& workspace_id) const;
  const Deployment* find_deployment(const std::string& deployment_id) const;

  // Persistence. revision() grows with every token change. encode_data()
  // snapshots the tokens (never their values) as a v1 ApiTokensPaginated
  // document holding every token plus "format" and "organizationId";
  // load_data() replaces all tokens with such a snapshot, also one written
  // before v1 (v1beta1 token shapes: `type`, no `kind`); Invalid when it is
  // malformed or belongs to another organization.
  uint64_t revision() const { return revision_.load(); }
  std::string encode_data() const;
  Status load_data(const std::string& json);
  // Called (outside the lock) after every token change. Set before serving.
  void set_change_listener(std::function<void()> listener) { listener_ = std::move(listener); }

 private:
  using Lock = std::unique_lock<std::shared_mutex>;
  using SharedLock = std::shared_lock<std::shared_mutex>;

  Status validate_new_token(const NewToken& token) const;
  Status validate_roles(EntityType type, const RoleSet& roles, const std::string& context) const;
  astro::ApiToken* find(const std::string& token_id);
  const astro::ApiToken* find(const std::string& token_id) const;
  std::string generate_id();
  std::string generate_value(const std::string& token_id);
  astro::ApiToken insert_new(const NewToken& token, Timestamp now);
  void changed();

  const std::string id_;
  const std::vector<Workspace> workspaces_;
  const std::vector<Deployment> deployments_;
  std::unordered_map<std::string, size_t> workspace_index_;
  std::unordered_map<std::string, size_t> deployment_index_;
  const Clock& clock_;

  mutable std::shared_mutex mutex_;
  std::map<uint64_t, astro::ApiToken> tokens_;             // by creation sequence
  std::unordered_map<std::string, uint64_t> sequence_of_;  // token id -> sequence
  uint64_t next_sequence_ = 1;
  std::vector<std::string> issued_values_;
  std::mt19937_64 random_;
  uint64_t id_counter_ = 0;

  std::atomic<uint64_t> revision_{0};
  std::function<void()> listener_;
};

}  // namespace tokend::sim
