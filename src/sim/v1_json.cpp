#include "sim/v1_json.h"

#include <Poco/Dynamic/Var.h>
#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include "util/json_parse.h"
#include "util/json_text.h"

namespace tokend::sim::v1 {

namespace {

using astro::ApiToken;
using Poco::JSON::Array;
using Poco::JSON::Object;

Error invalid(std::string message) { return Error::invalid(std::move(message)); }

Result<Object::Ptr> parse_object(const std::string& body) {
  auto root = parse_json(body);
  if (!root.ok()) return invalid("body is not valid JSON: " + root.error().message);
  if (root->type() != typeid(Object::Ptr)) return invalid("body is not a JSON object");
  return root->extract<Object::Ptr>();
}

// Field readers: the first problem is kept in `error`; a reader that fails
// answers nullopt.
struct Reader {
  const Object& obj;
  std::string context;  // "tokens[3]" …, "" at the top
  std::optional<Error> error;

  void fail(const std::string& message) {
    if (!error) error = invalid(message);
  }

  std::string name(const std::string& field) const {
    return context.empty() ? field : context + "." + field;
  }

  bool present(const std::string& field) const { return obj.has(field) && !obj.isNull(field); }

  std::optional<std::string> str(const std::string& field, bool required) {
    if (!present(field)) {
      if (required) fail("missing required field " + name(field));
      return std::nullopt;
    }
    Poco::Dynamic::Var v = obj.get(field);
    if (!v.isString()) {
      fail(name(field) + " must be a string");
      return std::nullopt;
    }
    return v.extract<std::string>();
  }

  std::optional<int64_t> integer(const std::string& field, bool required) {
    if (!present(field)) {
      if (required) fail("missing required field " + name(field));
      return std::nullopt;
    }
    Poco::Dynamic::Var v = obj.get(field);
    if (!v.isInteger()) {
      fail(name(field) + " must be an integer");
      return std::nullopt;
    }
    try {
      return v.convert<int64_t>();
    } catch (const Poco::Exception&) {
      fail(name(field) + " is out of range");
      return std::nullopt;
    }
  }

  std::optional<EntityType> token_type(const std::string& field, bool required) {
    auto s = str(field, required);
    if (!s) return std::nullopt;
    auto t = parse_token_type(*s);
    if (!t) fail(name(field) + " must be one of DEPLOYMENT, WORKSPACE, ORGANIZATION");
    return t;
  }

  std::optional<EntityType> entity_type(const std::string& field) {
    auto s = str(field, true);
    if (!s) return std::nullopt;
    auto t = parse_entity_type(*s);
    if (!t) fail(name(field) + " must be one of DAG, DAG_TAG, DEPLOYMENT, ORGANIZATION, WORKSPACE");
    return t;
  }

  std::optional<TokenKind> kind(const std::string& field, bool required) {
    auto s = str(field, required);
    if (!s) return std::nullopt;
    auto k = parse_token_kind(*s);
    if (!k) fail(name(field) + " must be one of DIRECT_ACCESS, STANDARD");
    return k;
  }

  // `scope`, or with Legacy `type` when `scope` is absent.
  std::optional<EntityType> scope(Dialect dialect) {
    if (dialect == Dialect::Legacy && !present("scope") && present("type"))
      return token_type("type", true);
    return token_type("scope", true);
  }

  std::optional<Timestamp> time(const std::string& field, bool required) {
    auto s = str(field, required);
    if (!s) return std::nullopt;
    auto t = parse_rfc3339(*s);
    if (!t) fail(name(field) + " is not a date-time");
    return t;
  }

