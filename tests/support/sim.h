// Test support: run the real astro-api-sim binary (TOKEND_SIM_BIN) and drive
// its /_sim/ controls. Used by integration tests and benchmarks.
//
//   tokend::testing::SimProcess sim;     // default seed, published rate limits
//   tokend::testing::SimOptions options;
//   options.rate_limits = false;         // --no-rate-limits
//   tokend::testing::SimProcess fast(options);
//   sim.base_url();                      // "http://127.0.0.1:PORT" → config api_url
//   sim.bearer_token();                  // what clients must send (given via env, never argv)
//   sim.control().set_faults({fail_next("GetApiToken", 503, 3)});
//   sim.control().requests().count("GetApiToken");
//
// Every wait is bounded. Failures (the simulator does not come up, a control
// answers an unexpected status) throw std::runtime_error with the details, so
// Catch2 reports them at the calling line.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "astro/client.h"
#include "sim/bodies.h"
#include "sim/controls.h"
#include "sim/v1_json.h"
#include "support/http.h"
#include "support/process.h"

namespace tokend::testing {

// The organization, workspace and deployment of the simulator's default seed.
inline constexpr const char* kSimOrgId = "clx42kkcm01fo01o06agtmshg";
inline constexpr const char* kSimWorkspaceId = "clx42sxw501gl01o0gjenthnh";
inline constexpr const char* kSimDeploymentId = "clyn6kxud003x01mtxmccegnh";

struct SimOptions {
  std::string org_id = kSimOrgId;
  std::string bearer_token;  // empty: a fresh random one
  std::string seed_file;     // --seed; empty: the default seed
  std::string data_file;     // --data; empty: nothing persists across restart()
  // true: the simulator's rate limits (`rate_limits_spec`, or the published
  // get=25,post=10,delete=5 when empty); false: --no-rate-limits.
  bool rate_limits = true;
  std::string rate_limits_spec;
  std::string tls_cert;  // with tls_key: serve HTTPS (base_url() is https://)
  std::string tls_key;
  std::string ca_file;  // CA of tls_cert, used by control() and api()
  std::vector<std::string> extra_args;
  // false (the default): --api v1, so that a request to a v1beta1 route
  // answers 404 and fails the test that sent it.
  bool serve_v1beta1 = false;
  std::chrono::milliseconds start_timeout{20000};
};

// Fault rule shorthands for SimControl::set_faults().
// Answer `status` to the next `count` requests of `operation` ("*": any).
sim::FaultRule fail_next(const std::string& operation, int status, int count,
                         int retry_after_seconds = -1);
// Answer `status` with probability `rate` (0..1).
sim::FaultRule fail_rate(const std::string& operation, int status, double rate);
// Close the connection without an answer for the next `count` requests,
// before the operation (nothing happened) or after it (the answer is lost).
sim::FaultRule drop_next(const std::string& operation, int count,
                         sim::DropWhen when = sim::DropWhen::Before);
// Delay every answer to `operation` by `latency_ms`.
sim::FaultRule add_latency(const std::string& operation, int latency_ms);

// Counts and log of API requests (GET /_sim/requests).
struct RequestStats {
  uint64_t total = 0;
  std::map<std::string, uint64_t> counts;                        // by operationId
  std::map<std::string, std::map<int, uint64_t>> status_counts;  // by operationId, status
  std::vector<sim::LoggedRequest> requests;                      // in completion order

  uint64_t count(const std::string& operation) const;
  uint64_t count(const std::string& operation, int status) const;
};

// Typed access to the /_sim/ controls of a running simulator (their token
// bodies are v1 shapes: kind, lastRotatedAt, DAG roles). Cheap to copy.
class SimControl {
 public:
  explicit SimControl(std::string base_url, HttpOptions http = {});

  bool healthy() const;
  RequestStats requests() const;
  void reset_requests() const;
  // Replaces every fault rule (PUT /_sim/faults); answers the rules as set.
  sim::FaultPlan set_faults(const sim::FaultPlan& plan) const;
  sim::FaultPlan set_faults(std::vector<sim::FaultRule> rules,
                            std::optional<uint64_t> random_seed = std::nullopt) const;
  sim::FaultPlan faults() const;  // with remaining counts
  void clear_faults() const;
  // Out-of-band change; answers the token as now held.
  astro::ApiToken patch_token(const std::string& token_id, const sim::TokenPatch& patch) const;
  sim::BulkCreated create_tokens(const sim::BulkCreate& request) const;
  // `count` copies of `templ`, named "<name>-1" … "<name>-<count>".
  sim::BulkCreated create_tokens(const sim::NewToken& templ, int count,
                                 bool include_values = false) const;
  // False when there was no such token.
  bool delete_token(const std::string& token_id) const;
  std::vector<astro::ApiToken> tokens() const;
  std::optional<astro::ApiToken> token(const std::string& token_id) const;
  std::vector<std::string> issued_values() const;

 private:
  HttpResponse call(const std::string& method, const std::string& path,
                    const std::string& body = "") const;

  std::string base_url_;
  HttpOptions http_;
};

// The astro-api-sim binary under test, on 127.0.0.1 port 0. The constructor
// returns once the simulator wrote its port file (or throws, with its stderr).
// The destructor stops it (SIGTERM, then SIGKILL after 10 s).
class SimProcess {
 public:
  explicit SimProcess(SimOptions options = {});
  ~SimProcess();
  SimProcess(const SimProcess&) = delete;
  SimProcess& operator=(const SimProcess&) = delete;

  const std::string& base_url() const { return base_url_; }  // changes on restart()
  int port() const { return port_; }
  const std::string& bearer_token() const { return options_.bearer_token; }
  const std::string& org_id() const { return options_.org_id; }
  const SimOptions& options() const { return options_; }
  // {base_url}/v1/organizations/{org}: tokens, workspaces and deployments.
  std::string v1_url() const;
  // {base_url}/iam/v1beta1/organizations/{org} and the Platform equivalent.
  std::string iam_url() const;
  std::string platform_url() const;
  // Everything the simulator wrote to stderr, across restarts.
  std::string stderr_text() const;

  // SIGTERM, then wait up to `timeout` (SIGKILL after it). Returns the exit
  // code, or -1 when it was killed or had already stopped.
  int stop(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // stop(), then start again with the same options (same --data file). The
  // port, and so base_url(), are new.
  void restart();
  bool running();

  SimControl control() const;
  // One API request with the bearer token; `path` is relative to base_url().
  HttpResponse api(const std::string& method, const std::string& path,
                   const std::string& body = "") const;

 private:
  void start();

  SimOptions options_;
  TempDir dir_;
  std::unique_ptr<BackgroundProcess> process_;
  int port_ = 0;
  std::string base_url_;
};

// A throwaway CA and a server certificate for "localhost" and 127.0.0.1,
// valid for two days, made with the openssl CLI in `dir`.
struct TestTls {
  std::string ca_file;    // PEM certificate of the CA
  std::string cert_file;  // PEM server certificate signed by the CA
  std::string key_file;   // PEM private key of cert_file
};
TestTls make_test_tls(const std::string& dir);

}  // namespace tokend::testing
