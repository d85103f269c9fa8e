#include "astro/json.h"

#include <Poco/Dynamic/Var.h>
#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <limits>

#include "astro/page_scanner.h"

#include "util/json_parse.h"
#include "util/json_text.h"

namespace tokend::astro::json {

namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

Error invalid(std::string message) { return Error::invalid(std::move(message)); }

Result<Object::Ptr> parse_object(const std::string& body) {
  auto root = parse_json(body);
  if (!root.ok()) return invalid("body is not valid JSON: " + root.error().message);
  if (root->type() != typeid(Object::Ptr)) return invalid("body is not a JSON object");
  return root->extract<Object::Ptr>();
}

// Field readers: `error` is set (and the result empty) when the field has the
// wrong type, or is missing and required.
struct Reader {
  const Object& obj;
  std::string context;  // e.g. "token" for messages
  std::optional<Error> error;

  void fail(const std::string& message) {
    if (!error) error = invalid(message);
  }

  std::string field_name(const std::string& field) const {
    return context.empty() ? field : context + "." + field;
  }

  std::optional<std::string> str(const std::string& field, bool required) {
    if (!obj.has(field) || obj.isNull(field)) {
      if (required) fail("missing required field " + field_name(field));
      return std::nullopt;
    }
    Poco::Dynamic::Var v = obj.get(field);
    if (!v.isString()) {
      fail(field_name(field) + " must be a string");
      return std::nullopt;
    }
    return v.extract<std::string>();
  }

  std::optional<int64_t> integer(const std::string& field, bool required) {
    if (!obj.has(field) || obj.isNull(field)) {
      if (required) fail("missing required field " + field_name(field));
      return std::nullopt;
    }
    Poco::Dynamic::Var v = obj.get(field);
    if (!v.isInteger()) {
      fail(field_name(field) + " must be an integer");
      return std::nullopt;
    }
    try {
      return v.convert<int64_t>();
    } catch (const Poco::Exception&) {
      fail(field_name(field) + " is out of range");
      return std::nullopt;
    }
  }

  // An integer that must lie in [lo, hi] (counts and sizes: 0..INT_MAX).
  std::optional<int> bounded(const std::string& field, bool required, int64_t lo = 0,
                             int64_t hi = std::numeric_limits<int>::max()) {
    auto v = integer(field, required);
    if (!v) return std::nullopt;
    if (*v < lo || *v > hi) {
      fail(field_name(field) + " is out of range: " + std::to_string(*v));
      return std::nullopt;
    }
    return static_cast<int>(*v);
  }

  // A token type (v1beta1 `type`, v1 `scope`); the v1beta1 enum of role
  // entity types has only these three too.
  std::optional<EntityType> token_type(const std::string& field, bool required) {
    auto s = str(field, required);
    if (!s) return std::nullopt;
    auto t = parse_token_type(*s);
    if (!t) fail(field_name(field) + " must be one of DEPLOYMENT, WORKSPACE, ORGANIZATION");
    return t;
  }

  // A role's entityType: v1 adds DAG and DAG_TAG.
  std::optional<EntityType> entity_type(const std::string& field, ApiVersion version) {
    if (version == ApiVersion::V1Beta1) return token_type(field, true);
    auto s = str(field, true);
    if (!s) return std::nullopt;
    auto t = parse_entity_type(*s);
    if (!t)
      fail(field_name(field) + " must be one of DAG, DAG_TAG, DEPLOYMENT, ORGANIZATION, WORKSPACE");
    return t;
  }

  std::optional<TokenKind> kind(const std::string& field, bool required) {
    auto s = str(field, required);
    if (!s) return std::nullopt;
    auto k = parse_token_kind(*s);
    if (!k) fail(field_name(field) + " must be one of DIRECT_ACCESS, STANDARD");
    return k;
  }

  std::optional<Timestamp> time(const std::string& field, bool required) {
    auto s = str(field, required);
    if (!s) return std::nullopt;
    auto t = parse_rfc3339(*s);
    if (!t) fail(field_name(field) + " is not a date-time");
    return t;
  }

