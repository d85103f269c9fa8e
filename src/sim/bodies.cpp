#include "sim/bodies.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Stringifier.h>

#include <set>
#include <sstream>

#include "sim/v1_json.h"
#include "util/json_parse.h"
#include "util/json_text.h"

namespace tokend::sim {

namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

constexpr const char* kDefaultWorkspaceId = "clx42sxw501gl01o0gjenthnh";
constexpr const char* kDefaultDeploymentId = "clyn6kxud003x01mtxmccegnh";
constexpr int kMaxBulkCount = 100000;

Error invalid(std::string message) { return Error::invalid(std::move(message)); }

Result<Object::Ptr> parse_object(const std::string& body) {
  auto root = parse_json(body);
  if (!root.ok()) return invalid("body is not valid JSON: " + root.error().message);
  if (root->type() != typeid(Object::Ptr)) return invalid("body must be a JSON object");
  return root->extract<Object::Ptr>();
}

std::string stringify(const Object& obj) {
  std::ostringstream out;
  Poco::JSON::Stringifier::stringify(obj, out);
  return out.str();
}

// A string field: nullopt when absent; Error when present but not a string.
Result<std::optional<std::string>> opt_string(const Object& obj, const std::string& field,
                                              const std::string& where) {
  if (!obj.has(field) || obj.isNull(field)) return std::optional<std::string>();
  Poco::Dynamic::Var v = obj.get(field);
  if (!v.isString()) return invalid(where + field + " must be a string");
  return std::optional<std::string>(v.extract<std::string>());
}

Result<Timestamp> timestamp_field(const Object& obj, const std::string& field) {
  Poco::Dynamic::Var v = obj.get(field);
  if (!v.isString()) return invalid(field + " must be a date-time string");
  auto t = parse_rfc3339(v.extract<std::string>());
  if (!t) return invalid(field + " is not a date-time such as 2024-01-02T03:04:05Z");
  return *t;
}

Result<NewToken> read_new_token(const Object& obj, const std::string& where) {
  std::string text = stringify(obj);
  auto request = v1::decode_create_request(text, v1::Dialect::Legacy);
  if (!request.ok()) return invalid(where + request.error().message);
  NewToken token{*request, std::nullopt, ""};
  auto id = opt_string(obj, "id", where);
  if (!id.ok()) return id.error();
  if (*id) token.id = **id;
  if (obj.has("roles") && !obj.isNull("roles")) {
    auto roles = v1::decode_roles_request(text);
    if (!roles.ok()) return invalid(where + roles.error().message);
    token.roles = *roles;
  }
  return token;
}

Result<std::vector<NewToken>> read_new_tokens(const Object& obj, const std::string& field) {
  std::vector<NewToken> tokens;
  if (!obj.has(field)) return tokens;
  if (!obj.isArray(field)) return invalid(field + " must be an array");
  Array::Ptr items = obj.getArray(field);
  tokens.reserve(items->size());
  for (unsigned i = 0; i < items->size(); ++i) {
    std::string where = field + "[" + std::to_string(i) + "]: ";
    if (!items->isObject(i)) return invalid(where + "must be an object");
    auto token = read_new_token(*items->getObject(i), where);
    if (!token.ok()) return token.error();
    tokens.push_back(std::move(*token));
  }
  return tokens;
}

Result<std::vector<std::string>> read_string_array(const Object& obj, const std::string& key,
                                                   bool required) {
  std::vector<std::string> out;
  if (!obj.has(key)) {
    if (required) return invalid("missing required field " + key);
    return out;
  }
  if (!obj.isArray(key)) return invalid(key + " must be an array");
  Array::Ptr items = obj.getArray(key);
  out.reserve(items->size());
  for (unsigned i = 0; i < items->size(); ++i) {
    Poco::Dynamic::Var v = items->get(i);
    if (!v.isString()) return invalid(key + "[" + std::to_string(i) + "] must be a string");
    out.push_back(v.extract<std::string>());
  }
  return out;
}

void append_subject(std::string& out, const std::string& key) {
  out += "\"" + key +
         "\":{\"id\":\"clsimuser0000000000000000\",\"subjectType\":\"USER\","
         "\"username\":\"sim@astro-api-sim.invalid\",\"fullName\":\"astro-api-sim\"}";
}

void append_string(std::string& out, const char* key, std::string_view value) {
  out += '"';
  out += key;
  out += "\":";
  append_json_string(out, value);
  out += ',';
}

void append_raw(std::string& out, const char* key, std::string_view value) {
  out += '"';
  out += key;
  out += "\":";
  out += value;
  out += ',';
}

}  // namespace

