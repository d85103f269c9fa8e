#include "sim/api.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Object.h>
#include <Poco/URI.h>
#include <Poco/UUIDGenerator.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <iterator>

#include "astro/json.h"
#include "sim/bodies.h"
#include "util/json_parse.h"
#include "util/json_text.h"

namespace tokend::sim {

namespace {

using Query = std::vector<std::pair<std::string, std::string>>;

constexpr std::string_view kControlPrefix = "/_sim/";

SimResponse json_response(int status, std::string body, std::string operation) {
  SimResponse r;
  r.status = status;
  r.body = std::move(body);
  r.operation = std::move(operation);
  return r;
}

SimResponse no_content(std::string operation) {
  return json_response(204, "", std::move(operation));
}

int status_for(const Error& e) {
  switch (e.kind) {
    case ErrorKind::NotFound:
      return 404;
    case ErrorKind::Invalid:
      return 400;
    default:
      return 500;
  }
}

SimResponse from_error(const Error& e) { return error_response(status_for(e), e.message); }

// A v1 answer for `e`: a 400 caused by one field also carries fieldErrors.
SimResponse from_error(const Error& e, ApiVersion version) {
  int status = status_for(e);
  if (version != ApiVersion::V1 || status != 400) return error_response(status, e.message);
  v1::ErrorBody body{e.message, new_request_id(), status, {}};
  if (auto field = field_error_of(e.message)) body.field_errors.push_back(std::move(*field));
  SimResponse r;
  r.status = status;
  r.body = v1::encode_error(body);
  return r;
}

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> segments;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    std::string_view part = path.substr(start, slash == path.npos ? path.npos : slash - start);
    std::string decoded;
    try {
      Poco::URI::decode(std::string(part), decoded);
    } catch (const Poco::Exception&) {
      decoded = std::string(part);
    }
    segments.push_back(decoded);
    if (slash == path.npos) break;
    start = slash + 1;
  }
  return segments;
}

Result<Query> parse_query(const std::string& raw) {
  Query query;
  size_t start = 0;
  while (start < raw.size()) {
    size_t amp = raw.find('&', start);
    std::string part =
        raw.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
    start = amp == std::string::npos ? raw.size() : amp + 1;
    if (part.empty()) continue;
    size_t eq = part.find('=');
    std::string key, value;
    try {
      Poco::URI::decode(part.substr(0, eq), key, true);
      if (eq != std::string::npos) Poco::URI::decode(part.substr(eq + 1), value, true);
    } catch (const Poco::Exception&) {
      return Error::invalid("the query string is not correctly percent-encoded");
    }
    query.emplace_back(std::move(key), std::move(value));
  }
  return query;
}

std::optional<std::string> single(const Query& query, std::string_view key) {
  std::optional<std::string> found;
  for (const auto& [k, v] : query)
    if (k == key) found = v;
  return found;
}

// Every value of `key`: repeated parameters (form, exploded: the v1 way), and
// with `split_commas` also comma-separated lists (v1beta1 clients send both).
std::vector<std::string> list(const Query& query, std::string_view key, bool split_commas) {
  std::vector<std::string> out;
  for (const auto& [k, v] : query) {
    if (k != key) continue;
    if (!split_commas) {
      out.push_back(v);
      continue;
    }
    size_t start = 0;
    while (start <= v.size()) {
      size_t comma = v.find(',', start);
      std::string item =
          v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (!item.empty()) out.push_back(item);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return out;
}

Status read_int(const Query& query, std::string_view key, int& out) {
  auto text = single(query, key);
  if (!text) return ok_status();
  int value = 0;
  auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (text->empty() || ec != std::errc() || ptr != text->data() + text->size() || value < 0)
    return Error::invalid(std::string(key) + " must be a non-negative integer");
  out = value;
  return ok_status();
}

bool iequals_prefix(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(text[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i])))
      return false;
  return true;
}

