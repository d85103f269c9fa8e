// astro-api-sim: a local, stateful implementation of the Astro API
// operations astro-tokend uses (product.md §8). Wiring only: parse flags,
// build the organization, serve until SIGTERM or SIGINT.
#include <signal.h>

#include <CLI/CLI.hpp>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "sim/api.h"
#include "sim/bodies.h"
#include "sim/controls.h"
#include "sim/data_file.h"
#include "sim/org.h"
#include "sim/server.h"
#include "util/clock.h"
#include "util/files.h"
#include "util/log.h"

namespace {

constexpr const char* kControlsHelp = R"(
API routes (need "Authorization: Bearer <token>"), v1 (the current API):
  /v1/organizations/{org}/tokens                GET ListApiTokens (offset, limit, workspaceId,
                                                deploymentId, dagId, dagTags, kind,
                                                includeOnlyOrganizationTokens, sorts),
                                                POST CreateApiToken
  /v1/organizations/{org}/tokens/{id}           GET GetApiToken, POST UpdateApiToken,
                                                DELETE DeleteApiToken
  /v1/organizations/{org}/tokens/{id}/roles     POST UpdateApiTokenRoles (DAG and DAG_TAG roles
                                                need deploymentId: an existing deployment)
  /v1/organizations/{org}/tokens/{id}/rotate    POST RotateApiToken (sets lastRotatedAt)
  /v1/organizations/{org}/workspaces            GET ListWorkspaces (workspaceIds, names, …)
  /v1/organizations/{org}/deployments           GET ListDeployments (deploymentIds,
                                                workspaceIds, names, …; apiUrl, uiUrl)
  v1 bodies: scope (not type), kind STANDARD|DIRECT_ACCESS, lastRotatedAt, roles with
  deploymentId; a 400 caused by one field carries fieldErrors. List parameters repeat
  their key (sorts=a&sorts=b). Any DAG id or tag value on an existing deployment is taken.
and v1beta1 (deprecated), over the same tokens:
  /iam/v1beta1/organizations/{org}/tokens[/{id}[/roles|/rotate]]   the same token operations
  /platform/v1beta1/organizations/{org}/workspaces|deployments      the same lookups
  v1beta1 bodies say type, and show no kind, no lastRotatedAt and no DAG or DAG_TAG
  roles; those roles are not matched by list filters and are kept by a v1beta1
  UpdateApiTokenRoles, which replaces only the other roles. List parameters may also
  be comma-separated (ids=a,b).
  Both versions: sorts=createdAt:asc|desc (also name, description, updatedAt,
  tokenStartAt); ties and unsorted lists keep the creation order.
  An API request passes: fault rules, rate limits (429 + Retry-After), bearer
  token (401), organization (403), the operation, injected latency, drop-after.
  Fault rules name operationIds and apply to both versions.

Test controls under /_sim/ (JSON in and out, no bearer token, no rate limits,
no faults, not logged in /_sim/requests):
  GET    /_sim/health          {"status":"ok","organizationId":…,"tokens":N}
  GET    /_sim/requests        API requests since the last reset:
                               {"total":N,"counts":{"CreateApiToken":2,…},
                                "statusCounts":{"CreateApiToken":{"200":1,"503":1}},
                                "requests":[{"seq":1,"method":"POST","path":…,"query":…,
                                             "operation":"CreateApiToken","status":200},…]}
                               (status 0 = connection closed without an answer;
                                ?log=false omits "requests")
  DELETE /_sim/requests        reset the log and the counts
  PUT    /_sim/faults          replace the fault rules:
                               {"randomSeed":7,"rules":[{"operation":"GetApiToken",
                                 "status":503,"count":3,"retryAfter":1}, …]}
                               a rule matches "operation" (an operationId, default "*") and:
                                 "status": 400..599 answered instead of the operation, for the
                                   next "count" matching requests or with probability "rate"
                                   (neither: every request); "retryAfter": seconds for Retry-After
                                 "latencyMs": delay before the answer (after the operation)
                                 "dropCount" / "dropRate": close the connection without an answer,
                                   "dropWhen": "before" (default; nothing happens) or "after"
                                   (the operation took effect, the answer is lost)
                               spent count rules disappear; "randomSeed" makes rates reproducible
  GET    /_sim/faults          the rules with their remaining counts
  DELETE /_sim/faults          remove every rule
  GET    /_sim/tokens          every token (v1 ApiTokensPaginated, no values, creation order)
  POST   /_sim/tokens          bulk create: {"tokens":[{name,description,scope (or type),kind,
                                 role,entityId,tokenExpiryPeriodInDays, optional id,
                                 optional roles:[{role,entityType,entityId,deploymentId}…]}…]}
                               or {"template":{…},"count":N} (names get -1…-N);
                               "includeValues":true adds the secret values;
                               answers {"ids":[…]} (+ "values":[…]); all or nothing
  GET    /_sim/tokens/{id}     one token (v1 ApiToken, no value)
  PATCH  /_sim/tokens/{id}     out-of-band change (drift, ageing), no API validation:
                               any of name, description, roles (v1, DAG roles included), kind,
                               startAt, createdAt, updatedAt, endAt (null clears; may be in the
                               past), lastUsedAt (null clears), lastRotatedAt (null clears),
                               expiryPeriodInDays (null clears); updatedAt defaults to now
  DELETE /_sim/tokens/{id}     delete out of band (204, or 404)
  GET    /_sim/issued-values   {"values":[…]} every token value issued since start

Seed file (--seed): {"workspaces":[{"id","name","description"}],
  "deployments":[{"id","name","workspaceId","description"}], "tokens":[as POST /_sim/tokens]}
  Default: workspace clx42sxw501gl01o0gjenthnh, deployment clyn6kxud003x01mtxmccegnh.
  DAGs are not seeded: any DAG id or tag value on a seeded deployment is taken.
  With --data, seed tokens are created only when the data file does not exist yet.
Data file (--data): the tokens (never their values) in v1 shapes, written atomically a
  moment after changes and on shutdown; loaded at start when it exists (files written
  before v1, with type and no kind, still load).
The port is written to --port-file ("PORT\n", atomically) once connections are accepted.
SIGTERM or SIGINT stop the server cleanly (exit 0).
)";

