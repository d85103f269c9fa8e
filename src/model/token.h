// model/ — the vocabulary every other module shares: entity types, roles, the
// attributes of an API token, timestamps and the secret wrapper.
//
// Plain values only. Nothing here does I/O, reads a clock, or knows about TOML,
// JSON, HTTP or SQLite; those live in spec/, astro/ and state/.
#pragma once

#include <chrono>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tokend {

// The kind of an Astro entity a role is scoped to. Declaration order is the
// canonical sort order. A token's type (the v1 API's `scope`) is one of the
// first three only; DAG and DAG_TAG exist only as role entities, always inside
// a deployment.
enum class EntityType { Organization, Workspace, Deployment, Dag, DagTag };

// "ORGANIZATION", "WORKSPACE", "DEPLOYMENT", "DAG", "DAG_TAG".
std::string_view to_string(EntityType type);
// Exact, case-sensitive match of the API spelling of any entity type; nullopt
// otherwise.
std::optional<EntityType> parse_entity_type(std::string_view text);

// True for ORGANIZATION, WORKSPACE and DEPLOYMENT: the types a token can have.
bool is_token_type(EntityType type);
// True for DAG and DAG_TAG: the entities that lie inside a deployment, whose
// roles name it (Role::deployment_id).
bool is_dag_entity(EntityType type);
// parse_entity_type() restricted to the token types; nullopt for "DAG",
// "DAG_TAG" and anything else.
std::optional<EntityType> parse_token_type(std::string_view text);

// One role binding of a token: `role` on the entity `entity_id` of `entity_type`.
// For DAG and DAG_TAG roles `entity_id` is the DAG id or the tag value and
// `deployment_id` names the deployment holding them; for every other entity
// type `deployment_id` is empty.
struct Role {
  Role() = default;
  Role(std::string role_name, std::string entity, EntityType type, std::string deployment = {})
      : role(std::move(role_name)),
        entity_id(std::move(entity)),
        entity_type(type),
        deployment_id(std::move(deployment)) {}

  std::string role;
  std::string entity_id;
  EntityType entity_type = EntityType::Organization;
  std::string deployment_id;

  auto operator<=>(const Role&) const = default;
  bool operator==(const Role&) const = default;
};

// Roles are a set: order never matters. A RoleSet is kept sorted and free of
// duplicates by normalize_roles(); compare two normalized sets with ==.
using RoleSet = std::vector<Role>;
RoleSet normalize_roles(RoleSet roles);
// Whether `roles` is normalized already (sorted, no duplicates).
bool roles_normalized(const RoleSet& roles);
// Whether two role sets are the same set (without copying when both are
// normalized already).
bool same_roles(const RoleSet& a, const RoleSet& b);

// The role whose entity_type equals `type` (the token's primary role), or
// nullopt when there is none or more than one.
std::optional<Role> primary_role(const RoleSet& roles, EntityType type);

// How a token authenticates: STANDARD tokens, or DIRECT_ACCESS tokens. The API
// fixes the kind at creation.
enum class TokenKind { Standard, DirectAccess };

// "STANDARD", "DIRECT_ACCESS".
std::string_view to_string(TokenKind kind);
// Exact, case-sensitive match of the API spelling; nullopt otherwise.
std::optional<TokenKind> parse_token_kind(std::string_view text);

// Whole seconds since the Unix epoch, UTC. The API speaks whole seconds.
using Timestamp = std::chrono::sys_seconds;

// "2022-11-22T04:37:12Z".
std::string format_rfc3339(Timestamp t);
// Accepts "YYYY-MM-DDTHH:MM:SSZ", optional fractional seconds, and a numeric
// offset ("+02:00"); nullopt when the text is not such a timestamp.
std::optional<Timestamp> parse_rfc3339(std::string_view text);

// The attributes of a token that the API stores and astro-tokend manages.
// Shared by the desired (spec), recorded (state) and observed (API) views.
struct TokenAttrs {
  std::string name;
  std::string description;
  EntityType type = EntityType::Organization;  // a token type: is_token_type(type)
  std::string role;                          // the role on the entity of `type` (the primary role)
  RoleSet roles;                             // normalized
  std::optional<int> expiry_period_in_days;  // nullopt: never expires
  TokenKind kind = TokenKind::Standard;

  bool operator==(const TokenAttrs&) const = default;
};

// A token's secret value. It can be moved around but never printed: streaming
// it yields "(sensitive value)". Call reveal() only where the value is sent to
// its sink or fingerprinted.
class SecretValue {
 public:
  SecretValue() = default;
  explicit SecretValue(std::string value) : value_(std::move(value)) {}

  const std::string& reveal() const { return value_; }
  bool empty() const { return value_.empty(); }

 private:
  std::string value_;
};
std::ostream& operator<<(std::ostream& out, const SecretValue&);

// "astro_api_token.<key>".
std::string address_for_key(std::string_view key);
// The key of an address, or nullopt when `address` is not "astro_api_token.<key>".
std::optional<std::string> key_for_address(std::string_view address);

}  // namespace tokend
