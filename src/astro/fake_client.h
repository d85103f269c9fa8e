// FakeClient: an in-memory Client for unit tests of the plan and apply
// engines. No network, no sleeps.
//
// It holds one organization's tokens, workspaces and deployments and answers
// like the API does:
// - ids are 25 lowercase alphanumerics starting with 'c', issued in sequence
//   (c000000000000000000000001, …), so tests are deterministic;
// - create and rotate return a fresh, unique token value ("fake-token-value-N");
//   list, get and update never carry a value; rotate keeps the id, issues a new
//   value and starts a new expiry window at the clock's now;
// - create checks the body like the contract (name 1..256, description <= 500,
//   expiry 1..3650, role set, entityId for WORKSPACE and DEPLOYMENT naming a
//   known workspace or deployment) and answers Invalid otherwise; update and
//   roles check the same limits (roles: at least one, entities known);
// - an unknown token id is NotFound (so is a second delete);
// - the lookups with an empty id list return nothing and are not calls.
// The organization starts with the workspace clx42sxw501gl01o0gjenthnh and the
// deployment clyn6kxud003x01mtxmccegnh (the simulator's defaults); add more
// with add_workspace()/add_deployment().
//
// Scripted failures: script_failure(op, {kind, count, takes_effect}) makes the
// next `count` calls of `op` fail with `kind`. With `takes_effect` the
// operation is applied first and the error returned afterwards — an
// ambiguous outcome that did happen (use kind Ambiguous for that). Scripts for
// one operation are consumed in the order they were added.
//
// Listings: hide_from_listing() leaves a token out of list_tokens (get_token
// still finds it) and set_listing_problem() makes listings inconsistent, as
// an API whose pages shift under a listing would.
//
// Every call is counted per Operation, failed or not (calls()).
// Thread-safe: all methods may be called concurrently. Time comes from the
// Clock given to the constructor (it must outlive the FakeClient and must not
// be changed while another thread calls the FakeClient), or the system clock.
#pragma once

#include <array>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "astro/client.h"
#include "util/clock.h"

namespace tokend::astro {

struct ScriptedFailure {
  ErrorKind kind = ErrorKind::Unavailable;
  int count = 1;              // consecutive calls that fail
  bool takes_effect = false;  // apply the operation, then return the error
  std::string message = "scripted failure";
  int http_status = 0;
  // With takes_effect, a create that lands late: the token appears only when
  // this many further calls (of any operation) have started, and is visible
  // to the last of them. 0: at once.
  int lands_after_calls = 0;
};

class FakeClient final : public Client {
 public:
  static constexpr const char* kDefaultOrganization = "clx42kkcm01fo01o06agtmshg";
  static constexpr const char* kDefaultWorkspace = "clx42sxw501gl01o0gjenthnh";
  static constexpr const char* kDefaultDeployment = "clyn6kxud003x01mtxmccegnh";

  explicit FakeClient(std::string organization_id = kDefaultOrganization,
                      const Clock* clock = nullptr);

  // --- Client ---------------------------------------------------------------
  Result<TokenListing> list_tokens() override;
  Result<ApiToken> get_token(const std::string& token_id) override;
  Result<ApiToken> create_token(const CreateTokenRequest& request) override;
  Result<ApiToken> update_token(const std::string& token_id,
                                const UpdateTokenRequest& request) override;
  Status update_token_roles(const std::string& token_id, const RoleSet& roles) override;
  Result<ApiToken> rotate_token(const std::string& token_id) override;
  Status delete_token(const std::string& token_id) override;
  Result<std::vector<std::string>> existing_workspaces(
      const std::vector<std::string>& ids) override;
  Result<std::vector<std::string>> existing_deployments(
      const std::vector<std::string>& ids) override;

  // --- test controls (never counted as calls) -------------------------------
  void script_failure(Operation op, ScriptedFailure failure);
  void add_workspace(const std::string& id);
  void add_deployment(const std::string& id);

  // Inserts or replaces a token as if changed outside astro-tokend (drift,
  // age). An empty id gets a fresh one; the stored copy never keeps
  // `token`. Returns the stored token.
  ApiToken put_token(ApiToken token);
  // Removes a token out of band; false when it did not exist.
  bool remove_token(const std::string& token_id);
  void hide_from_listing(const std::string& token_id, bool hidden = true);
  // "" makes listings consistent again.
  void set_listing_problem(const std::string& problem);

  std::optional<ApiToken> token(const std::string& token_id) const;
  std::vector<ApiToken> tokens() const;  // in creation order
  // The value issued by the latest create or rotate of the token ("" if none).
  SecretValue current_value(const std::string& token_id) const;

  int calls(Operation op) const;
  int total_calls() const;
  void reset_calls();

  const std::string& organization_id() const { return organization_id_; }

 private:
  static constexpr size_t kOperationCount = 9;

  // Counts the call and pops the scripted failure due for it, if any.
  std::optional<ScriptedFailure> begin_call(Operation op);
  static Error failure_error(const ScriptedFailure& failure, Operation op);

  Timestamp now() const;
  std::string next_id();
  SecretValue next_value(const std::string& token_id);
  std::vector<ApiToken>::iterator find(const std::string& token_id);
  std::optional<Error> check_role_entities(const RoleSet& roles) const;

  Result<ApiToken> create_locked(const CreateTokenRequest& request);
  Result<ApiToken> update_locked(const std::string& token_id, const UpdateTokenRequest& request);
  Status roles_locked(const std::string& token_id, const RoleSet& roles);
  Result<ApiToken> rotate_locked(const std::string& token_id);
  Status delete_locked(const std::string& token_id);

  const std::string organization_id_;
  const Clock* clock_;
  SystemClock system_clock_;

  mutable std::mutex mutex_;
  std::vector<ApiToken> tokens_;
  std::set<std::string> hidden_;  // left out of listings
  std::string listing_problem_;
  struct LateCreate {
    int64_t lands_at_call;  // total_calls_ value at which it is applied
    CreateTokenRequest request;
  };
  std::vector<LateCreate> late_creates_;
  int64_t total_calls_ = 0;
  std::map<std::string, SecretValue> values_;
  std::set<std::string> workspaces_;
  std::set<std::string> deployments_;
  std::array<std::deque<ScriptedFailure>, kOperationCount> scripts_;
  std::array<int, kOperationCount> calls_{};
  uint64_t id_counter_ = 0;
  uint64_t value_counter_ = 0;
};

}  // namespace tokend::astro