bool constant_time_equals(std::string_view a, std::string_view b) {
  if (a.size() != b.size() || b.empty()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

// An API route: which operation a path and method name, in which version.
struct Route {
  ApiVersion version = ApiVersion::V1;
  std::string org_id;
  std::string token_id;   // the {tokenId} segment, "" on collection routes
  std::string operation;  // "" when the path is no API route, "-" when the method is wrong
  std::string allowed;    // the methods the path accepts
};

// `rest` follows /organizations/{org}: tokens[/{id}[/roles|/rotate]] on the
// token API, workspaces or deployments on the lookup API.
void route_rest(const std::vector<std::string>& rest, bool tokens_api, bool lookups_api,
                const std::string& method, Route& r) {
  if (rest.empty()) return;
  if (tokens_api && rest[0] == "tokens") {
    if (rest.size() == 1) {
      r.allowed = "GET, POST";
      r.operation = method == "GET" ? "ListApiTokens" : method == "POST" ? "CreateApiToken" : "-";
      return;
    }
    if (rest[1].empty()) return;
    r.token_id = rest[1];
    if (rest.size() == 2) {
      r.allowed = "GET, POST, DELETE";
      r.operation = method == "GET"      ? "GetApiToken"
                    : method == "POST"   ? "UpdateApiToken"
                    : method == "DELETE" ? "DeleteApiToken"
                                         : "-";
      return;
    }
    if (rest.size() == 3 && (rest[2] == "roles" || rest[2] == "rotate")) {
      r.allowed = "POST";
      r.operation = method != "POST"     ? "-"
                    : rest[2] == "roles" ? "UpdateApiTokenRoles"
                                         : "RotateApiToken";
    }
    return;
  }
  if (lookups_api && rest.size() == 1 && (rest[0] == "workspaces" || rest[0] == "deployments")) {
    r.allowed = "GET";
    r.operation = method != "GET"           ? "-"
                  : rest[0] == "workspaces" ? "ListWorkspaces"
                                            : "ListDeployments";
  }
}

// s[0] == "" (the leading slash); then v1/organizations/{org}/… or
// (iam|platform)/v1beta1/organizations/{org}/….
Route route(const std::vector<std::string>& s, const std::string& method) {
  Route r;
  if (s.size() >= 5 && s[0] == "" && s[1] == "v1" && s[2] == "organizations") {
    r.version = ApiVersion::V1;
    r.org_id = s[3];
    route_rest({s.begin() + 4, s.end()}, true, true, method, r);
  } else if (s.size() >= 6 && s[0] == "" && s[2] == "v1beta1" && s[3] == "organizations" &&
             (s[1] == "iam" || s[1] == "platform")) {
    r.version = ApiVersion::V1Beta1;
    r.org_id = s[4];
    route_rest({s.begin() + 5, s.end()}, s[1] == "iam", s[1] == "platform", method, r);
  }
  return r;
}

SimResponse method_not_allowed(const std::string& method, const std::string& allowed) {
  SimResponse r = error_response(405, "method " + method + " is not allowed here");
  r.headers.emplace_back("Allow", allowed);
  return r;
}

// A token as `version` shows it: v1beta1 without DAG and DAG_TAG roles (and
// its encoder has no kind or lastRotatedAt).
std::string token_json(const astro::ApiToken& token, bool with_value, ApiVersion version) {
  if (version == ApiVersion::V1) return v1::encode_token(token, with_value);
  astro::ApiToken shown = token;
  shown.roles = without_dag_roles(token.roles);
  return astro::json::encode_token(shown, with_value);
}

// A top-level request field or query parameter of either version.
bool is_request_field(std::string_view name) {
  static constexpr std::string_view kFields[] = {"name",
                                                 "description",
                                                 "scope",
                                                 "type",
                                                 "kind",
                                                 "role",
                                                 "entityId",
                                                 "roles",
                                                 "offset",
                                                 "limit",
                                                 "sorts",
                                                 "dagId",
                                                 "dagTags",
                                                 "names",
                                                 "workspaceId",
                                                 "deploymentId",
                                                 "workspaceIds",
                                                 "deploymentIds",
                                                 "includeOnlyOrganizationTokens",
                                                 "tokenExpiryPeriodInDays"};
  return std::find(std::begin(kFields), std::end(kFields), name) != std::end(kFields);
}

}  // namespace

std::string new_request_id() {
  return Poco::UUIDGenerator::defaultGenerator().createRandom().toString();
}

SimResponse error_response(int status, std::string message) {
  SimResponse r;
  r.status = status;
  r.body = astro::json::encode_error({std::move(message), new_request_id(), status});
  return r;
}

std::optional<v1::FieldError> field_error_of(std::string_view message) {
  constexpr std::string_view kMissing = "missing required field ";
  std::string_view text = message;
  if (text.starts_with(kMissing)) text.remove_prefix(kMissing.size());
  // The path: name, then any [index] and .name parts.
  size_t end = 0;
  auto is_name_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  while (end < text.size() &&
         (is_name_char(text[end]) || text[end] == '.' || text[end] == '[' || text[end] == ']'))
    ++end;
  std::string_view path = text.substr(0, end);
  std::string_view top = path.substr(0, path.find_first_of(".["));
  bool followed = end == text.size() || text[end] == ' ' || text[end] == ':';
  if (path.empty() || !followed || !is_request_field(top)) return std::nullopt;
  std::string code = "invalid";
  if (message.starts_with(kMissing) || message.find(" is required") != std::string_view::npos)
    code = "required";
  else if (message.find(" not found") != std::string_view::npos)
    code = "not_found";
  return v1::FieldError{code, std::string(path), std::string(message)};
}

Simulator::Simulator(Organization& org, SimulatorOptions options)
    : org_(org), options_(std::move(options)), limiter_(options_.rate_limits) {}

void Simulator::shutdown() {
  {
    std::lock_guard lock(wait_mutex_);
    stopping_ = true;
  }
  wait_cv_.notify_all();
}

void Simulator::wait_latency(int latency_ms) {
  if (latency_ms <= 0) return;
  std::unique_lock lock(wait_mutex_);
  wait_cv_.wait_for(lock, std::chrono::milliseconds(latency_ms), [this] { return stopping_; });
}

bool Simulator::authorized(const std::string& authorization) const {
  constexpr std::string_view kScheme = "Bearer ";
  if (!iequals_prefix(authorization, kScheme)) return false;
  std::string_view presented = std::string_view(authorization).substr(kScheme.size());
  while (!presented.empty() && presented.front() == ' ') presented.remove_prefix(1);
  return constant_time_equals(presented, options_.bearer_token);
}

SimResponse Simulator::handle(const SimRequest& request) {
  try {
    if (request.path.starts_with(kControlPrefix) || request.path == "/_sim") {
      SimResponse r = handle_control(request);
      r.operation = "control";
      return r;
    }
    return handle_api(request);
  } catch (const std::exception& e) {
    SimResponse r = error_response(500, std::string("internal error: ") + e.what());
    r.operation = "unknown";
    return r;
  }
}

SimResponse Simulator::handle_api(const SimRequest& request) {
  Route target = route(split_path(request.path), request.method);
  const std::string& operation = target.operation;
  LoggedRequest entry{0, request.method, request.path, request.query, operation, 0};
  const bool refused_version = target.version == ApiVersion::V1Beta1 && !options_.serve_v1beta1;
  if (operation.empty() || operation == "-" || refused_version) {
    SimResponse r = refused_version
                        ? error_response(404, "v1beta1 is not served (astro-api-sim --api v1): " +
                                                  request.method + " " + request.path)
                    : operation.empty()
                        ? error_response(404, "no API route " + request.method + " " + request.path)
                        : method_not_allowed(request.method, target.allowed);
    r.operation = entry.operation = "unknown";
    entry.status = r.status;
    log_.record(std::move(entry));
    return r;
  }

  FaultDecision fault = faults_.decide(operation);
  SimResponse response;
  if (fault.drop == DropWhen::Before) {
    response.close_without_answer = true;
  } else if (fault.status != 0) {
    response = error_response(fault.status, "injected fault: HTTP " + std::to_string(fault.status));
    if (fault.retry_after >= 0)
      response.headers.emplace_back("Retry-After", std::to_string(fault.retry_after));
  } else if (auto wait = limiter_.admit(request.method, std::chrono::steady_clock::now())) {
    response = error_response(429, "rate limit exceeded for " + request.method + " requests");
    response.headers.emplace_back("Retry-After", std::to_string(*wait));
  } else if (!authorized(request.authorization)) {
    response = error_response(401, "missing or invalid bearer token");
    response.headers.emplace_back("WWW-Authenticate", "Bearer");
  } else if (target.org_id != org_.id()) {
    response = error_response(403, "organization " + target.org_id +
                                       " does not exist or is not accessible with this token");
  } else {
    response = perform(operation, target.version, request, target.token_id);
    if (fault.drop == DropWhen::After) response.close_without_answer = true;
  }
  wait_latency(fault.latency_ms);
  response.operation = operation;
  entry.status = response.close_without_answer ? 0 : response.status;
  log_.record(std::move(entry));
  return response;
}

SimResponse Simulator::perform(const std::string& op, ApiVersion version, const SimRequest& request,
                               const std::string& token_id) {
  const bool v1 = version == ApiVersion::V1;
  auto fail = [version](const Error& e) { return from_error(e, version); };
  auto query = parse_query(request.query);
  if (!query.ok()) return fail(query.error());
  auto values = [&](std::string_view key) { return list(*query, key, !v1); };

  if (op == "ListApiTokens") {
    TokenQuery q;
    for (Status st : {read_int(*query, "offset", q.offset), read_int(*query, "limit", q.limit)})
      if (!st.ok()) return fail(st.error());
    q.workspace_id = single(*query, "workspaceId").value_or("");
    q.deployment_id = single(*query, "deploymentId").value_or("");
    if (auto only = single(*query, "includeOnlyOrganizationTokens")) {
      if (*only != "true" && *only != "false")
        return fail(Error::invalid("includeOnlyOrganizationTokens must be true or false"));
      q.only_organization_tokens = *only == "true";
    }
    q.sorts = values("sorts");
    q.dag_roles = v1;
    if (v1) {
      q.dag_id = single(*query, "dagId").value_or("");
      q.dag_tags = values("dagTags");
      if (auto kind = single(*query, "kind")) {
        q.kind = parse_token_kind(*kind);
        if (!q.kind) return fail(Error::invalid("kind must be one of DIRECT_ACCESS, STANDARD"));
      }
    }
    auto page = org_.list_tokens(q);
    if (!page.ok()) return fail(page.error());
    if (v1) return json_response(200, v1::encode_token_page(*page), op);
    for (astro::ApiToken& t : page->tokens) t.roles = without_dag_roles(t.roles);
    return json_response(200, astro::json::encode_token_page(*page), op);
  }
  if (op == "CreateApiToken") {
    auto create = v1 ? v1::decode_create_request(request.body)
                     : astro::json::decode_create_request(request.body);
    if (!create.ok()) return fail(create.error());
    auto token = org_.create_token(*create);
    if (!token.ok()) return fail(token.error());
    return json_response(200, token_json(*token, true, version), op);
  }
  if (op == "GetApiToken") {
    auto token = org_.get_token(token_id);
    if (!token.ok()) return fail(token.error());
    return json_response(200, token_json(*token, false, version), op);
  }
  if (op == "UpdateApiToken") {
    // The same UpdateApiTokenRequest in both versions.
    auto update = astro::json::decode_update_request(request.body);
    if (!update.ok()) return fail(update.error());
    // The decoder cannot tell an absent description from an empty one.
    std::optional<std::string> description;
    auto body = parse_json(request.body);  // decoded above: an object within the limits
    if (!body.ok()) return from_error(body.error());
    auto object = body->extract<Poco::JSON::Object::Ptr>();
    if (object->has("description") && !object->isNull("description"))
      description = update->description;
    auto token = org_.update_token(token_id, update->name, description);
    if (!token.ok()) return fail(token.error());
    return json_response(200, token_json(*token, false, version), op);
  }
  if (op == "UpdateApiTokenRoles") {
    auto roles = v1 ? v1::decode_roles_request(request.body)
                    : astro::json::decode_roles_request(request.body);
    if (!roles.ok()) return fail(roles.error());
    auto held = org_.update_token_roles(token_id, *roles, /*keep_dag_roles=*/!v1);
    if (!held.ok()) return fail(held.error());
    if (v1) return json_response(200, v1::encode_subject_roles(*held), op);
    // SubjectRoles.organizationRole is an enum of three roles in the published
    // v1beta1 contract; the optional field is left out for the newer
    // ORGANIZATION_OBSERVE_* roles (which the token still holds, as
    // GetApiToken shows), and DAG roles are not shown.
    RoleSet answer;
    for (const Role& role : without_dag_roles(*held)) {
      bool published = role.role == "ORGANIZATION_OWNER" ||
                       role.role == "ORGANIZATION_BILLING_ADMIN" ||
                       role.role == "ORGANIZATION_MEMBER";
      if (role.entity_type != EntityType::Organization || published) answer.push_back(role);
    }
    return json_response(200, astro::json::encode_subject_roles(answer), op);
  }
  if (op == "RotateApiToken") {
    auto token = org_.rotate_token(token_id);
    if (!token.ok()) return fail(token.error());
    return json_response(200, token_json(*token, true, version), op);
  }
  if (op == "DeleteApiToken") {
    Status deleted = org_.delete_token(token_id);
    if (!deleted.ok()) return fail(deleted.error());
    return no_content(op);
  }
  EntityQuery q;
  for (Status st : {read_int(*query, "offset", q.offset), read_int(*query, "limit", q.limit)})
    if (!st.ok()) return fail(st.error());
  q.names = values("names");
  q.sorts = values("sorts");
  if (op == "ListWorkspaces") {
    q.ids = values("workspaceIds");
    auto page = org_.list_workspaces(q);
    if (!page.ok()) return fail(page.error());
    return json_response(200, encode_workspace_page(*page, org_.id()), op);
  }
  q.ids = values("deploymentIds");
  q.workspace_ids = values("workspaceIds");
  auto page = org_.list_deployments(q);
  if (!page.ok()) return fail(page.error());
  return json_response(200, encode_deployment_page(*page, org_, version), op);
}

SimResponse Simulator::handle_control(const SimRequest& request) {
  auto segments = split_path(request.path);  // "", "_sim", name, [id]
  const std::string& m = request.method;
  const std::string name = segments.size() > 2 ? segments[2] : "";
  const bool has_id = segments.size() == 4 && !segments[3].empty();
  auto query = parse_query(request.query);
  if (!query.ok()) return from_error(query.error());

  if (segments.size() == 3 && name == "health") {
    if (m != "GET") return method_not_allowed(m, "GET");
    return json_response(200,
                         "{\"status\":\"ok\",\"organizationId\":" + json_quote(org_.id()) +
                             ",\"tokens\":" + std::to_string(org_.token_count()) + "}",
                         "");
  }
  if (segments.size() == 3 && name == "requests") {
    if (m == "GET") return json_response(200, log_.encode(single(*query, "log") != "false"), "");
    if (m == "DELETE") {
      log_.reset();
      return no_content("");
    }
    return method_not_allowed(m, "GET, DELETE");
  }
  if (segments.size() == 3 && name == "faults") {
    if (m == "GET") return json_response(200, encode_fault_plan(faults_.current()), "");
    if (m == "PUT") {
      auto plan = decode_fault_plan(request.body);
      if (!plan.ok()) return from_error(plan.error());
      faults_.set(*plan);
      return json_response(200, encode_fault_plan(*plan), "");
    }
    if (m == "DELETE") {
      faults_.clear();
      return no_content("");
    }
    return method_not_allowed(m, "GET, PUT, DELETE");
  }
  if (segments.size() == 3 && name == "issued-values") {
    if (m != "GET") return method_not_allowed(m, "GET");
    return json_response(200, encode_string_list("values", org_.issued_values()), "");
  }
  if (segments.size() == 3 && name == "tokens") {
    if (m == "GET") {
      astro::json::TokenPage page;
      page.tokens = org_.all_tokens();
      page.total_count = page.limit = static_cast<int>(page.tokens.size());
      return json_response(200, v1::encode_token_page(page), "");
    }
    if (m == "POST") {
      auto bulk = decode_bulk_create(request.body);
      if (!bulk.ok()) return from_error(bulk.error());
      auto created = org_.create_tokens(bulk->tokens);
      if (!created.ok()) return from_error(created.error());
      BulkCreated answer;
      answer.ids.reserve(created->size());
      for (const astro::ApiToken& t : *created) {
        answer.ids.push_back(t.id);
        if (bulk->include_values) answer.values.push_back(t.token.reveal());
      }
      return json_response(200, encode_bulk_created(answer), "");
    }
    return method_not_allowed(m, "GET, POST");
  }
  if (has_id && name == "tokens") {
    const std::string& id = segments[3];
    if (m == "GET") {
      auto token = org_.get_token(id);
      if (!token.ok()) return from_error(token.error());
      return json_response(200, v1::encode_token(*token, false), "");
    }
    if (m == "PATCH") {
      auto patch = decode_token_patch(request.body);
      if (!patch.ok()) return from_error(patch.error());
      auto token = org_.patch_token(id, *patch);
      if (!token.ok()) return from_error(token.error());
      return json_response(200, v1::encode_token(*token, false), "");
    }
    if (m == "DELETE") {
      Status deleted = org_.delete_token(id);
      if (!deleted.ok()) return from_error(deleted.error());
      return no_content("");
    }
    return method_not_allowed(m, "GET, PATCH, DELETE");
  }
  return error_response(404,
                        "no control " + m + " " + request.path + " (see astro-api-sim --help)");
}

}  // namespace tokend::sim
