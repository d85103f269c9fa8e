#include "spec/terraform_state.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include "util/json_parse.h"

namespace tokend::spec {

namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

Error invalid(std::string message) { return Error(ErrorKind::Invalid, std::move(message)); }

std::optional<std::string> string_field(const Object::Ptr& object, const std::string& name) {
  if (!object->has(name)) return std::nullopt;
  Poco::Dynamic::Var value = object->get(name);
  if (!value.isString()) return std::nullopt;
  return value.extract<std::string>();
}

// `["prod"]` for a string key, `[0]` for an integer one, "" for none.
std::optional<std::string> index_text(const Object::Ptr& instance) {
  if (!instance->has("index_key")) return "";
  Poco::Dynamic::Var key = instance->get("index_key");
  if (key.isEmpty()) return "";
  if (key.isString()) {
    std::string quoted = "[\"";
    for (char c : key.extract<std::string>()) {
      if (c == '"' || c == '\\') quoted += '\\';
      quoted += c;
    }
    quoted.append("\"]");
    return quoted;
  }
  if (key.isInteger()) {
    std::string text(1, '[');
    text.append(key.convert<std::string>());
    text.push_back(']');
    return text;
  }
  return std::nullopt;
}

std::string without_module_words(const std::string& module) {
  std::string out;
  size_t at = 0;
  while (at < module.size()) {
    if (module.compare(at, 7, "module.") == 0) at += 7;
    size_t next = module.find(".module.", at);
    const size_t end = next == std::string::npos ? module.size() : next;
    out += module.substr(at, end - at) + ".";
    at = next == std::string::npos ? module.size() : next + 1;
  }
  return out;
}

Result<TerraformState> parse(const Object::Ptr& root) {
  if (!root->has("version")) return invalid("not a Terraform state: no \"version\" field");
  Poco::Dynamic::Var version = root->get("version");
  if (!version.isInteger() || version.convert<int64_t>() != 4)
    return invalid("unsupported Terraform state format version " + version.toString() +
                   " (format version 4 is read, as \"terraform state pull\" writes it)");
  TerraformState state;
  Array::Ptr resources = root->has("resources") ? root->getArray("resources") : nullptr;
  if (root->has("resources") && !resources) return invalid("\"resources\" is not an array");
  const size_t resource_count = resources ? resources->size() : 0;
  for (size_t r = 0; r < resource_count; ++r) {
    Object::Ptr resource = resources->getObject(static_cast<unsigned>(r));
    if (!resource) return invalid("resources[" + std::to_string(r) + "] is not an object");
    const std::string mode = string_field(resource, "mode").value_or("");
    const std::string type = string_field(resource, "type").value_or("");
    const std::string name = string_field(resource, "name").value_or("");
    const std::string module = string_field(resource, "module").value_or("");
    Array::Ptr instances = resource->has("instances") ? resource->getArray("instances") : nullptr;
    const int instance_count = instances ? static_cast<int>(instances->size()) : 0;
    if (mode == "data") {
      state.data_sources += instance_count;
      continue;
    }
    if (mode != "managed" || type != "astro_api_token") {
      state.other_resources += instance_count;
      continue;
    }
    const std::string base = (module.empty() ? "" : module + ".") + "astro_api_token." + name;
    for (int i = 0; i < instance_count; ++i) {
      Object::Ptr instance = instances->getObject(static_cast<unsigned>(i));
      const std::string where =
          base + " (resources[" + std::to_string(r) + "].instances[" + std::to_string(i) + "])";
      if (!instance) return invalid(where + " is not an object");
      std::optional<std::string> index = index_text(instance);
      if (!index) return invalid(where + ": index_key is neither a string nor an integer");
      TerraformToken token;
      token.address = base + *index;
      token.key_source = (module.empty() ? "" : without_module_words(module)) + name + *index;
      Object::Ptr attributes =
          instance->has("attributes") ? instance->getObject("attributes") : nullptr;
      std::optional<std::string> id = attributes ? string_field(attributes, "id") : std::nullopt;
      if (!id || id->empty()) return invalid(token.address + " has no \"id\" attribute");
      token.id = *id;
      token.name = string_field(attributes, "name");
      token.description = string_field(attributes, "description");
      token.type = string_field(attributes, "type");
      if (attributes->has("expiry_period_in_days")) {
        Poco::Dynamic::Var days = attributes->get("expiry_period_in_days");
        if (days.isInteger()) token.expiry_period_in_days = days.convert<int>();
      }
      if (std::optional<std::string> value = string_field(attributes, "token"))
        token.value = SecretValue(std::move(*value));
      token.tainted = string_field(instance, "status").value_or("") == "tainted";
      token.deposed = instance->has("deposed");
      state.tokens.push_back(std::move(token));
    }
  }
  if (state.tokens.empty()) return invalid("it holds no managed astro_api_token resources");
  return state;
}

}  // namespace

Result<TerraformState> parse_terraform_state(std::string_view text) {
  auto parsed = parse_json(text);
  if (!parsed.ok()) return invalid("not JSON: " + parsed.error().message);
  if (parsed->type() != typeid(Object::Ptr))
    return invalid("not a Terraform state: not a JSON object");
  try {
    return parse(parsed->extract<Object::Ptr>());
  } catch (const Poco::Exception& e) {
    return invalid("not a Terraform state: " + e.message());
  } catch (const std::exception& e) {
    return invalid(std::string("not a Terraform state: ") + e.what());
  }
}

}  // namespace tokend::spec