  Array::Ptr array(const std::string& field, bool required) {
    if (!obj.has(field) || obj.isNull(field)) {
      if (required) fail("missing required field " + field_name(field));
      return nullptr;
    }
    if (!obj.isArray(field)) {
      fail(field_name(field) + " must be an array");
      return nullptr;
    }
    return obj.getArray(field);
  }
};

Result<RoleSet> read_roles(const Array& array, const std::string& context, ApiVersion version) {
  RoleSet roles;
  for (size_t i = 0; i < array.size(); ++i) {
    std::string item_context = context + "[" + std::to_string(i) + "]";
    if (!array.isObject(static_cast<unsigned>(i)))
      return invalid(item_context + " must be an object");
    Object::Ptr item = array.getObject(static_cast<unsigned>(i));
    Reader r{*item, item_context, std::nullopt};
    auto role = r.str("role", true);
    auto entity_id = r.str("entityId", true);
    auto entity_type = r.entity_type("entityType", version);
    std::optional<std::string> deployment_id;
    if (version == ApiVersion::V1) deployment_id = r.str("deploymentId", false);
    if (r.error) return *r.error;
    // deploymentId names the deployment holding a DAG; on other entities it
    // carries nothing a token spec could state.
    if (!is_dag_entity(*entity_type)) deployment_id.reset();
    roles.emplace_back(*role, *entity_id, *entity_type, deployment_id.value_or(""));
  }
  return roles;
}

Result<ApiToken> read_token(const Object& obj, const std::string& context, ApiVersion version) {
  Reader r{obj, context, std::nullopt};
  ApiToken t;
  if (auto v = r.str("id", true)) t.id = *v;
  if (auto v = r.str("name", true)) t.name = *v;
  if (auto v = r.str("description", true)) t.description = *v;
  const bool v1 = version == ApiVersion::V1;
  if (auto v = r.token_type(v1 ? "scope" : "type", true)) t.type = *v;
  if (v1) {
    if (auto v = r.kind("kind", true)) t.kind = *v;
    t.last_rotated_at = r.time("lastRotatedAt", false);
  }
  if (auto v = r.str("shortToken", true)) t.short_token = *v;
  if (auto v = r.time("createdAt", true)) t.created_at = *v;
  if (auto v = r.time("updatedAt", true)) t.updated_at = *v;
  if (auto v = r.time("startAt", true)) t.start_at = *v;
  t.end_at = r.time("endAt", false);
  t.last_used_at = r.time("lastUsedAt", false);
  if (auto v = r.bounded("expiryPeriodInDays", false)) t.expiry_period_in_days = *v;
  if (auto v = r.str("token", false)) t.token = SecretValue(*v);
  Array::Ptr roles = r.array("roles", false);
  if (r.error) return *r.error;
  if (roles) {
    auto parsed = read_roles(*roles, context.empty() ? "roles" : context + ".roles", version);
    if (!parsed.ok()) return parsed.error();
    t.roles = normalize_roles(std::move(parsed.value()));
  }
  return t;
}

void append_key(std::string& out, const char* key, bool& first) {
  if (!first) out += ',';
  first = false;
  out += '"';
  out += key;
  out += "\":";
}

void append_field(std::string& out, const char* key, std::string_view value, bool& first) {
  append_key(out, key, first);
  append_json_string(out, value);
}

void append_field(std::string& out, const char* key, int64_t value, bool& first) {
  append_key(out, key, first);
  out += std::to_string(value);
}

void append_roles(std::string& out, const RoleSet& roles, ApiVersion version) {
  out += '[';
  bool first_role = true;
  for (const Role& role : roles) {
    if (!first_role) out += ',';
    first_role = false;
    bool first = true;
    out += '{';
    if (version == ApiVersion::V1 && is_dag_entity(role.entity_type))
      append_field(out, "deploymentId", role.deployment_id, first);
    append_field(out, "entityId", role.entity_id, first);
    append_field(out, "entityType", to_string(role.entity_type), first);
    append_field(out, "role", role.role, first);
    out += '}';
  }
  out += ']';
}

void append_token(std::string& out, const ApiToken& t, bool include_secret) {
  bool first = true;
  out += '{';
  append_field(out, "id", t.id, first);
  append_field(out, "name", t.name, first);
  append_field(out, "description", t.description, first);
  append_field(out, "type", to_string(t.type), first);
  append_field(out, "shortToken", t.short_token, first);
  append_field(out, "createdAt", format_rfc3339(t.created_at), first);
  append_field(out, "updatedAt", format_rfc3339(t.updated_at), first);
  append_field(out, "startAt", format_rfc3339(t.start_at), first);
  if (t.end_at) append_field(out, "endAt", format_rfc3339(*t.end_at), first);
  if (t.last_used_at) append_field(out, "lastUsedAt", format_rfc3339(*t.last_used_at), first);
  if (t.expiry_period_in_days)
    append_field(out, "expiryPeriodInDays", *t.expiry_period_in_days, first);
  append_key(out, "roles", first);
  append_roles(out, t.roles, ApiVersion::V1Beta1);
  if (include_secret && !t.token.empty()) append_field(out, "token", t.token.reveal(), first);
  out += '}';
}

}  // namespace

std::string encode_token(const ApiToken& token, bool include_secret) {
  std::string out;
  append_token(out, token, include_secret);
  return out;
}