Seed default_seed(Timestamp now) {
  Seed seed;
  seed.workspaces.push_back({kDefaultWorkspaceId, "Default Workspace", "", now});
  seed.deployments.push_back(
      {kDefaultDeploymentId, "default-deployment", "", kDefaultWorkspaceId, now});
  return seed;
}

Result<Seed> decode_seed(const std::string& json, Timestamp now) {
  auto parsed = parse_object(json);
  if (!parsed.ok()) return parsed.error();
  const Object& obj = **parsed;
  for (const auto& [name, value] : obj) {
    if (name != "workspaces" && name != "deployments" && name != "tokens")
      return invalid("unknown field " + name + " (expected workspaces, deployments, tokens)");
  }
  Seed seed;
  std::set<std::string> ids;
  auto read_entities = [&](const std::string& field, auto&& add) -> Status {
    if (!obj.has(field)) return ok_status();
    if (!obj.isArray(field)) return invalid(field + " must be an array");
    Array::Ptr items = obj.getArray(field);
    for (unsigned i = 0; i < items->size(); ++i) {
      std::string where = field + "[" + std::to_string(i) + "].";
      if (!items->isObject(i))
        return invalid(field + "[" + std::to_string(i) + "] must be an object");
      const Object& item = *items->getObject(i);
      auto id = opt_string(item, "id", where);
      auto name = opt_string(item, "name", where);
      auto description = opt_string(item, "description", where);
      for (const auto* r : {&id, &name, &description})
        if (!r->ok()) return r->error();
      if (!*id || (*id)->empty()) return invalid(where + "id is required");
      if (!ids.insert(**id).second) return invalid(where + "id " + **id + " is repeated");
      Status added = add(item, where, **id, name->value_or(**id), description->value_or(""));
      if (!added.ok()) return added;
    }
    return ok_status();
  };
  Status workspaces =
      read_entities("workspaces",
                    [&](const Object&, const std::string&, const std::string& id,
                        const std::string& name, const std::string& description) -> Status {
                      seed.workspaces.push_back({id, name, description, now});
                      return ok_status();
                    });
  if (!workspaces.ok()) return workspaces.error();
  Status deployments = read_entities(
      "deployments",
      [&](const Object& item, const std::string& where, const std::string& id,
          const std::string& name, const std::string& description) -> Status {
        auto workspace = opt_string(item, "workspaceId", where);
        if (!workspace.ok()) return workspace.error();
        if (!*workspace) return invalid(where + "workspaceId is required");
        bool known = false;
        for (const Workspace& w : seed.workspaces) known = known || w.id == **workspace;
        if (!known)
          return invalid(where + "workspaceId " + **workspace + " is not a seeded workspace");
        seed.deployments.push_back({id, name, description, **workspace, now});
        return ok_status();
      });
  if (!deployments.ok()) return deployments.error();
  auto tokens = read_new_tokens(obj, "tokens");
  if (!tokens.ok()) return tokens.error();
  seed.tokens = std::move(*tokens);
  return seed;
}

std::string encode_new_token(const NewToken& token) {
  std::string out = v1::encode_create_request(token.request);
  out.pop_back();  // the closing brace
  if (!token.id.empty()) out += ",\"id\":" + json_quote(token.id);
  if (token.roles) {
    std::string roles = v1::encode_roles_request(*token.roles);  // {"roles":[…]}
    out += "," + roles.substr(1, roles.size() - 2);
  }
  out += '}';
  return out;
}

