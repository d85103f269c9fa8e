#include "sim/org.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Object.h>

#include <algorithm>
#include <array>
#include <functional>
#include <set>
#include <tuple>

#include "sim/v1_json.h"
#include "util/hash.h"
#include "util/json_parse.h"
#include "util/json_text.h"

namespace tokend::sim {

namespace {

using astro::ApiToken;

constexpr size_t kMaxNameLength = 256;
constexpr size_t kMaxDescriptionLength = 500;
constexpr int kMaxTokenPageSize = 1000;
constexpr int kMaxWorkspacePageSize = 1000;
constexpr std::string_view kDataFormat = "astro-api-sim-data";

Error invalid(std::string message) { return Error::invalid(std::move(message)); }
Error not_found(std::string message) { return Error::not_found(std::move(message)); }

constexpr std::array<std::string_view, 5> kOrganizationRoles = {
    "ORGANIZATION_OWNER", "ORGANIZATION_BILLING_ADMIN", "ORGANIZATION_MEMBER",
    "ORGANIZATION_OBSERVE_ADMIN", "ORGANIZATION_OBSERVE_MEMBER"};
constexpr std::array<std::string_view, 5> kWorkspaceRoles = {
    "WORKSPACE_OWNER", "WORKSPACE_OPERATOR", "WORKSPACE_AUTHOR", "WORKSPACE_MEMBER",
    "WORKSPACE_ACCESSOR"};
constexpr std::array<std::string_view, 2> kDagRoles = {"DAG_VIEWER", "DAG_AUTHOR"};
constexpr std::string_view kDeploymentAdmin = "DEPLOYMENT_ADMIN";

bool is_valid_token_id(std::string_view id) {
  if (id.size() != 25 || id[0] != 'c') return false;
  return std::all_of(id.begin(), id.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); });
}

std::string base36(uint64_t value, size_t width) {
  static constexpr char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string out(width, '0');
  for (size_t i = width; i > 0; --i) {
    out[i - 1] = kDigits[value % 36];
    value /= 36;
  }
  return out;
}