Result<ApiToken> decode_token(const std::string& body, ApiVersion version) {
  auto obj = parse_object(body);
  if (!obj.ok()) return obj.error();
  return read_token(*obj.value(), "", version);
}

std::string encode_token_page(const TokenPage& page) {
  std::string out;
  out.reserve(64 + page.tokens.size() * 512);
  bool first = true;
  out += '{';
  append_field(out, "limit", page.limit, first);
  append_field(out, "offset", page.offset, first);
  append_field(out, "totalCount", page.total_count, first);
  append_key(out, "tokens", first);
  out += '[';
  for (size_t i = 0; i < page.tokens.size(); ++i) {
    if (i) out += ',';
    append_token(out, page.tokens[i], false);
  }
  out += "]}";
  return out;
}

Result<TokenPage> decode_token_page(const std::string& body, ApiVersion version) {
  return decode_token_page(body, version, {});
}

Result<TokenPage> decode_token_page(const std::string& body, ApiVersion version,
                                    const std::function<void(int, std::size_t)>& counted) {
  if (std::optional<TokenPage> page = scan_token_page(body, version)) {
    if (counted) counted(page->total_count, page->tokens.size());
    return std::move(*page);
  }
  return decode_token_page_via_tree(body, version, counted);
}

Result<TokenPage> decode_token_page_via_tree(const std::string& body, ApiVersion version,
                                             const std::function<void(int, std::size_t)>& counted) {
  auto obj = parse_object(body);
  if (!obj.ok()) return obj.error();
  Reader r{*obj.value(), "", std::nullopt};
  TokenPage page;
  if (auto v = r.bounded("limit", true)) page.limit = *v;
  if (auto v = r.bounded("offset", true)) page.offset = *v;
  if (auto v = r.bounded("totalCount", true)) page.total_count = *v;
  Array::Ptr tokens = r.array("tokens", true);
  if (r.error) return *r.error;
  if (counted) counted(page.total_count, tokens->size());
  page.tokens.reserve(tokens->size());
  for (size_t i = 0; i < tokens->size(); ++i) {
    std::string context = "tokens[" + std::to_string(i) + "]";
    if (!tokens->isObject(static_cast<unsigned>(i))) return invalid(context + " must be an object");
    auto token = read_token(*tokens->getObject(static_cast<unsigned>(i)), context, version);
    if (!token.ok()) return token.error();
    page.tokens.push_back(std::move(token.value()));
  }
  return page;
}

std::string encode_create_request(const CreateTokenRequest& request, ApiVersion version) {
  std::string out;
  bool first = true;
  out += '{';
  append_field(out, "name", request.name, first);
  append_field(out, "description", request.description, first);
  if (version == ApiVersion::V1) {
    append_field(out, "scope", to_string(request.type), first);
    append_field(out, "kind", to_string(request.kind), first);
  } else {
    append_field(out, "type", to_string(request.type), first);
  }
  append_field(out, "role", request.role, first);
  if (!request.entity_id.empty()) append_field(out, "entityId", request.entity_id, first);
  if (request.expiry_period_in_days)
    append_field(out, "tokenExpiryPeriodInDays", *request.expiry_period_in_days, first);
  out += '}';
  return out;
}

Result<CreateTokenRequest> decode_create_request(const std::string& body) {
  auto obj = parse_object(body);
  if (!obj.ok()) return obj.error();
  Reader r{*obj.value(), "", std::nullopt};
  CreateTokenRequest request;
  if (auto v = r.str("name", true)) request.name = *v;
  if (auto v = r.str("description", false)) request.description = *v;
  if (auto v = r.token_type("type", true)) request.type = *v;
  if (auto v = r.str("role", true)) request.role = *v;
  if (auto v = r.str("entityId", false)) request.entity_id = *v;
  if (auto v = r.integer("tokenExpiryPeriodInDays", false)) {
    if (*v < 1 || *v > 3650)
      r.fail("tokenExpiryPeriodInDays must be between 1 and 3650");
    else
      request.expiry_period_in_days = static_cast<int>(*v);
  }
  if (r.error) return *r.error;
  return request;
}

std::string encode_update_request(const UpdateTokenRequest& request) {
  std::string out;
  bool first = true;
  out += '{';
  append_field(out, "name", request.name, first);
  append_field(out, "description", request.description, first);
  out += '}';
  return out;
}

Result<UpdateTokenRequest> decode_update_request(const std::string& body) {
  auto obj = parse_object(body);
  if (!obj.ok()) return obj.error();
  Reader r{*obj.value(), "", std::nullopt};
  UpdateTokenRequest request;
  if (auto v = r.str("name", true)) request.name = *v;
  if (auto v = r.str("description", false)) request.description = *v;
  if (r.error) return *r.error;
  return request;
}