std::string encode_bulk_create(const BulkCreate& request) {
  std::string out = "{\"includeValues\":";
  out += request.include_values ? "true" : "false";
  out += ",\"tokens\":[";
  for (size_t i = 0; i < request.tokens.size(); ++i) {
    if (i) out += ',';
    out += encode_new_token(request.tokens[i]);
  }
  out += "]}";
  return out;
}

Result<BulkCreate> decode_bulk_create(const std::string& body) {
  auto parsed = parse_object(body);
  if (!parsed.ok()) return parsed.error();
  const Object& obj = **parsed;
  for (const auto& [name, value] : obj) {
    if (name != "tokens" && name != "template" && name != "count" && name != "includeValues")
      return invalid("unknown field " + name);
  }
  BulkCreate request;
  if (obj.has("includeValues")) {
    Poco::Dynamic::Var v = obj.get("includeValues");
    if (!v.isBoolean()) return invalid("includeValues must be a boolean");
    request.include_values = v.extract<bool>();
  }
  if (obj.has("template") == obj.has("tokens"))
    return invalid("give either tokens or template with count");
  if (obj.has("tokens")) {
    auto tokens = read_new_tokens(obj, "tokens");
    if (!tokens.ok()) return tokens.error();
    request.tokens = std::move(*tokens);
    return request;
  }
  if (!obj.isObject("template")) return invalid("template must be an object");
  Poco::Dynamic::Var count = obj.has("count") ? obj.get("count") : Poco::Dynamic::Var();
  if (count.isEmpty() || !count.isInteger()) return invalid("count must be an integer");
  int64_t n = count.convert<int64_t>();
  if (n < 1 || n > kMaxBulkCount)
    return invalid("count must be between 1 and " + std::to_string(kMaxBulkCount));
  auto templ = read_new_token(*obj.getObject("template"), "template: ");
  if (!templ.ok()) return templ.error();
  if (!templ->id.empty()) return invalid("template: id cannot be used with count");
  request.tokens.reserve(static_cast<size_t>(n));
  for (int64_t i = 1; i <= n; ++i) {
    NewToken token = *templ;
    token.request.name += "-" + std::to_string(i);
    request.tokens.push_back(std::move(token));
  }
  return request;
}

std::string encode_bulk_created(const BulkCreated& created) {
  std::string out = encode_string_list("ids", created.ids);
  if (!created.values.empty()) {
    std::string values = encode_string_list("values", created.values);
    out.pop_back();
    out += "," + values.substr(1);
  }
  return out;
}

Result<BulkCreated> decode_bulk_created(const std::string& body) {
  auto parsed = parse_object(body);
  if (!parsed.ok()) return parsed.error();
  BulkCreated created;
  auto ids = read_string_array(**parsed, "ids", true);
  if (!ids.ok()) return ids.error();
  created.ids = std::move(*ids);
  auto values = read_string_array(**parsed, "values", false);
  if (!values.ok()) return values.error();
  created.values = std::move(*values);
  return created;
}

std::string encode_token_patch(const TokenPatch& patch) {
  std::string out = "{";
  auto time_or_null = [](const std::optional<Timestamp>& t) {
    return t ? json_quote(format_rfc3339(*t)) : std::string("null");
  };
  if (patch.name) append_string(out, "name", *patch.name);
  if (patch.description) append_string(out, "description", *patch.description);
  if (patch.roles) {
    std::string roles = v1::encode_roles_request(*patch.roles);
    out += roles.substr(1, roles.size() - 2) + ",";
  }
  if (patch.kind) append_string(out, "kind", to_string(*patch.kind));
  if (patch.start_at) append_raw(out, "startAt", json_quote(format_rfc3339(*patch.start_at)));
  if (patch.created_at) append_raw(out, "createdAt", json_quote(format_rfc3339(*patch.created_at)));
  if (patch.updated_at) append_raw(out, "updatedAt", json_quote(format_rfc3339(*patch.updated_at)));
  if (patch.end_at) append_raw(out, "endAt", time_or_null(*patch.end_at));
  if (patch.last_used_at) append_raw(out, "lastUsedAt", time_or_null(*patch.last_used_at));
  if (patch.last_rotated_at) append_raw(out, "lastRotatedAt", time_or_null(*patch.last_rotated_at));
  if (patch.expiry_period_in_days)
    append_raw(
        out, "expiryPeriodInDays",
        *patch.expiry_period_in_days ? std::to_string(**patch.expiry_period_in_days) : "null");
  if (out.size() > 1) out.pop_back();  // the trailing comma
  out += '}';
  return out;
}

