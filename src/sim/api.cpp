#include "sim/api.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/URI.h>
#include <Poco/UUIDGenerator.h>

#include <charconv>

#include "astro/json.h"
#include "sim/bodies.h"
#include "util/json_text.h"

namespace tokend::sim {

namespace {

using Query = std::vector<std::pair<std::string, std::string>>;

constexpr std::string_view kIamPrefix = "/iam/v1beta1/organizations/";
constexpr std::string_view kPlatformPrefix = "/platform/v1beta1/organizations/";
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

// Every value of `key`, accepting repeated parameters and comma-separated lists.
std::vector<std::string> list(const Query& query, std::string_view key) {
  std::vector<std::string> out;
  for (const auto& [k, v] : query) {
    if (k != key) continue;
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

// Which operation a path and method name; "" when the path is no API route.
// `allowed` receives the methods the path accepts.
std::string route(const std::vector<std::string>& s, const std::string& method,
                  std::string& allowed) {
  // s[0] == "" (leading slash), s[1] iam|platform, s[2] v1beta1, s[3] organizations, s[4] org
  if (s.size() < 6 || s[0] != "" || s[2] != "v1beta1" || s[3] != "organizations") return "";
  if (s[1] == "iam" && s[5] == "tokens") {
    if (s.size() == 6) {
      allowed = "GET, POST";
      return method == "GET" ? "ListApiTokens" : method == "POST" ? "CreateApiToken" : "-";
    }
    if (s[6].empty()) return "";
    if (s.size() == 7) {
      allowed = "GET, POST, DELETE";
      return method == "GET"      ? "GetApiToken"
             : method == "POST"   ? "UpdateApiToken"
             : method == "DELETE" ? "DeleteApiToken"
                                  : "-";
    }
    if (s.size() == 8 && (s[7] == "roles" || s[7] == "rotate")) {
      allowed = "POST";
      if (method != "POST") return "-";
      return s[7] == "roles" ? "UpdateApiTokenRoles" : "RotateApiToken";
    }
    return "";
  }
  if (s[1] == "platform" && s.size() == 6 && (s[5] == "workspaces" || s[5] == "deployments")) {
    allowed = "GET";
    if (method != "GET") return "-";
    return s[5] == "workspaces" ? "ListWorkspaces" : "ListDeployments";
  }
  return "";
}

SimResponse method_not_allowed(const std::string& method, const std::string& allowed) {
  SimResponse r = error_response(405, "method " + method + " is not allowed here");
  r.headers.emplace_back("Allow", allowed);
  return r;
}

std::string token_json(const astro::ApiToken& token, bool with_value) {
  return astro::json::encode_token(token, with_value);
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
  auto segments = split_path(request.path);
  std::string allowed;
  std::string operation = route(segments, request.method, allowed);
  LoggedRequest entry{0, request.method, request.path, request.query, operation, 0};
  if (operation.empty() || operation == "-") {
    SimResponse r = operation.empty()
                        ? error_response(404, "no API route " + request.method + " " + request.path)
                        : method_not_allowed(request.method, allowed);
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
  } else if (segments[4] != org_.id()) {
    response = error_response(403, "organization " + segments[4] +
                                       " does not exist or is not accessible with this token");
  } else {
    response = perform(operation, request, segments);
    if (fault.drop == DropWhen::After) response.close_without_answer = true;
  }
  wait_latency(fault.latency_ms);
  response.operation = operation;
  entry.status = response.close_without_answer ? 0 : response.status;
  log_.record(std::move(entry));
  return response;
}

SimResponse Simulator::perform(const std::string& op, const SimRequest& request,
                               const std::vector<std::string>& s) {
  auto query = parse_query(request.query);
  if (!query.ok()) return from_error(query.error());
  const std::string token_id = s.size() > 6 ? s[6] : "";

  if (op == "ListApiTokens") {
    TokenQuery q;
    for (Status st : {read_int(*query, "offset", q.offset), read_int(*query, "limit", q.limit)})
      if (!st.ok()) return from_error(st.error());
    q.workspace_id = single(*query, "workspaceId").value_or("");
    q.deployment_id = single(*query, "deploymentId").value_or("");
    if (auto only = single(*query, "includeOnlyOrganizationTokens")) {
      if (*only != "true" && *only != "false")
        return error_response(400, "includeOnlyOrganizationTokens must be true or false");
      q.only_organization_tokens = *only == "true";
    }
    q.sorts = list(*query, "sorts");
    auto page = org_.list_tokens(q);
    if (!page.ok()) return from_error(page.error());
    return json_response(200, astro::json::encode_token_page(*page), op);
  }
  if (op == "CreateApiToken") {
    auto create = astro::json::decode_create_request(request.body);
    if (!create.ok()) return from_error(create.error());
    auto token = org_.create_token(*create);
    if (!token.ok()) return from_error(token.error());
    return json_response(200, token_json(*token, true), op);
  }
  if (op == "GetApiToken") {
    auto token = org_.get_token(token_id);
    if (!token.ok()) return from_error(token.error());
    return json_response(200, token_json(*token, false), op);
  }
  if (op == "UpdateApiToken") {
    auto update = astro::json::decode_update_request(request.body);
    if (!update.ok()) return from_error(update.error());
    // The decoder cannot tell an absent description from an empty one.
    std::optional<std::string> description;
    Poco::JSON::Parser parser;
    auto body = parser.parse(request.body).extract<Poco::JSON::Object::Ptr>();
    if (body->has("description") && !body->isNull("description")) description = update->description;
    auto token = org_.update_token(token_id, update->name, description);
    if (!token.ok()) return from_error(token.error());
    return json_response(200, token_json(*token, false), op);
  }
  if (op == "UpdateApiTokenRoles") {
    auto roles = astro::json::decode_roles_request(request.body);
    if (!roles.ok()) return from_error(roles.error());
    auto held = org_.update_token_roles(token_id, *roles);
    if (!held.ok()) return from_error(held.error());
    // SubjectRoles.organizationRole is an enum of three roles in the published
    // contract; the optional field is left out for the newer ORGANIZATION_OBSERVE_*
    // roles (which the token still holds, as GetApiToken shows).
    RoleSet answer;
    for (const Role& role : *held) {
      bool published = role.role == "ORGANIZATION_OWNER" ||
                       role.role == "ORGANIZATION_BILLING_ADMIN" ||
                       role.role == "ORGANIZATION_MEMBER";
      if (role.entity_type != EntityType::Organization || published) answer.push_back(role);
    }
    return json_response(200, astro::json::encode_subject_roles(answer), op);
  }
  if (op == "RotateApiToken") {
    auto token = org_.rotate_token(token_id);
    if (!token.ok()) return from_error(token.error());
    return json_response(200, token_json(*token, true), op);
  }
  if (op == "DeleteApiToken") {
    Status deleted = org_.delete_token(token_id);
    if (!deleted.ok()) return from_error(deleted.error());
    return no_content(op);
  }
  EntityQuery q;
  for (Status st : {read_int(*query, "offset", q.offset), read_int(*query, "limit", q.limit)})
    if (!st.ok()) return from_error(st.error());
  q.names = list(*query, "names");
  q.sorts = list(*query, "sorts");
  if (op == "ListWorkspaces") {
    q.ids = list(*query, "workspaceIds");
    auto page = org_.list_workspaces(q);
    if (!page.ok()) return from_error(page.error());
    return json_response(200, encode_workspace_page(*page, org_.id()), op);
  }
  q.ids = list(*query, "deploymentIds");
  q.workspace_ids = list(*query, "workspaceIds");
  auto page = org_.list_deployments(q);
  if (!page.ok()) return from_error(page.error());
  return json_response(200, encode_deployment_page(*page, org_), op);
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
      return json_response(200, astro::json::encode_token_page(page), "");
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
      return json_response(200, token_json(*token, false), "");
    }
    if (m == "PATCH") {
      auto patch = decode_token_patch(request.body);
      if (!patch.ok()) return from_error(patch.error());
      auto token = org_.patch_token(id, *patch);
      if (!token.ok()) return from_error(token.error());
      return json_response(200, token_json(*token, false), "");
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
