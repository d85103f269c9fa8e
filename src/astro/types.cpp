#include "astro/types.h"

namespace tokend::astro {

TokenAttrs ApiToken::attrs() const {
  TokenAttrs a;
  a.name = name;
  a.description = description;
  a.type = type;
  a.roles = roles;
  if (auto primary = primary_role(roles, type)) a.role = primary->role;
  a.expiry_period_in_days = expiry_period_in_days;
  a.kind = kind;
  return a;
}

std::string_view to_string(ApiVersion version) {
  return version == ApiVersion::V1 ? "v1" : "v1beta1";
}

std::optional<ApiVersion> parse_api_version(std::string_view text) {
  if (text == "v1") return ApiVersion::V1;
  if (text == "v1beta1") return ApiVersion::V1Beta1;
  return std::nullopt;
}

std::string_view to_string(Operation op) {
  switch (op) {
    case Operation::ListApiTokens:
      return "ListApiTokens";
    case Operation::GetApiToken:
      return "GetApiToken";
    case Operation::CreateApiToken:
      return "CreateApiToken";
    case Operation::UpdateApiToken:
      return "UpdateApiToken";
    case Operation::UpdateApiTokenRoles:
      return "UpdateApiTokenRoles";
    case Operation::RotateApiToken:
      return "RotateApiToken";
    case Operation::DeleteApiToken:
      return "DeleteApiToken";
    case Operation::ListWorkspaces:
      return "ListWorkspaces";
    case Operation::ListDeployments:
      return "ListDeployments";
  }
  return "Unknown";
}

}  // namespace tokend::astro