std::string base64url(std::string_view data) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((data.size() * 4 + 2) / 3);
  size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    uint32_t n = (static_cast<uint8_t>(data[i]) << 16) | (static_cast<uint8_t>(data[i + 1]) << 8) |
                 static_cast<uint8_t>(data[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  size_t rest = data.size() - i;
  if (rest > 0) {
    uint32_t n = static_cast<uint8_t>(data[i]) << 16;
    if (rest == 2) n |= static_cast<uint8_t>(data[i + 1]) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    if (rest == 2) out += kAlphabet[(n >> 6) & 63];
  }
  return out;
}

// Sort criteria: "field:asc" / "field:desc" with `field` in `allowed`.
struct SortKey {
  std::string field;
  bool descending = false;
};

Result<std::vector<SortKey>> parse_sorts(const std::vector<std::string>& sorts,
                                         std::initializer_list<std::string_view> allowed) {
  std::vector<SortKey> keys;
  for (const std::string& sort : sorts) {
    auto colon = sort.find(':');
    std::string field = sort.substr(0, colon);
    std::string direction = colon == std::string::npos ? "" : sort.substr(colon + 1);
    bool known = std::find(allowed.begin(), allowed.end(), field) != allowed.end();
    if (!known || (direction != "asc" && direction != "desc")) {
      std::string message = "sorts: '" + sort + "' is not one of";
      for (std::string_view a : allowed) message += " " + std::string(a) + ":asc|desc";
      return invalid(message);
    }
    keys.push_back({field, direction == "desc"});
  }
  return keys;
}

Status check_paging(int offset, int limit, int max_limit) {
  if (offset < 0) return invalid("offset must be a non-negative integer");
  if (limit < 0) return invalid("limit must be a non-negative integer");
  if (max_limit > 0 && limit > max_limit)
    return invalid("limit must be at most " + std::to_string(max_limit));
  return ok_status();
}

template <typename T>
Page<T> slice(const std::vector<const T*>& matching, int offset, int limit) {
  Page<T> page;
  page.total_count = static_cast<int>(matching.size());
  page.offset = offset;
  page.limit = limit;
  for (size_t i = static_cast<size_t>(offset);
       i < matching.size() && page.items.size() < static_cast<size_t>(limit); ++i)
    page.items.push_back(*matching[i]);
  return page;
}

// Three-way comparison of one field; `field` was validated by parse_sorts().
int compare_token_field(const ApiToken& a, const ApiToken& b, const std::string& field) {
  auto cmp = [](const auto& x, const auto& y) { return x < y ? -1 : (y < x ? 1 : 0); };
  if (field == "name") return cmp(a.name, b.name);
  if (field == "description") return cmp(a.description, b.description);
  if (field == "createdAt") return cmp(a.created_at, b.created_at);
  if (field == "updatedAt") return cmp(a.updated_at, b.updated_at);
  return cmp(a.start_at, b.start_at);  // tokenStartAt
}

template <typename T>
void sort_entities(std::vector<const T*>& items, const std::vector<SortKey>& keys) {
  if (keys.empty()) return;
  std::stable_sort(items.begin(), items.end(), [&](const T* a, const T* b) {
    for (const SortKey& key : keys) {
      int c = 0;
      if (key.field == "name")
        c = a->name < b->name ? -1 : (b->name < a->name ? 1 : 0);
      else  // createdAt, updatedAt: entities are never updated
        c = a->created_at < b->created_at ? -1 : (b->created_at < a->created_at ? 1 : 0);
      if (c != 0) return key.descending ? c > 0 : c < 0;
    }
    return false;
  });
}

bool contains(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

}  // namespace

bool is_organization_role(std::string_view role) {
  return std::find(kOrganizationRoles.begin(), kOrganizationRoles.end(), role) !=
         kOrganizationRoles.end();
}

bool is_workspace_role(std::string_view role) {
  return std::find(kWorkspaceRoles.begin(), kWorkspaceRoles.end(), role) != kWorkspaceRoles.end();
}

bool is_dag_role(std::string_view role) {
  return std::find(kDagRoles.begin(), kDagRoles.end(), role) != kDagRoles.end();
}

bool role_fits_entity_type(std::string_view role, EntityType type) {
  bool custom = !role.empty() && !is_organization_role(role) && !is_workspace_role(role) &&
                !is_dag_role(role) && role != kDeploymentAdmin;
  switch (type) {
    case EntityType::Organization:
      return is_organization_role(role);
    case EntityType::Workspace:
      return is_workspace_role(role);
    case EntityType::Deployment:
      return role == kDeploymentAdmin || custom;
    case EntityType::Dag:
    case EntityType::DagTag:
      return is_dag_role(role) || custom;
  }
  return false;
}

RoleSet without_dag_roles(const RoleSet& roles) {
  RoleSet out;
  for (const Role& role : roles)
    if (!is_dag_entity(role.entity_type)) out.push_back(role);
  return out;
}

size_t count_code_points(std::string_view text) {
  return static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

Organization::Organization(std::string id, std::vector<Workspace> workspaces,
                           std::vector<Deployment> deployments, const Clock& clock)
    : id_(std::move(id)),
      workspaces_(std::move(workspaces)),
      deployments_(std::move(deployments)),
      clock_(clock),
      random_(std::random_device{}()) {
  for (size_t i = 0; i < workspaces_.size(); ++i) workspace_index_[workspaces_[i].id] = i;
  for (size_t i = 0; i < deployments_.size(); ++i) deployment_index_[deployments_[i].id] = i;
}

const Workspace* Organization::find_workspace(const std::string& workspace_id) const {
  auto it = workspace_index_.find(workspace_id);
  return it == workspace_index_.end() ? nullptr : &workspaces_[it->second];
}

const Deployment* Organization::find_deployment(const std::string& deployment_id) const {
  auto it = deployment_index_.find(deployment_id);
  return it == deployment_index_.end() ? nullptr : &deployments_[it->second];
}

ApiToken* Organization::find(const std::string& token_id) {
  auto it = sequence_of_.find(token_id);
  return it == sequence_of_.end() ? nullptr : &tokens_.at(it->second);
}

const ApiToken* Organization::find(const std::string& token_id) const {
  auto it = sequence_of_.find(token_id);
  return it == sequence_of_.end() ? nullptr : &tokens_.at(it->second);
}

void Organization::changed() {
  ++revision_;
  if (listener_) listener_();
}

// Called with the lock held exclusively.
std::string Organization::generate_id() {
  auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  while (true) {
    std::string id = "c" + base36(static_cast<uint64_t>(millis), 8) + base36(id_counter_++, 4) +
                     base36(random_(), 12);
    if (!sequence_of_.contains(id)) return id;
  }
}

// Called with the lock held exclusively. A JWT-shaped value: header, payload
// naming the token, and 32 random bytes as the signature.
std::string Organization::generate_value(const std::string& token_id) {
  std::string signature;
  for (int i = 0; i < 4; ++i) {
    uint64_t r = random_();
    signature.append(reinterpret_cast<const char*>(&r), sizeof r);
  }
  std::string header = R"({"alg":"RS256","kid":"astro-api-sim","typ":"JWT"})";
  std::string payload = "{\"iss\":\"astro-api-sim\",\"org\":" + json_quote(id_) +
                        ",\"sub\":" + json_quote(token_id) +
                        ",\"jti\":" + json_quote(base36(random_(), 13) + base36(id_counter_++, 6)) +
                        ",\"iat\":" + std::to_string(clock_.now().time_since_epoch().count()) + "}";
  std::string value = base64url(header) + "." + base64url(payload) + "." + base64url(signature);
  issued_values_.push_back(value);
  return value;
}

Status Organization::validate_roles(EntityType type, const RoleSet& roles,
                                    const std::string& context) const {
  if (roles.empty()) return invalid(context + " must contain at least one role");
  int primary_count = 0;
  // (entity type, entity id, deployment id): a DAG id names a DAG only within its deployment.
  std::set<std::tuple<EntityType, std::string, std::string>> entities;
  std::set<Role> seen;
  const std::string token_type(to_string(type));
  for (size_t i = 0; i < roles.size(); ++i) {
    const Role& role = roles[i];
    if (!seen.insert(role).second) continue;  // an exact repeat changes nothing
    std::string item = context + "[" + std::to_string(i) + "]";
    const std::string entity_type(to_string(role.entity_type));
    if (role.role.empty()) return invalid(item + ".role must not be empty");
    if (!role_fits_entity_type(role.role, role.entity_type))
      return invalid(item + ".role " + role.role + " is not a valid " + entity_type + " role");
    if (!is_dag_entity(role.entity_type) && !role.deployment_id.empty())
      return invalid(item + ".deploymentId is only allowed on DAG and DAG_TAG roles, not on " +
                     entity_type);
    switch (role.entity_type) {
      case EntityType::Organization:
        if (role.entity_id != id_)
          return invalid(item + ".entityId must be the organization id " + id_);
        if (type != EntityType::Organization)
          return invalid(item + ": a " + token_type + " token cannot have an ORGANIZATION role");
        break;
      case EntityType::Workspace:
        if (!find_workspace(role.entity_id))
          return invalid(item + ".entityId: workspace " + role.entity_id + " not found");
        if (type == EntityType::Deployment)
          return invalid(item + ": a DEPLOYMENT token cannot have a WORKSPACE role");
        break;
      case EntityType::Deployment:
        if (!find_deployment(role.entity_id))
          return invalid(item + ".entityId: deployment " + role.entity_id + " not found");
        break;
      case EntityType::Dag:
      case EntityType::DagTag:
        if (role.deployment_id.empty())
          return invalid(item + ".deploymentId is required for a " + entity_type + " role");
        if (!find_deployment(role.deployment_id))
          return invalid(item + ".deploymentId: deployment " + role.deployment_id + " not found");
        if (role.entity_id.empty())
          return invalid(item + ".entityId must name the " +
                         (role.entity_type == EntityType::Dag ? "DAG id" : "tag value"));
        if (type != EntityType::Deployment)
          return invalid(item + ": " + (type == EntityType::Organization ? "an " : "a ") +
                         token_type + " token cannot have a " + entity_type + " role");
        break;
    }
    if (!entities.insert({role.entity_type, role.entity_id, role.deployment_id}).second)
      return invalid(item + ": more than one role on " + entity_type + " " + role.entity_id +
                     (role.deployment_id.empty() ? "" : " in deployment " + role.deployment_id));
    if (role.entity_type == type) ++primary_count;
  }
  if (primary_count != 1)
    return invalid(context + " must contain exactly one role with entityType " + token_type +
                   " (the token's type), found " + std::to_string(primary_count));
  return ok_status();
}

Status Organization::validate_new_token(const NewToken& token) const {
  const astro::CreateTokenRequest& r = token.request;
  size_t name_length = count_code_points(r.name);
  if (name_length < 1 || name_length > kMaxNameLength)
    return invalid("name must be between 1 and 256 characters long");
  if (count_code_points(r.description) > kMaxDescriptionLength)
    return invalid("description must be at most 500 characters long");
  if (!role_fits_entity_type(r.role, r.type))
    return invalid("role " + (r.role.empty() ? std::string("\"\"") : r.role) +
                   " is not a valid role for a token of type " + std::string(to_string(r.type)));
  if (r.expiry_period_in_days && (*r.expiry_period_in_days < 1 || *r.expiry_period_in_days > 3650))
    return invalid("tokenExpiryPeriodInDays must be between 1 and 3650");
  switch (r.type) {
    case EntityType::Organization:
      if (!r.entity_id.empty() && r.entity_id != id_)
        return invalid("entityId must be empty or the organization id for an ORGANIZATION token");
      break;
    case EntityType::Workspace:
      if (r.entity_id.empty()) return invalid("entityId is required for a WORKSPACE token");
      if (!find_workspace(r.entity_id)) return not_found("workspace " + r.entity_id + " not found");
      break;
    case EntityType::Deployment:
      if (r.entity_id.empty()) return invalid("entityId is required for a DEPLOYMENT token");
      if (!find_deployment(r.entity_id))
        return not_found("deployment " + r.entity_id + " not found");
      break;
    case EntityType::Dag:
    case EntityType::DagTag:
      return invalid("a token's type must be ORGANIZATION, WORKSPACE or DEPLOYMENT");
  }
  if (!token.id.empty() && !is_valid_token_id(token.id))
    return invalid("id " + token.id + " is not 25 lowercase letters and digits starting with c");
  if (token.roles) {
    Status roles_ok = validate_roles(r.type, *token.roles, "roles");
    if (!roles_ok.ok()) return roles_ok;
  }
  return ok_status();
}

// Called with the lock held exclusively, after validation.
ApiToken Organization::insert_new(const NewToken& token, Timestamp now) {
  const astro::CreateTokenRequest& r = token.request;
  ApiToken t;
  t.id = token.id.empty() ? generate_id() : token.id;
  t.name = r.name;
  t.description = r.description;
  t.type = r.type;
  t.kind = r.kind;
  std::string entity_id = r.type == EntityType::Organization ? id_ : r.entity_id;
  t.roles = token.roles ? normalize_roles(*token.roles) : RoleSet{Role{r.role, entity_id, r.type}};
  t.expiry_period_in_days = r.expiry_period_in_days;
  t.created_at = t.updated_at = t.start_at = now;
  if (t.expiry_period_in_days) t.end_at = now + std::chrono::days(*t.expiry_period_in_days);
  t.token = SecretValue(generate_value(t.id));
  t.short_token = sha256_hex(t.token.reveal()).substr(0, 10);
  uint64_t sequence = next_sequence_++;
  sequence_of_[t.id] = sequence;
  ApiToken stored = t;
  stored.token = SecretValue();
  tokens_.emplace(sequence, std::move(stored));
  return t;
}

Result<ApiToken> Organization::create_token(const astro::CreateTokenRequest& request) {
  auto created = create_tokens({NewToken{request, std::nullopt, ""}});
  if (!created.ok()) return created.error();
  return std::move(created.value().front());
}

Result<std::vector<ApiToken>> Organization::create_tokens(const std::vector<NewToken>& tokens) {
  std::vector<ApiToken> created;
  {
    Lock lock(mutex_);
    std::set<std::string> fixed_ids;
    for (size_t i = 0; i < tokens.size(); ++i) {
      Status valid = validate_new_token(tokens[i]);
      if (!valid.ok()) {
        Error e = valid.error();
        if (tokens.size() > 1) e.message = "tokens[" + std::to_string(i) + "]: " + e.message;
        return e;
      }
      const std::string& id = tokens[i].id;
      if (!id.empty() && (sequence_of_.contains(id) || !fixed_ids.insert(id).second))
        return invalid("tokens[" + std::to_string(i) + "]: id " + id + " already exists");
    }
    Timestamp now = clock_.now();
    created.reserve(tokens.size());
    for (const NewToken& token : tokens) created.push_back(insert_new(token, now));
  }
  if (!created.empty()) changed();
  return created;
}

Result<ApiToken> Organization::get_token(const std::string& token_id) const {
  SharedLock lock(mutex_);
  const ApiToken* t = find(token_id);
  if (!t) return not_found("API token " + token_id + " not found");
  return *t;
}

Result<ApiToken> Organization::update_token(const std::string& token_id, const std::string& name,
                                            const std::optional<std::string>& description) {
  size_t name_length = count_code_points(name);
  if (name_length < 1 || name_length > kMaxNameLength)
    return invalid("name must be between 1 and 256 characters long");
  if (description && count_code_points(*description) > kMaxDescriptionLength)
    return invalid("description must be at most 500 characters long");
  ApiToken result;
  {
    Lock lock(mutex_);
    ApiToken* t = find(token_id);
    if (!t) return not_found("API token " + token_id + " not found");
    t->name = name;
    if (description) t->description = *description;
    t->updated_at = clock_.now();
    result = *t;
  }
  changed();
  return result;
}

Result<RoleSet> Organization::update_token_roles(const std::string& token_id, const RoleSet& roles,
                                                 bool keep_dag_roles) {
  RoleSet result;
  {
    Lock lock(mutex_);
    ApiToken* t = find(token_id);
    if (!t) return not_found("API token " + token_id + " not found");
    RoleSet held = roles;
    if (keep_dag_roles)
      for (const Role& role : t->roles)
        if (is_dag_entity(role.entity_type)) held.push_back(role);
    Status valid = validate_roles(t->type, held, "roles");
    if (!valid.ok()) return valid.error();
    t->roles = normalize_roles(std::move(held));
    t->updated_at = clock_.now();
    result = t->roles;
  }
  changed();
  return result;
}

Result<ApiToken> Organization::rotate_token(const std::string& token_id) {
  ApiToken result;
  {
    Lock lock(mutex_);
    ApiToken* t = find(token_id);
    if (!t) return not_found("API token " + token_id + " not found");
    Timestamp now = clock_.now();
    std::string value = generate_value(t->id);
    t->short_token = sha256_hex(value).substr(0, 10);
    t->start_at = t->updated_at = now;
    t->last_rotated_at = now;
    if (t->expiry_period_in_days)
      t->end_at = now + std::chrono::days(*t->expiry_period_in_days);
    else
      t->end_at.reset();
    result = *t;
    result.token = SecretValue(std::move(value));
  }
  changed();
  return result;
}

Status Organization::delete_token(const std::string& token_id) {
  {
    Lock lock(mutex_);
    auto it = sequence_of_.find(token_id);
    if (it == sequence_of_.end()) return not_found("API token " + token_id + " not found");
    tokens_.erase(it->second);
    sequence_of_.erase(it);
  }
  changed();
  return ok_status();
}

Result<astro::json::TokenPage> Organization::list_tokens(const TokenQuery& query) const {
  Status paging = check_paging(query.offset, query.limit, kMaxTokenPageSize);
  if (!paging.ok()) return paging.error();
  auto keys =
      parse_sorts(query.sorts, {"name", "description", "createdAt", "updatedAt", "tokenStartAt"});
  if (!keys.ok()) return keys.error();

  SharedLock lock(mutex_);
  // Without query.dag_roles (v1beta1) a token is matched as its client sees it.
  auto visible = [&](const Role& r) { return query.dag_roles || !is_dag_entity(r.entity_type); };
  auto has_role = [&](const ApiToken& t, auto&& matches) {
    return std::any_of(t.roles.begin(), t.roles.end(),
                       [&](const Role& r) { return visible(r) && matches(r); });
  };
  auto in_workspace = [&](const Role& r) {
    if (r.entity_type == EntityType::Workspace) return r.entity_id == query.workspace_id;
    if (r.entity_type == EntityType::Organization) return false;
    const Deployment* d =
        find_deployment(r.entity_type == EntityType::Deployment ? r.entity_id : r.deployment_id);
    return d && d->workspace_id == query.workspace_id;
  };
  auto on_deployment = [&](const Role& r) {
    if (r.entity_type == EntityType::Deployment) return r.entity_id == query.deployment_id;
    return is_dag_entity(r.entity_type) && r.deployment_id == query.deployment_id;
  };
  auto on_dag = [&](const Role& r) {
    return r.entity_type == EntityType::Dag && r.entity_id == query.dag_id;
  };
  auto on_dag_tag = [&](const Role& r) {
    return r.entity_type == EntityType::DagTag && contains(query.dag_tags, r.entity_id);
  };
  std::vector<const ApiToken*> matching;
  matching.reserve(tokens_.size());
  for (const auto& [sequence, t] : tokens_) {
    if (query.only_organization_tokens && t.type != EntityType::Organization) continue;
    if (query.kind && t.kind != *query.kind) continue;
    if (!query.workspace_id.empty() && !has_role(t, in_workspace)) continue;
    if (!query.deployment_id.empty() && !has_role(t, on_deployment)) continue;
    if (!query.dag_id.empty() && !has_role(t, on_dag)) continue;
    if (!query.dag_tags.empty() && !has_role(t, on_dag_tag)) continue;
    matching.push_back(&t);
  }
  if (!keys->empty()) {
    std::stable_sort(matching.begin(), matching.end(), [&](const ApiToken* a, const ApiToken* b) {
      for (const SortKey& key : *keys) {
        int c = compare_token_field(*a, *b, key.field);
        if (c != 0) return key.descending ? c > 0 : c < 0;
      }
      return false;
    });
  }
  Page<ApiToken> page = slice(matching, query.offset, query.limit);
  return astro::json::TokenPage{std::move(page.items), page.total_count, page.offset, page.limit};
}

Result<Page<Workspace>> Organization::list_workspaces(const EntityQuery& query) const {
  Status paging = check_paging(query.offset, query.limit, kMaxWorkspacePageSize);
  if (!paging.ok()) return paging.error();
  auto keys = parse_sorts(query.sorts, {"name", "createdAt", "updatedAt"});
  if (!keys.ok()) return keys.error();
  std::vector<const Workspace*> matching;
  for (const Workspace& w : workspaces_) {
    if (!query.ids.empty() && !contains(query.ids, w.id)) continue;
    if (!query.names.empty() && !contains(query.names, w.name)) continue;
    matching.push_back(&w);
  }
  sort_entities(matching, *keys);
  return slice(matching, query.offset, query.limit);
}

Result<Page<Deployment>> Organization::list_deployments(const EntityQuery& query) const {
  Status paging = check_paging(query.offset, query.limit, 0);
  if (!paging.ok()) return paging.error();
  auto keys = parse_sorts(query.sorts, {"name", "createdAt", "updatedAt"});
  if (!keys.ok()) return keys.error();
  std::vector<const Deployment*> matching;
  for (const Deployment& d : deployments_) {
    if (!query.ids.empty() && !contains(query.ids, d.id)) continue;
    if (!query.names.empty() && !contains(query.names, d.name)) continue;
    if (!query.workspace_ids.empty() && !contains(query.workspace_ids, d.workspace_id)) continue;
    matching.push_back(&d);
  }
  sort_entities(matching, *keys);
  return slice(matching, query.offset, query.limit);
}

Result<ApiToken> Organization::patch_token(const std::string& token_id, const TokenPatch& patch) {
  ApiToken result;
  {
    Lock lock(mutex_);
    ApiToken* t = find(token_id);
    if (!t) return not_found("API token " + token_id + " not found");
    if (patch.name) t->name = *patch.name;
    if (patch.description) t->description = *patch.description;
    if (patch.roles) t->roles = normalize_roles(*patch.roles);
    if (patch.kind) t->kind = *patch.kind;
    if (patch.last_rotated_at) t->last_rotated_at = *patch.last_rotated_at;
    if (patch.start_at) t->start_at = *patch.start_at;
    if (patch.created_at) t->created_at = *patch.created_at;
    if (patch.end_at) t->end_at = *patch.end_at;
    if (patch.last_used_at) t->last_used_at = *patch.last_used_at;
    if (patch.expiry_period_in_days) t->expiry_period_in_days = *patch.expiry_period_in_days;
    t->updated_at = patch.updated_at ? *patch.updated_at : clock_.now();
    result = *t;
  }
  changed();
  return result;
}

std::vector<ApiToken> Organization::all_tokens() const {
  SharedLock lock(mutex_);
  std::vector<ApiToken> out;
  out.reserve(tokens_.size());
  for (const auto& [sequence, t] : tokens_) out.push_back(t);
  return out;
}

size_t Organization::token_count() const {
  SharedLock lock(mutex_);
  return tokens_.size();
}

std::vector<std::string> Organization::issued_values() const {
  SharedLock lock(mutex_);
  return issued_values_;
}

std::string Organization::encode_data() const {
  astro::json::TokenPage page;
  {
    SharedLock lock(mutex_);
    page.tokens.reserve(tokens_.size());
    for (const auto& [sequence, t] : tokens_) page.tokens.push_back(t);
  }
  page.total_count = page.limit = static_cast<int>(page.tokens.size());
  std::string body = v1::encode_token_page(page);
  // Stored tokens never hold a value, so the page carries no secret.
  return "{\"format\":" + json_quote(kDataFormat) + ",\"organizationId\":" + json_quote(id_) + "," +
         body.substr(1);
}

Status Organization::load_data(const std::string& json) {
  auto root = parse_json(json);
  if (!root.ok()) return invalid("not valid JSON: " + root.error().message);
  try {
    if (root->type() != typeid(Poco::JSON::Object::Ptr)) return invalid("not a JSON object");
    auto object = root->extract<Poco::JSON::Object::Ptr>();
    if (object->optValue<std::string>("format", "") != kDataFormat)
      return invalid("not an astro-api-sim data file (format is not \"astro-api-sim-data\")");
    std::string org = object->optValue<std::string>("organizationId", "");
    if (org != id_) return invalid("the data belongs to organization " + org + ", not " + id_);
  } catch (const Poco::Exception& e) {
    return invalid("not valid JSON: " + e.message());
  }
  auto page = v1::decode_token_page(json, v1::Dialect::Legacy);
  if (!page.ok()) return page.error();
  std::map<uint64_t, ApiToken> tokens;
  std::unordered_map<std::string, uint64_t> sequence_of;
  uint64_t sequence = 1;
  for (ApiToken& t : page->tokens) {
    if (t.id.empty() || sequence_of.contains(t.id))
      return invalid("token id \"" + t.id + "\" is empty or repeated");
    t.token = SecretValue();
    sequence_of[t.id] = sequence;
    tokens.emplace(sequence++, std::move(t));
  }
  {
    Lock lock(mutex_);
    tokens_ = std::move(tokens);
    sequence_of_ = std::move(sequence_of);
    next_sequence_ = sequence;
  }
  ++revision_;
  return ok_status();
}

}  // namespace tokend::sim