std::optional<std::string> read_bearer_token(const std::string& file, const std::string& env,
                                             std::string& problem) {
  std::string token;
  if (!file.empty()) {
    auto content = tokend::read_file_if_exists(file);
    if (!content.ok() || !*content) {
      problem = "cannot read the bearer token file " + file;
      return std::nullopt;
    }
    token = **content;
  } else {
    const char* value = std::getenv(env.c_str());
    if (value == nullptr) {
      problem = "environment variable " + env + " (the bearer token) is not set";
      return std::nullopt;
    }
    token = value;
  }
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.front())))
    token.erase(0, 1);
  if (token.empty()) {
    problem = "the bearer token is empty";
    return std::nullopt;
  }
  return token;
}

int fail(const std::string& message) {
  std::cerr << "astro-api-sim: " << message << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "astro-api-sim: a local, stateful Astro API (v1 and v1beta1: tokens, workspace and "
      "deployment lookups) for tests, benchmarks and demos."};
  std::string listen = "127.0.0.1:0";
  std::string port_file, org_id, token_file, token_env, seed_file, data_file, tls_cert, tls_key;
  std::string rate_limits_text;
  bool no_rate_limits = false;
  std::string api_versions = "both";
  app.add_option("--listen", listen, "HOST:PORT to listen on; port 0 picks a free port")
      ->capture_default_str();
  app.add_option("--port-file", port_file, "write the chosen port here once serving");
  app.add_option("--org", org_id, "the organization id served")->required();
  auto* file_opt = app.add_option("--bearer-token-file", token_file,
                                  "file holding the bearer token clients must present");
  auto* env_opt = app.add_option("--bearer-token-env", token_env,
                                 "environment variable holding the bearer token");
  file_opt->excludes(env_opt);
  app.add_option("--seed", seed_file, "JSON seed: workspaces, deployments, tokens (see below)");
  app.add_option("--data", data_file, "keep tokens in this JSON file across restarts");
  auto* cert_opt = app.add_option("--tls-cert", tls_cert, "PEM certificate: serve HTTPS");
  auto* key_opt = app.add_option("--tls-key", tls_key, "PEM private key of --tls-cert");
  cert_opt->needs(key_opt);
  key_opt->needs(cert_opt);
  auto* limits_opt = app.add_option("--rate-limits", rate_limits_text,
                                    "requests per second per method, e.g. get=25,post=10,delete=5 "
                                    "(the default); burst = one second's worth");
  auto* no_limits_opt = app.add_flag("--no-rate-limits", no_rate_limits, "disable rate limits");
  limits_opt->excludes(no_limits_opt);
  app.add_option("--api", api_versions,
                 "API versions served: both, or v1 (the v1beta1 routes then answer 404)")
      ->check(CLI::IsMember({"both", "v1"}))
      ->capture_default_str();
  app.footer(kControlsHelp);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 1;
  }
  if (token_file.empty() && token_env.empty())
    return fail("one of --bearer-token-file or --bearer-token-env is required");

  // Signals are taken synchronously by the main thread; block them before
  // any thread starts so that every thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  tokend::Logger log(std::cerr, tokend::LogLevel::Info, tokend::LogFormat::Text);
  std::string problem;
  auto bearer = read_bearer_token(token_file, token_env, problem);
  if (!bearer) return fail(problem);

  std::optional<tokend::sim::RateLimits> limits = tokend::sim::RateLimits{};
  if (no_rate_limits) limits.reset();
  if (!rate_limits_text.empty()) {
    auto parsed = tokend::sim::parse_rate_limits(rate_limits_text);
    if (!parsed.ok()) return fail("--rate-limits: " + parsed.error().message);
    limits = *parsed;
  }

  tokend::SystemClock clock;
  tokend::sim::Seed seed = tokend::sim::default_seed(clock.now());
  if (!seed_file.empty()) {
    auto content = tokend::read_file_if_exists(seed_file);
    if (!content.ok()) return fail("--seed: " + content.error().message);
    if (!*content) return fail("--seed: " + seed_file + " does not exist");
    auto decoded = tokend::sim::decode_seed(**content, clock.now());
    if (!decoded.ok()) return fail("--seed " + seed_file + ": " + decoded.error().message);
    seed = std::move(*decoded);
  }
  tokend::sim::Organization org(org_id, seed.workspaces, seed.deployments, clock);

  bool create_seed_tokens = true;
  if (!data_file.empty()) {
    auto content = tokend::read_file_if_exists(data_file);
    if (!content.ok()) return fail("--data: " + content.error().message);
    if (*content) {
      tokend::Status loaded = org.load_data(**content);
      if (!loaded.ok()) return fail("--data " + data_file + ": " + loaded.error().message);
      create_seed_tokens = false;
    }
  }
  if (create_seed_tokens && !seed.tokens.empty()) {
    auto created = org.create_tokens(seed.tokens);
    if (!created.ok()) return fail("--seed " + seed_file + ": " + created.error().message);
  }

  std::unique_ptr<tokend::sim::DataFileWriter> writer;
  if (!data_file.empty()) {
    writer = std::make_unique<tokend::sim::DataFileWriter>(data_file, org, log);
    tokend::Status saved = writer->flush();
    if (!saved.ok()) return fail("--data: " + saved.error().message);
    org.set_change_listener([w = writer.get()] { w->schedule(); });
  }

  tokend::sim::Simulator simulator(org, {*bearer, limits, api_versions == "both"});
  tokend::sim::ServerOptions server_options{listen, tls_cert, tls_key, 64};
  auto server = tokend::sim::SimServer::start(server_options, simulator, log);
  if (!server.ok()) return fail(server.error().message);
  int port = (*server)->port();
  if (!port_file.empty()) {
    tokend::Status written = tokend::write_file_atomically(port_file, std::to_string(port) + "\n");
    if (!written.ok()) return fail("--port-file: " + written.error().message);
  }
  std::string scheme = (*server)->tls() ? "https" : "http";
  log.info("listening", {{"url", scheme + "://" + listen.substr(0, listen.rfind(':')) + ":" +
                                     std::to_string(port)},
                         {"organization", org_id},
                         {"rate_limits", limits ? "on" : "off"},
                         {"tokens", org.token_count()}});

  int received = 0;
  sigwait(&stop_signals, &received);
  log.info("stopping", {{"signal", received == SIGTERM ? "SIGTERM" : "SIGINT"}});
  simulator.shutdown();
  (*server)->stop();
  if (writer) {
    tokend::Status saved = writer->flush();
    if (!saved.ok()) return fail("--data: " + saved.error().message);
  }
  log.info("stopped");
  return 0;
}