Result<TokenPatch> decode_token_patch(const std::string& body) {
  auto parsed = parse_object(body);
  if (!parsed.ok()) return parsed.error();
  const Object& obj = **parsed;
  static const std::set<std::string> kFields = {
      "name",      "description", "roles",      "kind",          "startAt",           "createdAt",
      "updatedAt", "endAt",       "lastUsedAt", "lastRotatedAt", "expiryPeriodInDays"};
  for (const auto& [name, value] : obj) {
    if (!kFields.contains(name)) return invalid("unknown field " + name);
  }
  TokenPatch patch;
  for (const char* field : {"name", "description"}) {
    auto v = opt_string(obj, field, "");
    if (!v.ok()) return v.error();
    if (obj.has(field) && !*v) return invalid(std::string(field) + " must be a string");
    (std::string_view(field) == "name" ? patch.name : patch.description) = *v;
  }
  if (obj.has("roles")) {
    auto roles = v1::decode_roles_request(body);
    if (!roles.ok()) return roles.error();
    patch.roles = *roles;
  }
  if (obj.has("kind")) {
    auto kind = opt_string(obj, "kind", "");
    if (!kind.ok()) return kind.error();
    std::optional<TokenKind> kind_value = *kind ? parse_token_kind(**kind) : std::nullopt;
    if (!kind_value) return invalid("kind must be one of DIRECT_ACCESS, STANDARD");
    patch.kind = *kind_value;
  }
  struct TimeField {
    const char* name;
    std::optional<Timestamp>* required;
    std::optional<std::optional<Timestamp>>* nullable;
  };
  for (const TimeField& f : {TimeField{"startAt", &patch.start_at, nullptr},
                             TimeField{"createdAt", &patch.created_at, nullptr},
                             TimeField{"updatedAt", &patch.updated_at, nullptr},
                             TimeField{"endAt", nullptr, &patch.end_at},
                             TimeField{"lastUsedAt", nullptr, &patch.last_used_at},
                             TimeField{"lastRotatedAt", nullptr, &patch.last_rotated_at}}) {
    if (!obj.has(f.name)) continue;
    if (obj.isNull(f.name)) {
      if (!f.nullable) return invalid(std::string(f.name) + " cannot be null");
      *f.nullable = std::optional<Timestamp>();
      continue;
    }
    auto t = timestamp_field(obj, f.name);
    if (!t.ok()) return t.error();
    if (f.required)
      *f.required = *t;
    else
      *f.nullable = std::optional<Timestamp>(*t);
  }
  if (obj.has("expiryPeriodInDays")) {
    if (obj.isNull("expiryPeriodInDays")) {
      patch.expiry_period_in_days = std::optional<int>();
    } else {
      Poco::Dynamic::Var v = obj.get("expiryPeriodInDays");
      if (!v.isInteger()) return invalid("expiryPeriodInDays must be an integer or null");
      int64_t days = v.convert<int64_t>();
      if (days < 1 || days > 3650) return invalid("expiryPeriodInDays must be between 1 and 3650");
      patch.expiry_period_in_days = std::optional<int>(static_cast<int>(days));
    }
  }
  return patch;
}

