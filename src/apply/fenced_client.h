// The fence between a writer that may have lost its lease and the API: a
// Client that asks the WriterLease before every API write (create, update,
// roles, rotate, delete) and refuses the call, sending nothing, with the
// lease's error (Conflict) once this process may no longer write. Reads pass
// straight through. Thread-safe when the inner client and the lease are.
#pragma once

#include "astro/client.h"
#include "state/store.h"

namespace tokend::apply {

class FencedClient final : public astro::Client {
 public:
  // Both must outlive this object.
  FencedClient(astro::Client& inner, state::WriterLease& lease) : inner_(inner), lease_(lease) {}

  Result<astro::TokenListing> list_tokens() override { return inner_.list_tokens(); }
  Result<astro::ApiToken> get_token(const std::string& token_id) override {
    return inner_.get_token(token_id);
  }
  Result<astro::ApiToken> create_token(const astro::CreateTokenRequest& request) override;
  Result<astro::ApiToken> update_token(const std::string& token_id,
                                       const astro::UpdateTokenRequest& request) override;
  Status update_token_roles(const std::string& token_id, const RoleSet& roles) override;
  Result<astro::ApiToken> rotate_token(const std::string& token_id) override;
  Status delete_token(const std::string& token_id) override;
  Result<std::vector<std::string>> existing_workspaces(
      const std::vector<std::string>& ids) override {
    return inner_.existing_workspaces(ids);
  }
  Result<std::vector<std::string>> existing_deployments(
      const std::vector<std::string>& ids) override {
    return inner_.existing_deployments(ids);
  }
  void close_idle_connections() override { inner_.close_idle_connections(); }

 private:
  astro::Client& inner_;
  state::WriterLease& lease_;
};

}  // namespace tokend::apply
