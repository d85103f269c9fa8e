#include "spec/writer.h"

#include <cstdio>

namespace tokend::spec {

std::string toml_quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (byte < 0x20 || byte == 0x7f) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04X", static_cast<unsigned>(byte));
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

namespace {

std::string comment_line(std::string_view text) {
  std::string out;
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    out += (byte < 0x20 || byte == 0x7f) ? '?' : c;
  }
  return out;
}

}  // namespace

std::string write_specs(const std::vector<WrittenSpec>& specs) {
  std::string out;
  bool first = true;
  for (const WrittenSpec& spec : specs) {
    if (!first) out += "\n";
    first = false;
    for (const std::string& comment : spec.comments) out += "# " + comment_line(comment) + "\n";
    const TokenAttrs& a = spec.attrs;
    out += "[api_token." + spec.key + "]\n";
    out += "name = " + toml_quote(a.name) + "\n";
    if (!a.description.empty()) out += "description = " + toml_quote(a.description) + "\n";
    out += "type = " + toml_quote(to_string(a.type)) + "\n";
    out += "role = " + toml_quote(a.role) + "\n";
    out += "roles = [\n";
    for (const Role& role : normalize_roles(a.roles)) {
      out += "  { role = " + toml_quote(role.role) + ", entity_id = " + toml_quote(role.entity_id) +
             ", entity_type = " + toml_quote(to_string(role.entity_type));
      if (!role.deployment_id.empty()) out += ", deployment_id = " + toml_quote(role.deployment_id);
      out += " },\n";
    }
    out += "]\n";
    if (a.expiry_period_in_days)
      out += "expiry_period_in_days = " + std::to_string(*a.expiry_period_in_days) + "\n";
    if (a.kind != TokenKind::Standard) out += "kind = " + toml_quote(to_string(a.kind)) + "\n";
  }
  return out;
}

std::string derive_key(std::string_view text, std::set<std::string>& taken) {
  std::string key;
  bool gap = false;
  for (char c : text) {
    char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if ((lower >= 'a' && lower <= 'z') || (lower >= '0' && lower <= '9')) {
      if (gap && !key.empty()) key += '_';
      gap = false;
      key += lower;
    } else {
      gap = true;
    }
  }
  if (key.empty())
    key = "token";
  else if (!(key.front() >= 'a' && key.front() <= 'z'))
    key = "token_" + key;
  std::string candidate = key;
  for (int suffix = 2; taken.count(candidate) != 0; ++suffix)
    candidate = key + "_" + std::to_string(suffix);
  taken.insert(candidate);
  return candidate;
}

}  // namespace tokend::spec
