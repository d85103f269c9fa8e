#include "astro/fake_client.h"

#include <algorithm>

namespace tokend::astro {

static_assert(static_cast<size_t>(Operation::ListDeployments) + 1 == 9,
              "FakeClient counts every Operation");

namespace {

Error invalid(std::string message) {
  return Error{ErrorKind::Invalid, std::move(message), "fake-request-id", 400};
}

Error not_found(const std::string& token_id) {
  return Error{ErrorKind::NotFound, "API token " + token_id + " not found", "fake-request-id", 404};
}

std::optional<Error> check_name_and_description(const std::string& name,
                                                const std::string& description) {
  if (name.empty() || name.size() > 256) return invalid("name must be 1 to 256 characters");
  if (description.size() > 500) return invalid("description must be at most 500 characters");
  return std::nullopt;
}

ApiToken without_value(ApiToken token) {
  token.token = SecretValue();
  return token;
}

}  // namespace

FakeClient::FakeClient(std::string organization_id, const Clock* clock)
    : organization_id_(std::move(organization_id)), clock_(clock) {
  workspaces_.insert(kDefaultWorkspace);
  deployments_.insert(kDefaultDeployment);
}

Timestamp FakeClient::now() const { return clock_ ? clock_->now() : system_clock_.now(); }

std::string FakeClient::next_id() {
  static constexpr char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string id(25, '0');
  id[0] = 'c';
  uint64_t n = ++id_counter_;
  for (size_t i = id.size() - 1; i > 0 && n > 0; --i, n /= 36) id[i] = kDigits[n % 36];
  return id;
}

SecretValue FakeClient::next_value(const std::string& token_id) {
  SecretValue value("fake-token-value-" + std::to_string(++value_counter_));
  values_[token_id] = value;
  return value;
}

std::vector<ApiToken>::iterator FakeClient::find(const std::string& token_id) {
  return std::find_if(tokens_.begin(), tokens_.end(),
                      [&](const ApiToken& t) { return t.id == token_id; });
}

std::optional<Error> FakeClient::check_role_entities(const RoleSet& roles) const {
  for (const Role& role : roles) {
    if (role.role.empty()) return invalid("a role name is empty");
    switch (role.entity_type) {
      case EntityType::Organization:
        if (role.entity_id != organization_id_)
          return invalid("organization " + role.entity_id + " not found");
        break;
      case EntityType::Workspace:
        if (!workspaces_.count(role.entity_id))
          return invalid("workspace " + role.entity_id + " not found");
        break;
      case EntityType::Deployment:
        if (!deployments_.count(role.entity_id))
          return invalid("deployment " + role.entity_id + " not found");
        break;
      case EntityType::Dag:
      case EntityType::DagTag:
        if (!deployments_.count(role.deployment_id))
          return invalid("deployment " + role.deployment_id + " not found");
        break;
    }
  }
  return std::nullopt;
}

std::optional<ScriptedFailure> FakeClient::begin_call(Operation op) {
  const auto index = static_cast<size_t>(op);
  ++calls_[index];
  ++total_calls_;
  for (auto late = late_creates_.begin(); late != late_creates_.end();) {
    if (late->lands_at_call > total_calls_) {
      ++late;
      continue;
    }
    (void)create_locked(late->request);  // its answer went nowhere
    late = late_creates_.erase(late);
  }
  auto& script = scripts_[index];
  if (script.empty()) return std::nullopt;
  ScriptedFailure failure = script.front();
  if (--script.front().count <= 0) script.pop_front();
  return failure;
}

Error FakeClient::failure_error(const ScriptedFailure& failure, Operation op) {
  return Error{failure.kind, std::string(to_string(op)) + ": " + failure.message, "fake-request-id",
               failure.http_status};
}

// --- Client -------------------------------------------------------------------

Result<TokenListing> FakeClient::list_tokens() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto failure = begin_call(Operation::ListApiTokens))
    return failure_error(*failure, Operation::ListApiTokens);
  TokenListing listing;
  for (const ApiToken& token : tokens_)
    if (!hidden_.count(token.id)) listing.tokens.push_back(token);
  if (!listing_problem_.empty()) {
    listing.consistent = false;
    listing.problem = listing_problem_;
  }
  return listing;
}

