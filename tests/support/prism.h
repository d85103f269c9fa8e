// Test support: hold HTTP traffic to the published OpenAPI contract with
// Stoplight Prism (TOKEND_PRISM_BIN) as an independent validating proxy:
// either the v1beta1 contract (TOKEND_OPENAPI_DIR/{iam,platform}.yaml, the
// default) or the v1 contract (TOKEND_OPENAPI_DIR/v1.yaml).
//
//   tokend::testing::SimProcess sim({.rate_limits = false});
//   tokend::testing::PrismHarness prism(sim.base_url());                      // v1beta1
//   tokend::testing::PrismHarness v1(sim.base_url(), {.api = PrismApi::V1});  // v1
//   // point a client at prism.base_url() (api_url); then for each answer:
//   CHECK(tokend::testing::prism_violation(response) == std::nullopt);
//   CHECK(prism.logged_violations() == "");   // also what was only logged
//
// Layout: one `prism proxy … --errors` process per API base — for v1beta1
// two (IAM and Platform), for v1 one — each given the upstream URL with that
// API's base path (Prism matches paths without the server's base path and
// appends the request path to the upstream URL), and in front of them a
// small router (Poco HTTPServer) that sends /iam/v1beta1/… to the IAM proxy,
// /platform/v1beta1/… to the Platform proxy, or /v1/… to the v1 proxy, with
// the prefix stripped, so a client that builds {api_url}/iam/v1beta1/… or
// {api_url}/v1/… itself goes through validation unchanged. Paths of the
// other version are the router's 404.
//
// Ports: Prism accepts `-p 0`, binds a free port and prints it in its
// readiness line ("Prism is listening on http://127.0.0.1:PORT"), which the
// harness waits for (bounded) and parses; the router binds port 0 itself. No
// port is chosen in advance, so there is no race.
//
// When the upstream closes a connection without an answer (a dropped
// response), Prism answers 500 with a "FetchError" problem; the router turns
// that back into a closed connection, so fault tests behave the same through
// the harness.
//
// The environment variables TOKEND_PRISM_BIN and TOKEND_OPENAPI_DIR, when
// set, override the compiled-in paths (e.g. in a worktree without tools/).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "support/http.h"

namespace tokend::testing {

// Which contract the harness holds traffic to.
enum class PrismApi { V1Beta1, V1 };

struct PrismOptions {
  PrismApi api = PrismApi::V1Beta1;
  std::chrono::milliseconds start_timeout{90000};  // for every proxy to be ready
};

class PrismHarness {
 public:
  // `upstream_base_url`: the simulator's base URL (http only), e.g.
  // "http://127.0.0.1:PORT". Throws std::runtime_error (with Prism's output)
  // when Prism is missing or a proxy is not ready in time.
  explicit PrismHarness(const std::string& upstream_base_url, PrismOptions options = {});
  ~PrismHarness();  // stops the router and both proxies
  PrismHarness(const PrismHarness&) = delete;
  PrismHarness& operator=(const PrismHarness&) = delete;

  // The router: use it as api_url.
  const std::string& base_url() const;
  PrismApi api() const;
  // The proxies themselves (paths without the API base path); "" for the
  // proxies of the other version.
  const std::string& iam_proxy_url() const;
  const std::string& platform_proxy_url() const;
  const std::string& v1_proxy_url() const;
  // Everything the proxies printed so far (stdout and stderr).
  std::string log() const;
  // The violation lines Prism logged for everything sent before this call
  // ("" when none): lines naming a Violation, a [VALIDATOR] finding or an
  // error answer (✖). Prism logs asynchronously, so this first sends each
  // proxy a sentinel request that Prism itself refuses (it never reaches the
  // upstream) and waits, bounded, until every one shows up; sentinel lines
  // are left out. Throws std::runtime_error when they do not appear within
  // 15 s.
  std::string logged_violations();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// What Prism found wrong with the exchange that produced `response`, as one
// line: its own error answers (application/problem+json with a stoplight.io
// "type": 422 for a request that breaks the contract, 500 for a response
// that does, 401 for a missing security header, 404/405 for a route the
// contract lacks, 500 "FetchError" for an unreachable upstream) and the
// warnings it attaches in the `sl-violations` header (e.g. a status code the
// operation does not declare). nullopt when the exchange honoured the
// contract. A response with status 0 (no answer) is not a violation.
std::optional<std::string> prism_violation(const HttpResponse& response);

}  // namespace tokend::testing
