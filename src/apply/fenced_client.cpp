#include "apply/fenced_client.h"

namespace tokend::apply {

Result<astro::ApiToken> FencedClient::create_token(const astro::CreateTokenRequest& request) {
  if (Status held = lease_.check(); !held.ok()) return held.error();
  return inner_.create_token(request);
}

Result<astro::ApiToken> FencedClient::update_token(const std::string& token_id,
                                                   const astro::UpdateTokenRequest& request) {
  if (Status held = lease_.check(); !held.ok()) return held.error();
  return inner_.update_token(token_id, request);
}

Status FencedClient::update_token_roles(const std::string& token_id, const RoleSet& roles) {
  if (Status held = lease_.check(); !held.ok()) return held;
  return inner_.update_token_roles(token_id, roles);
}

Result<astro::ApiToken> FencedClient::rotate_token(const std::string& token_id) {
  if (Status held = lease_.check(); !held.ok()) return held.error();
  return inner_.rotate_token(token_id);
}

Status FencedClient::delete_token(const std::string& token_id) {
  if (Status held = lease_.check(); !held.ok()) return held;
  return inner_.delete_token(token_id);
}

}  // namespace tokend::apply