Result<ApiToken> FakeClient::get_token(const std::string& token_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto failure = begin_call(Operation::GetApiToken))
    return failure_error(*failure, Operation::GetApiToken);
  auto it = find(token_id);
  if (it == tokens_.end()) return not_found(token_id);
  return *it;
}

Result<ApiToken> FakeClient::create_token(const CreateTokenRequest& request) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto failure = begin_call(Operation::CreateApiToken);
  if (failure && !failure->takes_effect) return failure_error(*failure, Operation::CreateApiToken);
  if (failure && failure->lands_after_calls > 0) {
    late_creates_.push_back({total_calls_ + failure->lands_after_calls, request});
    return failure_error(*failure, Operation::CreateApiToken);
  }
  auto result = create_locked(request);
  if (failure) return failure_error(*failure, Operation::CreateApiToken);
  return result;
}

Result<ApiToken> FakeClient::update_token(const std::string& token_id,
                                          const UpdateTokenRequest& request) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto failure = begin_call(Operation::UpdateApiToken);
  if (failure && !failure->takes_effect) return failure_error(*failure, Operation::UpdateApiToken);
  auto result = update_locked(token_id, request);
  if (failure) return failure_error(*failure, Operation::UpdateApiToken);
  return result;
}

Status FakeClient::update_token_roles(const std::string& token_id, const RoleSet& roles) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto failure = begin_call(Operation::UpdateApiTokenRoles);
  if (failure && !failure->takes_effect)
    return failure_error(*failure, Operation::UpdateApiTokenRoles);
  auto result = roles_locked(token_id, roles);
  if (failure) return failure_error(*failure, Operation::UpdateApiTokenRoles);
  return result;
}

Result<ApiToken> FakeClient::rotate_token(const std::string& token_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto failure = begin_call(Operation::RotateApiToken);
  if (failure && !failure->takes_effect) return failure_error(*failure, Operation::RotateApiToken);
  auto result = rotate_locked(token_id);
  if (failure) return failure_error(*failure, Operation::RotateApiToken);
  return result;
}

Status FakeClient::delete_token(const std::string& token_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto failure = begin_call(Operation::DeleteApiToken);
  if (failure && !failure->takes_effect) return failure_error(*failure, Operation::DeleteApiToken);
  auto result = delete_locked(token_id);
  if (failure) return failure_error(*failure, Operation::DeleteApiToken);
  return result;
}

Result<std::vector<std::string>> FakeClient::existing_workspaces(
    const std::vector<std::string>& ids) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (ids.empty()) return std::vector<std::string>{};  // like HttpClient: no lookup at all
  if (auto failure = begin_call(Operation::ListWorkspaces))
    return failure_error(*failure, Operation::ListWorkspaces);
  std::vector<std::string> found;
  for (const std::string& id : ids)
    if (workspaces_.count(id) && std::find(found.begin(), found.end(), id) == found.end())
      found.push_back(id);
  return found;
}

Result<std::vector<std::string>> FakeClient::existing_deployments(
    const std::vector<std::string>& ids) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (ids.empty()) return std::vector<std::string>{};
  if (auto failure = begin_call(Operation::ListDeployments))
    return failure_error(*failure, Operation::ListDeployments);
  std::vector<std::string> found;
  for (const std::string& id : ids)
    if (deployments_.count(id) && std::find(found.begin(), found.end(), id) == found.end())
      found.push_back(id);
  return found;
}

// --- the operations themselves (mutex_ held) ------------------------------------

Result<ApiToken> FakeClient::create_locked(const CreateTokenRequest& request) {
  if (auto error = check_name_and_description(request.name, request.description)) return *error;
  if (request.role.empty()) return invalid("role is required");
  if (request.expiry_period_in_days &&
      (*request.expiry_period_in_days < 1 || *request.expiry_period_in_days > 3650))
    return invalid("tokenExpiryPeriodInDays must be between 1 and 3650");
  std::string entity_id = request.entity_id;
  if (request.type == EntityType::Organization) {
    if (entity_id.empty()) entity_id = organization_id_;
  } else if (entity_id.empty()) {
    return invalid("entityId is required for a " + std::string(to_string(request.type)) + " token");
  }
  RoleSet roles{Role{request.role, entity_id, request.type}};
  if (auto error = check_role_entities(roles)) return *error;

  ApiToken token;
  token.id = next_id();
  token.name = request.name;
  token.description = request.description;
  token.type = request.type;
  token.roles = std::move(roles);
  token.expiry_period_in_days = request.expiry_period_in_days;
  token.short_token = "short-" + token.id.substr(token.id.size() - 6);
  token.created_at = token.updated_at = token.start_at = now();
  if (token.expiry_period_in_days)
    token.end_at = token.start_at + std::chrono::days(*token.expiry_period_in_days);
  tokens_.push_back(token);
  token.token = next_value(token.id);
  return token;
}