std::string encode_workspace_page(const Page<Workspace>& page, const std::string& org_id) {
  std::string out = "{";
  append_raw(out, "limit", std::to_string(page.limit));
  append_raw(out, "offset", std::to_string(page.offset));
  append_raw(out, "totalCount", std::to_string(page.total_count));
  out += "\"workspaces\":[";
  for (size_t i = 0; i < page.items.size(); ++i) {
    const Workspace& w = page.items[i];
    if (i) out += ',';
    out += '{';
    append_raw(out, "cicdEnforcedDefault", "false");
    append_string(out, "createdAt", format_rfc3339(w.created_at));
    append_subject(out, "createdBy");
    out += ',';
    append_string(out, "description", w.description);
    append_string(out, "id", w.id);
    append_string(out, "name", w.name);
    append_string(out, "organizationId", org_id);
    append_string(out, "organizationName", "Simulated Organization");
    append_string(out, "updatedAt", format_rfc3339(w.created_at));
    append_subject(out, "updatedBy");
    out += '}';
  }
  out += "]}";
  return out;
}

std::string encode_deployment_page(const Page<Deployment>& page, const Organization& org,
                                   ApiVersion version) {
  std::string out = "{";
  out += "\"deployments\":[";
  for (size_t i = 0; i < page.items.size(); ++i) {
    const Deployment& d = page.items[i];
    const Workspace* w = org.find_workspace(d.workspace_id);
    std::string short_id = d.id.substr(d.id.size() > 8 ? d.id.size() - 8 : 0);
    std::string host = "sim.astronomer.run/d" + short_id;
    if (i) out += ',';
    out += '{';
    append_string(out, "airflowVersion", "2.9.2");
    if (version == ApiVersion::V1) append_string(out, "apiUrl", "https://" + host + "/api/v2");
    append_string(out, "astroRuntimeVersion", "11.5.0");
    append_string(out, "cloudProvider", "AWS");
    append_string(out, "createdAt", format_rfc3339(d.created_at));
    append_subject(out, "createdBy");
    out += ',';
    append_string(out, "description", d.description);
    append_string(out, "executor", "CELERY");
    append_string(out, "id", d.id);
    append_string(out, "imageRepository", "images.astronomer.cloud/" + org.id() + "/" + d.id);
    append_string(out, "imageTag", "deploy-2024-01-01T00-00");
    append_raw(out, "isCicdEnforced", "false");
    append_raw(out, "isDagDeployEnabled", "true");
    append_raw(out, "isHighAvailability", "false");
    append_string(out, "name", d.name);
    append_string(out, "namespace", "sim-namespace-" + short_id);
    append_string(out, "organizationId", org.id());
    append_string(out, "region", "us-east-1");
    append_string(out, "runtimeVersion", "11.5.0");
    append_string(out, "schedulerCpu", "1");
    append_string(out, "schedulerMemory", "2Gi");
    append_raw(out, "schedulerReplicas", "1");
    append_string(out, "schedulerSize", "SMALL");
    append_string(out, "status", "HEALTHY");
    append_string(out, "type", "STANDARD");
    if (version == ApiVersion::V1) append_string(out, "uiUrl", "https://" + host);
    append_string(out, "updatedAt", format_rfc3339(d.created_at));
    append_subject(out, "updatedBy");
    out += ',';
    append_string(out, "webServerAirflowApiUrl", host + "/api/v1");
    append_string(out, "webServerCpu", "0.5");
    append_string(out, "webServerIngressHostname", host);
    append_string(out, "webServerMemory", "1Gi");
    append_raw(out, "webServerReplicas", "1");
    append_string(out, "webServerUrl", host + "?orgId=" + org.id());
    append_string(out, "workspaceId", d.workspace_id);
    out += "\"workspaceName\":" + json_quote(w ? w->name : d.workspace_id);
    out += '}';
  }
  out += "],";
  append_raw(out, "limit", std::to_string(page.limit));
  append_raw(out, "offset", std::to_string(page.offset));
  out += "\"totalCount\":" + std::to_string(page.total_count) + "}";
  return out;
}

std::string encode_string_list(const std::string& key, const std::vector<std::string>& values) {
  std::string out = "{" + json_quote(key) + ":[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    append_json_string(out, values[i]);
  }
  out += "]}";
  return out;
}

Result<std::vector<std::string>> decode_string_list(const std::string& body,
                                                    const std::string& key) {
  auto parsed = parse_object(body);
  if (!parsed.ok()) return parsed.error();
  return read_string_array(**parsed, key, true);
}

}  // namespace tokend::sim