std::string encode_roles_request(const RoleSet& roles, ApiVersion version) {
  std::string out = "{\"roles\":";
  append_roles(out, roles, version);
  out += '}';
  return out;
}

Result<RoleSet> decode_roles_request(const std::string& body) {
  auto obj = parse_object(body);
  if (!obj.ok()) return obj.error();
  Reader r{*obj.value(), "", std::nullopt};
  Array::Ptr roles = r.array("roles", true);
  if (r.error) return *r.error;
  return read_roles(*roles, "roles", ApiVersion::V1Beta1);
}

std::string encode_subject_roles(const RoleSet& roles) {
  std::string out = "{";
  bool first = true;
  std::string deployments = "[";
  std::string workspaces = "[";
  for (const Role& role : roles) {
    if (role.entity_type == EntityType::Organization) {
      append_field(out, "organizationRole", role.role, first);
    } else if (role.entity_type == EntityType::Workspace) {
      if (workspaces.size() > 1) workspaces += ',';
      bool f = true;
      workspaces += '{';
      append_field(workspaces, "role", role.role, f);
      append_field(workspaces, "workspaceId", role.entity_id, f);
      workspaces += '}';
    } else {
      if (deployments.size() > 1) deployments += ',';
      bool f = true;
      deployments += '{';
      append_field(deployments, "deploymentId", role.entity_id, f);
      append_field(deployments, "role", role.role, f);
      deployments += '}';
    }
  }
  append_key(out, "deploymentRoles", first);
  out += deployments + "]";
  append_key(out, "workspaceRoles", first);
  out += workspaces + "]";
  out += '}';
  return out;
}

std::string encode_error(const ErrorBody& error) {
  std::string out;
  bool first = true;
  out += '{';
  append_field(out, "message", error.message, first);
  append_field(out, "requestId", error.request_id, first);
  append_field(out, "statusCode", error.status_code, first);
  out += '}';
  return out;
}

std::optional<ErrorBody> decode_error(const std::string& body) {
  auto obj = parse_object(body);
  if (!obj.ok()) return std::nullopt;
  Reader r{*obj.value(), "", std::nullopt};
  ErrorBody error;
  auto message = r.str("message", true);
  if (!message) return std::nullopt;
  error.message = *message;
  if (auto v = r.str("requestId", false)) error.request_id = *v;
  if (auto v = r.bounded("statusCode", false, std::numeric_limits<int>::min()))
    error.status_code = *v;
  if (Array::Ptr fields = r.array("fieldErrors", false)) {
    std::vector<FieldError> read;
    for (size_t i = 0; i < fields->size(); ++i) {
      if (!fields->isObject(static_cast<unsigned>(i))) return error;
      Reader f{*fields->getObject(static_cast<unsigned>(i)), "", std::nullopt};
      FieldError field;
      if (auto v = f.str("code", true)) field.code = *v;
      if (auto v = f.str("field", true)) field.field = *v;
      if (auto v = f.str("message", true)) field.message = *v;
      if (f.error) return error;
      read.push_back(std::move(field));
    }
    error.field_errors = std::move(read);
  }
  return error;
}

std::string describe(const ErrorBody& error) {
  std::string out = error.message;
  if (error.field_errors.empty()) return out;
  out += " (";
  for (size_t i = 0; i < error.field_errors.size(); ++i) {
    const FieldError& f = error.field_errors[i];
    if (i) out += "; ";
    out += f.field.empty() ? std::string("request") : f.field;
    out += ": ";
    const bool adds = !f.message.empty() && error.message.find(f.message) == std::string::npos;
    out += adds ? f.message : f.code;
  }
  out += ')';
  return out;
}

Result<IdPage> decode_id_page(const std::string& body, const std::string& collection) {
  auto obj = parse_object(body);
  if (!obj.ok()) return obj.error();
  Reader r{*obj.value(), "", std::nullopt};
  IdPage page;
  if (auto v = r.bounded("totalCount", true)) page.total_count = *v;
  Array::Ptr items = r.array(collection, true);
  if (r.error) return *r.error;
  for (size_t i = 0; i < items->size(); ++i) {
    std::string context = collection + "[" + std::to_string(i) + "]";
    if (!items->isObject(static_cast<unsigned>(i))) return invalid(context + " must be an object");
    Reader item{*items->getObject(static_cast<unsigned>(i)), context, std::nullopt};
    auto id = item.str("id", true);
    if (item.error) return *item.error;
    page.ids.push_back(*id);
  }
  return page;
}

}  // namespace tokend::astro::json