Result<ApiToken> FakeClient::update_locked(const std::string& token_id,
                                           const UpdateTokenRequest& request) {
  auto it = find(token_id);
  if (it == tokens_.end()) return not_found(token_id);
  if (auto error = check_name_and_description(request.name, request.description)) return *error;
  it->name = request.name;
  it->description = request.description;
  it->updated_at = now();
  return *it;
}

Status FakeClient::roles_locked(const std::string& token_id, const RoleSet& roles) {
  auto it = find(token_id);
  if (it == tokens_.end()) return not_found(token_id);
  if (roles.empty()) return invalid("roles must not be empty");
  if (auto error = check_role_entities(roles)) return *error;
  it->roles = normalize_roles(roles);
  it->updated_at = now();
  return ok_status();
}

Result<ApiToken> FakeClient::rotate_locked(const std::string& token_id) {
  auto it = find(token_id);
  if (it == tokens_.end()) return not_found(token_id);
  it->start_at = it->updated_at = now();
  if (it->expiry_period_in_days)
    it->end_at = it->start_at + std::chrono::days(*it->expiry_period_in_days);
  else
    it->end_at.reset();
  ApiToken rotated = *it;
  rotated.token = next_value(token_id);
  return rotated;
}

Status FakeClient::delete_locked(const std::string& token_id) {
  auto it = find(token_id);
  if (it == tokens_.end()) return not_found(token_id);
  tokens_.erase(it);
  values_.erase(token_id);
  return ok_status();
}

// --- test controls ------------------------------------------------------------

void FakeClient::script_failure(Operation op, ScriptedFailure failure) {
  if (failure.count < 1) return;
  std::lock_guard<std::mutex> lock(mutex_);
  scripts_[static_cast<size_t>(op)].push_back(std::move(failure));
}

void FakeClient::add_workspace(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  workspaces_.insert(id);
}

void FakeClient::add_deployment(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  deployments_.insert(id);
}

ApiToken FakeClient::put_token(ApiToken token) {
  std::lock_guard<std::mutex> lock(mutex_);
  token = without_value(std::move(token));
  token.roles = normalize_roles(std::move(token.roles));
  if (token.id.empty()) token.id = next_id();
  auto it = find(token.id);
  if (it == tokens_.end())
    tokens_.push_back(token);
  else
    *it = token;
  return token;
}

bool FakeClient::remove_token(const std::string& token_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = find(token_id);
  if (it == tokens_.end()) return false;
  tokens_.erase(it);
  values_.erase(token_id);
  hidden_.erase(token_id);
  return true;
}

void FakeClient::hide_from_listing(const std::string& token_id, bool hidden) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (hidden)
    hidden_.insert(token_id);
  else
    hidden_.erase(token_id);
}

void FakeClient::set_listing_problem(const std::string& problem) {
  std::lock_guard<std::mutex> lock(mutex_);
  listing_problem_ = problem;
}

std::optional<ApiToken> FakeClient::token(const std::string& token_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const ApiToken& t : tokens_)
    if (t.id == token_id) return t;
  return std::nullopt;
}

std::vector<ApiToken> FakeClient::tokens() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return tokens_;
}

SecretValue FakeClient::current_value(const std::string& token_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = values_.find(token_id);
  return it == values_.end() ? SecretValue() : it->second;
}

int FakeClient::calls(Operation op) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return calls_[static_cast<size_t>(op)];
}

int FakeClient::total_calls() const {
  std::lock_guard<std::mutex> lock(mutex_);
  int total = 0;
  for (int n : calls_) total += n;
  return total;
}

void FakeClient::reset_calls() {
  std::lock_guard<std::mutex> lock(mutex_);
  calls_.fill(0);
}

}  // namespace tokend::astro