  Array::Ptr array(const std::string& field, bool required) {
    if (!present(field)) {
      if (required) fail("missing required field " + name(field));
      return nullptr;
    }
    if (!obj.isArray(field)) {
      fail(name(field) + " must be an array");
      return nullptr;
    }
    return obj.getArray(field);
  }
};

// Calls `each(item, context)` for every element of `array`, which must be objects.
template <typename Each>
Status for_each_object(const Array& array, const std::string& context, Each&& each) {
  for (size_t i = 0; i < array.size(); ++i) {
    std::string item_context = context + "[" + std::to_string(i) + "]";
    if (!array.isObject(static_cast<unsigned>(i)))
      return invalid(item_context + " must be an object");
    Status done = each(*array.getObject(static_cast<unsigned>(i)), item_context);
    if (!done.ok()) return done;
  }
  return ok_status();
}

Result<RoleSet> read_roles(const Array& array, const std::string& context) {
  RoleSet roles;
  Status read = for_each_object(array, context, [&](const Object& item, const std::string& where) {
    Reader r{item, where, std::nullopt};
    auto role = r.str("role", true);
    auto entity_id = r.str("entityId", true);
    auto entity_type = r.entity_type("entityType");
    auto deployment_id = r.str("deploymentId", false);
    if (r.error) return Status(*r.error);
    roles.emplace_back(*role, *entity_id, *entity_type, deployment_id.value_or(""));
    return ok_status();
  });
  if (!read.ok()) return read.error();
  return roles;
}

Result<ApiToken> read_token(const Object& obj, const std::string& context, Dialect dialect) {
  Reader r{obj, context, std::nullopt};
  ApiToken t;
  if (auto v = r.str("id", true)) t.id = *v;
  if (auto v = r.str("name", true)) t.name = *v;
  if (auto v = r.str("description", true)) t.description = *v;
  if (auto v = r.scope(dialect)) t.type = *v;
  if (auto v = r.kind("kind", dialect == Dialect::V1)) t.kind = *v;
  if (auto v = r.str("shortToken", true)) t.short_token = *v;
  if (auto v = r.time("createdAt", true)) t.created_at = *v;
  if (auto v = r.time("updatedAt", true)) t.updated_at = *v;
  if (auto v = r.time("startAt", true)) t.start_at = *v;
  t.end_at = r.time("endAt", false);
  t.last_used_at = r.time("lastUsedAt", false);
  t.last_rotated_at = r.time("lastRotatedAt", false);
  if (auto v = r.integer("expiryPeriodInDays", false))
    t.expiry_period_in_days = static_cast<int>(*v);
  if (auto v = r.str("token", false)) t.token = SecretValue(*v);
  Array::Ptr roles = r.array("roles", false);
  if (r.error) return *r.error;
  if (roles) {
    auto parsed = read_roles(*roles, r.name("roles"));
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

void append_roles(std::string& out, const RoleSet& roles) {
  out += '[';
  bool first_role = true;
  for (const Role& role : roles) {
    if (!first_role) out += ',';
    first_role = false;
    bool first = true;
    out += '{';
    if (is_dag_entity(role.entity_type) || !role.deployment_id.empty())
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
  append_field(out, "scope", to_string(t.type), first);
  append_field(out, "kind", to_string(t.kind), first);
  append_field(out, "shortToken", t.short_token, first);
  append_field(out, "createdAt", format_rfc3339(t.created_at), first);
  append_field(out, "updatedAt", format_rfc3339(t.updated_at), first);
  append_field(out, "startAt", format_rfc3339(t.start_at), first);
  if (t.end_at) append_field(out, "endAt", format_rfc3339(*t.end_at), first);
  if (t.last_used_at) append_field(out, "lastUsedAt", format_rfc3339(*t.last_used_at), first);
  if (t.last_rotated_at)
    append_field(out, "lastRotatedAt", format_rfc3339(*t.last_rotated_at), first);
  if (t.expiry_period_in_days)
    append_field(out, "expiryPeriodInDays", *t.expiry_period_in_days, first);
  append_key(out, "roles", first);
  append_roles(out, t.roles);
  if (include_secret && !t.token.empty()) append_field(out, "token", t.token.reveal(), first);
  out += '}';
}

}  // namespace

std::string encode_token(const ApiToken& token, bool include_secret) {
  std::string out;
  append_token(out, token, include_secret);
  return out;
}

Result<ApiToken> decode_token(const std::string& body, Dialect dialect) {
  auto obj = parse_object(body);
  if (!obj.ok()) return obj.error();
  return read_token(*obj.value(), "", dialect);
}

std::string encode_token_page(const astro::json::TokenPage& page) {
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

Result<astro::json::TokenPage> decode_token_page(const std::string& body, Dialect dialect) {
  auto obj = parse_object(body);
  if (!obj.ok()) return obj.error();
  Reader r{*obj.value(), "", std::nullopt};
  astro::json::TokenPage page;
  if (auto v = r.integer("limit", true)) page.limit = static_cast<int>(*v);
  if (auto v = r.integer("offset", true)) page.offset = static_cast<int>(*v);
  if (auto v = r.integer("totalCount", true)) page.total_count = static_cast<int>(*v);
  Array::Ptr tokens = r.array("tokens", true);
  if (r.error) return *r.error;
  page.tokens.reserve(tokens->size());
  Status read = for_each_object(*tokens, "tokens", [&](const Object& item, const std::string& at) {
    auto token = read_token(item, at, dialect);
    if (!token.ok()) return Status(token.error());
    page.tokens.push_back(std::move(token.value()));
    return ok_status();
  });
  if (!read.ok()) return read.error();
  return page;
}

std::string encode_create_request(const astro::CreateTokenRequest& request) {
  std::string out;
  bool first = true;
  out += '{';
  append_field(out, "name", request.name, first);
  append_field(out, "description", request.description, first);
  append_field(out, "scope", to_string(request.type), first);
  append_field(out, "kind", to_string(request.kind), first);
  append_field(out, "role", request.role, first);
  if (!request.entity_id.empty()) append_field(out, "entityId", request.entity_id, first);
  if (request.expiry_period_in_days)
    append_field(out, "tokenExpiryPeriodInDays", *request.expiry_period_in_days, first);
  out += '}';
  return out;
}

Result<astro::CreateTokenRequest> decode_create_request(const std::string& body, Dialect dialect) {
  auto obj = parse_object(body);
  if (!obj.ok()) return obj.error();
  Reader r{*obj.value(), "", std::nullopt};
  astro::CreateTokenRequest request;
  if (auto v = r.str("name", true)) request.name = *v;
  if (auto v = r.str("description", false)) request.description = *v;
  if (auto v = r.scope(dialect)) request.type = *v;
  if (auto v = r.kind("kind", false)) request.kind = *v;
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

std::string encode_roles_request(const RoleSet& roles) {
  std::string out = "{\"roles\":";
  append_roles(out, roles);
  out += '}';
  return out;
}

Result<RoleSet> decode_roles_request(const std::string& body) {
  auto obj = parse_object(body);
  if (!obj.ok()) return obj.error();
  Reader r{*obj.value(), "", std::nullopt};
  Array::Ptr roles = r.array("roles", true);
  if (r.error) return *r.error;
  return read_roles(*roles, "roles");
}

std::string encode_subject_roles(const RoleSet& roles) {
  std::string out = "{";
  bool first = true;
  std::string dags = "[";
  std::string deployments = "[";
  std::string workspaces = "[";
  auto open_item = [](std::string& list) {
    if (list.size() > 1) list += ',';
    list += '{';
  };
  for (const Role& role : roles) {
    bool f = true;
    switch (role.entity_type) {
      case EntityType::Organization:
        append_field(out, "organizationRole", role.role, first);
        break;
      case EntityType::Workspace:
        open_item(workspaces);
        append_field(workspaces, "role", role.role, f);
        append_field(workspaces, "workspaceId", role.entity_id, f);
        workspaces += '}';
        break;
      case EntityType::Deployment:
        open_item(deployments);
        append_field(deployments, "deploymentId", role.entity_id, f);
        append_field(deployments, "role", role.role, f);
        deployments += '}';
        break;
      case EntityType::Dag:
      case EntityType::DagTag:
        open_item(dags);
        append_field(dags, role.entity_type == EntityType::Dag ? "dagId" : "dagTag", role.entity_id,
                     f);
        append_field(dags, "deploymentId", role.deployment_id, f);
        append_field(dags, "role", role.role, f);
        dags += '}';
        break;
    }
  }
  append_key(out, "dagRoles", first);
  out += dags + "]";
  append_key(out, "deploymentRoles", first);
  out += deployments + "]";
  append_key(out, "workspaceRoles", first);
  out += workspaces + "]";
  out += '}';
  return out;
}

Result<RoleSet> decode_subject_roles(const std::string& body, const std::string& org_id) {
  auto obj = parse_object(body);
  if (!obj.ok()) return obj.error();
  Reader r{*obj.value(), "", std::nullopt};
  RoleSet roles;
  if (auto v = r.str("organizationRole", false))
    roles.emplace_back(*v, org_id, EntityType::Organization);
  Array::Ptr workspaces = r.array("workspaceRoles", false);
  Array::Ptr deployments = r.array("deploymentRoles", false);
  Array::Ptr dags = r.array("dagRoles", false);
  if (r.error) return *r.error;
  auto read = [&](const Array::Ptr& list, const std::string& field, auto&& add) -> Status {
    if (!list) return ok_status();
    return for_each_object(*list, field, [&](const Object& item, const std::string& where) {
      Reader ir{item, where, std::nullopt};
      add(ir);
      if (ir.error) return Status(*ir.error);
      return ok_status();
    });
  };
  Status read_all[] = {read(workspaces, "workspaceRoles",
                            [&](Reader& ir) {
                              auto role = ir.str("role", true);
                              auto id = ir.str("workspaceId", true);
                              if (role && id) roles.emplace_back(*role, *id, EntityType::Workspace);
                            }),
                       read(deployments, "deploymentRoles",
                            [&](Reader& ir) {
                              auto id = ir.str("deploymentId", true);
                              auto role = ir.str("role", true);
                              if (role && id)
                                roles.emplace_back(*role, *id, EntityType::Deployment);
                            }),
                       read(dags, "dagRoles", [&](Reader& ir) {
                         auto dag = ir.str("dagId", false);
                         auto tag = ir.str("dagTag", false);
                         auto deployment = ir.str("deploymentId", true);
                         auto role = ir.str("role", true);
                         if (!dag == !tag)
                           ir.fail(ir.context + " must have exactly one of dagId and dagTag");
                         if (ir.error) return;
                         roles.emplace_back(*role, dag ? *dag : *tag,
                                            dag ? EntityType::Dag : EntityType::DagTag,
                                            *deployment);
                       })};
  for (const Status& s : read_all)
    if (!s.ok()) return s.error();
  return normalize_roles(std::move(roles));
}

std::string encode_error(const ErrorBody& error) {
  std::string out;
  bool first = true;
  out += '{';
  if (!error.field_errors.empty()) {
    append_key(out, "fieldErrors", first);
    out += '[';
    for (size_t i = 0; i < error.field_errors.size(); ++i) {
      const FieldError& f = error.field_errors[i];
      if (i) out += ',';
      bool ff = true;
      out += '{';
      append_field(out, "code", f.code, ff);
      append_field(out, "field", f.field, ff);
      append_field(out, "message", f.message, ff);
      out += '}';
    }
    out += ']';
  }
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
  if (auto v = r.integer("statusCode", false)) error.status_code = static_cast<int>(*v);
  if (Array::Ptr fields = r.array("fieldErrors", false)) {
    Status read = for_each_object(*fields, "fieldErrors", [&](const Object& item, const auto& at) {
      Reader fr{item, at, std::nullopt};
      FieldError f;
      if (auto v = fr.str("code", true)) f.code = *v;
      if (auto v = fr.str("field", true)) f.field = *v;
      if (auto v = fr.str("message", true)) f.message = *v;
      if (fr.error) return Status(*fr.error);
      error.field_errors.push_back(std::move(f));
      return ok_status();
    });
    if (!read.ok()) return std::nullopt;
  }
  return error;
}

}  // namespace tokend::sim::v1
