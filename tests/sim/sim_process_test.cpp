// astro-api-sim as a process: flags, port file, signals, seed and data
// files, TLS, and the out-of-band controls.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <thread>

#include "astro/json.h"
#include "sim/bodies.h"
#include "support/http.h"
#include "support/process.h"
#include "support/sim.h"

using namespace tokend;
using namespace tokend::testing;

namespace {

SimOptions no_limits() {
  SimOptions options;
  options.rate_limits = false;
  options.serve_v1beta1 = true;
  return options;
}

std::string tokens_path(const SimProcess& sim) {
  return "/iam/v1beta1/organizations/" + sim.org_id() + "/tokens";
}

std::string org_token_body(const std::string& name) {
  return astro::json::encode_create_request(
      {name, "", EntityType::Organization, "ORGANIZATION_MEMBER", "", std::nullopt});
}

ProcessResult run_sim(const std::vector<std::string>& args, const RunOptions& options = {}) {
  std::vector<std::string> argv{TOKEND_SIM_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, options);
}

}  // namespace

TEST_CASE("sim --help documents every flag - both API versions and every /_sim/ control", "[sim]") {
  ProcessResult help = run_sim({"--help"});
  CHECK(help.exit_code == 0);
  for (const char* text : {"--listen",
                           "--port-file",
                           "--org",
                           "--bearer-token-file",
                           "--bearer-token-env",
                           "--seed",
                           "--data",
                           "--tls-cert",
                           "--tls-key",
                           "--rate-limits",
                           "--no-rate-limits",
                           "/v1/organizations/{org}/tokens ",
                           "/v1/organizations/{org}/tokens/{id} ",
                           "/v1/organizations/{org}/tokens/{id}/roles",
                           "/v1/organizations/{org}/tokens/{id}/rotate",
                           "/v1/organizations/{org}/workspaces",
                           "/v1/organizations/{org}/deployments",
                           "/iam/v1beta1/organizations/{org}/tokens",
                           "/platform/v1beta1/organizations/{org}/workspaces|deployments",
                           "deploymentId",
                           "lastRotatedAt",
                           "DIRECT_ACCESS",
                           "fieldErrors",
                           "sorts=createdAt:asc|desc",
                           "GET    /_sim/health",
                           "GET    /_sim/requests",
                           "DELETE /_sim/requests",
                           "PUT    /_sim/faults",
                           "GET    /_sim/faults",
                           "DELETE /_sim/faults",
                           "GET    /_sim/tokens",
                           "POST   /_sim/tokens",
                           "GET    /_sim/tokens/{id}",
                           "PATCH  /_sim/tokens/{id}",
                           "DELETE /_sim/tokens/{id}",
                           "GET    /_sim/issued-values",
                           "dropWhen",
                           "retryAfter",
                           "latencyMs",
                           "randomSeed"}) {
    INFO(text);
    CHECK(help.out.find(text) != std::string::npos);
  }
}

TEST_CASE("bad flags exit 1 with a clear message and serve nothing", "[sim]") {
  TempDir dir;
  std::string port_file = dir.file("port");
  write_file(dir.file("empty-token"), "\n");
  write_file(dir.file("bad-seed.json"), R"({"workspaces":[{"name":"no id"}]})");
  write_file(dir.file("bad-data.json"), "{\"format\":\"something else\"}");
  RunOptions with_env;
  with_env.env["SIM_TOKEN"] = "token";
  with_env.unset_env = {"SIM_UNSET_TOKEN"};
  const std::vector<std::string> base = {"--port-file", port_file, "--org", kSimOrgId};
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--port-file", port_file, "--bearer-token-env", "SIM_TOKEN"}, "--org is required"},
      {{"--port-file", port_file, "--org", kSimOrgId},
       "one of --bearer-token-file or --bearer-token-env"},
      {{"--bearer-token-env", "SIM_UNSET_TOKEN"}, "SIM_UNSET_TOKEN (the bearer token) is not set"},
      {{"--bearer-token-file", dir.file("empty-token")}, "the bearer token is empty"},
      {{"--bearer-token-file", dir.file("missing")}, "cannot read the bearer token file"},
      {{"--bearer-token-env", "SIM_TOKEN", "--bearer-token-file", dir.file("empty-token")},
       "excludes"},
      {{"--bearer-token-env", "SIM_TOKEN", "--rate-limits", "get=0"},
       "--rate-limits: rate limit 'get=0'"},
      {{"--bearer-token-env", "SIM_TOKEN", "--rate-limits", "put=3"},
       "method must be get, post or delete"},
      {{"--bearer-token-env", "SIM_TOKEN", "--rate-limits", "get=3", "--no-rate-limits"},
       "excludes"},
      {{"--bearer-token-env", "SIM_TOKEN", "--tls-cert", dir.file("cert.pem")},
       "requires --tls-key"},
      {{"--bearer-token-env", "SIM_TOKEN", "--seed", dir.file("bad-seed.json")},
       "bad-seed.json: workspaces[0].id is required"},
      {{"--bearer-token-env", "SIM_TOKEN", "--data", dir.file("bad-data.json")},
       "bad-data.json: not an astro-api-sim data file"},
      {{"--bearer-token-env", "SIM_TOKEN", "--listen", "nonsense"},
       "--listen nonsense is not HOST:PORT"},
      {{"--bearer-token-env", "SIM_TOKEN", "--tls-cert", dir.file("none.pem"), "--tls-key",
        dir.file("none.key")},
       "TLS"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = c.args;
    if (c.args.front() != "--port-file") args.insert(args.begin(), base.begin(), base.end());
    INFO(args[args.size() - 1]);
    ProcessResult r = run_sim(args, with_env);
    CHECK(r.exit_code == 1);
    CHECK(r.err.find(c.message) != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(port_file));
  }
}

TEST_CASE("the port file is written atomically once the port accepts connections", "[sim]") {
  TempDir dir;
  std::string port_file = dir.file("port");
  RunOptions env;
  env.env["SIM_TOKEN"] = "the-token";
  BackgroundProcess process({TOKEND_SIM_BIN, "--listen", "127.0.0.1:0", "--port-file", port_file,
                             "--org", kSimOrgId, "--bearer-token-env", "SIM_TOKEN"},
                            env, "", dir.file("stderr"));
  auto port = wait_for_file(port_file, std::chrono::seconds(20));
  REQUIRE(port);
  std::string content = read_file(port_file);
  CHECK(content == *port + "\n");
  CHECK(std::stoi(*port) > 0);
  // No temporary file left beside it.
  CHECK(std::distance(std::filesystem::directory_iterator(dir.path()), {}) == 2);
  SimControl control("http://127.0.0.1:" + *port);
  CHECK(control.healthy());
  HttpResponse api = http_request(
      {"GET", "http://127.0.0.1:" + *port + "/iam/v1beta1/organizations/" + kSimOrgId + "/tokens",
       bearer_header("the-token"), ""});
  CHECK(api.status == 200);

  SECTION("SIGTERM stops it with exit code 0") { process.signal(SIGTERM); }
  SECTION("SIGINT stops it with exit code 0") { process.signal(SIGINT); }
  auto exit = process.wait_for_exit(std::chrono::seconds(10));
  REQUIRE(exit);
  CHECK(exit->exit_code == 0);
  CHECK(read_file(dir.file("stderr")).find("msg=stopped") != std::string::npos);
}

TEST_CASE("sim --bearer-token-file is read and trimmed", "[sim]") {
  TempDir dir;
  write_file(dir.file("token"), "file-token\n");
  // SimProcess passes the token through the environment; this run uses the file.
  RunOptions env;
  BackgroundProcess process({TOKEND_SIM_BIN, "--port-file", dir.file("port"), "--org", kSimOrgId,
                             "--bearer-token-file", dir.file("token")},
                            env, "", "");
  auto port = wait_for_file(dir.file("port"), std::chrono::seconds(20));
  REQUIRE(port);
  std::string url =
      "http://127.0.0.1:" + *port + "/iam/v1beta1/organizations/" + kSimOrgId + "/tokens";
  CHECK(http_request({"GET", url, bearer_header("file-token"), ""}).status == 200);
  CHECK(http_request({"GET", url, bearer_header("file-token-2"), ""}).status == 401);
}

TEST_CASE("out-of-band controls: bulk create - patch - delete - issued values", "[sim]") {
  SimProcess sim(no_limits());
  SimControl control = sim.control();

  sim::BulkCreate bulk;
  bulk.include_values = true;
  bulk.tokens.push_back(
      {{"org reader", "reads", EntityType::Organization, "ORGANIZATION_MEMBER", "", 90},
       std::nullopt,
       "cfixedid00000000000000001"});
  bulk.tokens.push_back(
      {{"ws owner", "", EntityType::Workspace, "WORKSPACE_OWNER", kSimWorkspaceId, std::nullopt},
       RoleSet{{"WORKSPACE_OWNER", kSimWorkspaceId, EntityType::Workspace},
               {"DEPLOYMENT_ADMIN", kSimDeploymentId, EntityType::Deployment}},
       ""});
  sim::BulkCreated created = control.create_tokens(bulk);
  REQUIRE(created.ids.size() == 2);
  CHECK(created.ids[0] == "cfixedid00000000000000001");
  REQUIRE(created.values.size() == 2);
  CHECK(control.issued_values() == created.values);
  auto second = control.token(created.ids[1]);
  REQUIRE(second);
  CHECK(second->roles.size() == 2);
  CHECK(second->token.empty());

  // All or nothing: one bad entry creates none.
  sim::BulkCreate bad;
  bad.tokens = {
      bulk.tokens[1],
      {{"x", "", EntityType::Workspace, "WORKSPACE_OWNER", "", std::nullopt}, std::nullopt, ""}};
  HttpResponse rejected =
      http_request({"POST", sim.base_url() + "/_sim/tokens", {}, sim::encode_bulk_create(bad)});
  CHECK(rejected.status == 400);
  CHECK(astro::json::decode_error(rejected.body)->message ==
        "tokens[1]: entityId is required for a WORKSPACE token");
  HttpResponse repeated_id =
      http_request({"POST", sim.base_url() + "/_sim/tokens", {}, sim::encode_bulk_create(bulk)});
  CHECK(repeated_id.status == 400);
  CHECK(control.tokens().size() == 2);

  // Drift and ageing; endAt may be in the past.
  Timestamp past = *parse_rfc3339("2020-01-02T03:04:05Z");
  sim::TokenPatch patch;
  patch.name = "drifted";
  patch.description = "changed in the UI";
  patch.roles = RoleSet{{"ORGANIZATION_OWNER", kSimOrgId, EntityType::Organization}};
  patch.start_at = past - std::chrono::days(90);
  patch.created_at = past - std::chrono::days(90);
  patch.end_at = std::optional<Timestamp>(past);
  patch.last_used_at = std::optional<Timestamp>(past);
  astro::ApiToken patched = control.patch_token(created.ids[0], patch);
  CHECK(patched.name == "drifted");
  CHECK(patched.end_at == past);
  auto fetched =
      astro::json::decode_token(sim.api("GET", tokens_path(sim) + "/" + created.ids[0]).body);
  REQUIRE(fetched.ok());
  CHECK(fetched->name == "drifted");
  CHECK(fetched->description == "changed in the UI");
  CHECK(fetched->roles == *patch.roles);
  CHECK(fetched->start_at == *patch.start_at);
  CHECK(fetched->created_at == *patch.created_at);
  CHECK(fetched->end_at == past);
  CHECK(fetched->last_used_at == past);
  CHECK(fetched->updated_at > past);
  sim::TokenPatch clear;
  clear.end_at = std::optional<Timestamp>();
  clear.expiry_period_in_days = std::optional<int>();
  astro::ApiToken cleared = control.patch_token(created.ids[0], clear);
  CHECK_FALSE(cleared.end_at);
  CHECK_FALSE(cleared.expiry_period_in_days);
  HttpResponse unknown_field = http_request(
      {"PATCH", sim.base_url() + "/_sim/tokens/" + created.ids[0], {}, R"({"colour":"red"})"});
  CHECK(unknown_field.status == 400);
  CHECK(http_request({"PATCH", sim.base_url() + "/_sim/tokens/cmissing", {}, R"({"name":"x"})"})
            .status == 404);

  CHECK(control.delete_token(created.ids[1]));
  CHECK_FALSE(control.delete_token(created.ids[1]));
  CHECK(sim.api("GET", tokens_path(sim) + "/" + created.ids[1]).status == 404);
  // Out-of-band calls are not API requests: only the two GETs above count.
  CHECK(control.requests().total == 2);

  sim::NewToken templ{{"many", "", EntityType::Deployment, "DEPLOYMENT_ADMIN", kSimDeploymentId, 7},
                      std::nullopt,
                      ""};
  sim::BulkCreated many = control.create_tokens(templ, 3, true);
  CHECK(many.ids.size() == 3);
  CHECK(many.values.size() == 3);
  auto third = control.token(many.ids[2]);
  REQUIRE(third);
  CHECK(third->name == "many-3");
  CHECK(control.issued_values().size() == 5);
}

TEST_CASE("sim --seed defines workspaces - deployments and tokens", "[sim]") {
  SimOptions options = no_limits();
  options.seed_file = std::string(TOKEND_SOURCE_DIR) + "/tests/data/sim/seed.json";
  SimProcess sim(options);

  auto workspaces = [&](const std::string& query) {
    HttpResponse r =
        sim.api("GET", "/platform/v1beta1/organizations/" + sim.org_id() + "/workspaces" + query);
    REQUIRE(r.status == 200);
    auto page = astro::json::decode_id_page(r.body, "workspaces");
    REQUIRE(page.ok());
    return *page;
  };
  CHECK(workspaces("").total_count == 3);
  CHECK(workspaces("?workspaceIds=cwsa00000000000000000000a&workspaceIds=cwsc00000000000000000000c")
            .ids ==
        std::vector<std::string>{"cwsa00000000000000000000a", "cwsc00000000000000000000c"});
  CHECK(workspaces("?workspaceIds=cwsb00000000000000000000b,cnotthere").ids ==
        std::vector<std::string>{"cwsb00000000000000000000b"});
  auto page = workspaces("?limit=1&offset=1&sorts=name:desc");
  CHECK(page.ids == std::vector<std::string>{"cwsb00000000000000000000b"});
  CHECK(page.total_count == 3);
  CHECK(workspaces("?workspaceIds=" + std::string(kSimWorkspaceId)).ids.empty());

  HttpResponse deployments =
      sim.api("GET", "/platform/v1beta1/organizations/" + sim.org_id() +
                         "/deployments?workspaceIds=cwsb00000000000000000000b");
  REQUIRE(deployments.status == 200);
  CHECK(astro::json::decode_id_page(deployments.body, "deployments")->ids ==
        std::vector<std::string>{"cdpb00000000000000000000b"});
  HttpResponse too_many =
      sim.api("GET", "/platform/v1beta1/organizations/" + sim.org_id() + "/workspaces?limit=1001");
  CHECK(too_many.status == 400);

  auto seeded = sim.control().tokens();
  REQUIRE(seeded.size() == 1);
  CHECK(seeded[0].id == "cseededtoken0000000000001");
  CHECK(sim.control().issued_values().size() == 1);
  HttpResponse filtered =
      sim.api("GET", tokens_path(sim) + "?workspaceId=cwsb00000000000000000000b");
  CHECK(astro::json::decode_token_page(filtered.body)->total_count == 1);
  HttpResponse other = sim.api("GET", tokens_path(sim) + "?workspaceId=cwsa00000000000000000000a");
  CHECK(astro::json::decode_token_page(other.body)->total_count == 0);
  HttpResponse orgs_only = sim.api("GET", tokens_path(sim) + "?includeOnlyOrganizationTokens=true");
  CHECK(astro::json::decode_token_page(orgs_only.body)->total_count == 0);
}

TEST_CASE("sim --data keeps tokens across a restart - without their values", "[sim]") {
  TempDir dir;
  SimOptions options = no_limits();
  options.data_file = dir.file("data.json");
  SimProcess sim(options);
  const std::string tokens = tokens_path(sim);

  auto first = astro::json::decode_token(sim.api("POST", tokens, org_token_body("first")).body);
  auto second = astro::json::decode_token(sim.api("POST", tokens, org_token_body("second")).body);
  auto third = astro::json::decode_token(sim.api("POST", tokens, org_token_body("third")).body);
  REQUIRE((first.ok() && second.ok() && third.ok()));
  REQUIRE(sim.api("POST", tokens + "/" + second->id + "/rotate").status == 200);
  REQUIRE(sim.api("DELETE", tokens + "/" + third->id).status == 204);
  sim::TokenPatch aged;
  aged.end_at = std::optional<Timestamp>(*parse_rfc3339("2021-05-06T07:08:09Z"));
  sim.control().patch_token(first->id, aged);

  // Written a moment after the changes, without waiting for shutdown.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (read_file(options.data_file).find("2021-05-06T07:08:09Z") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(read_file(options.data_file).find("2021-05-06T07:08:09Z") != std::string::npos);

  std::vector<astro::ApiToken> before = sim.control().tokens();
  std::vector<std::string> values = sim.control().issued_values();
  REQUIRE(values.size() == 4);
  sim.restart();

  std::vector<astro::ApiToken> after = sim.control().tokens();
  REQUIRE(after.size() == 2);
  REQUIRE(before.size() == 2);
  for (size_t i = 0; i < after.size(); ++i) {
    CHECK(after[i].id == before[i].id);
    CHECK(after[i].attrs() == before[i].attrs());
    CHECK(after[i].start_at == before[i].start_at);
    CHECK(after[i].end_at == before[i].end_at);
    CHECK(after[i].short_token == before[i].short_token);
    CHECK(after[i].last_rotated_at == before[i].last_rotated_at);
  }
  CHECK(before[1].last_rotated_at);  // the second was rotated
  std::string data = read_file(options.data_file);
  for (const std::string& value : values) CHECK(data.find(value) == std::string::npos);
  struct stat info {};
  REQUIRE(stat(options.data_file.c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0600);
  CHECK(sim.api("GET", tokens + "/" + third->id).status == 404);
  CHECK(sim.api("GET", tokens + "/" + first->id).status == 200);
  // New tokens keep being added after the loaded ones.
  auto fourth = astro::json::decode_token(sim.api("POST", tokens, org_token_body("fourth")).body);
  REQUIRE(fourth.ok());
  CHECK(sim.control().tokens().back().id == fourth->id);
  CHECK(sim.stop() == 0);
  CHECK(read_file(options.data_file).find(fourth->id) != std::string::npos);
}

TEST_CASE("sim --data loads a file written before v1 and keeps DAG roles and kind", "[sim]") {
  TempDir dir;
  SimOptions options = no_limits();
  options.data_file = dir.file("data.json");
  const std::string old_id = "cold0000000000000000000001";
  write_file(options.data_file,
             R"({"format":"astro-api-sim-data","organizationId":")" + std::string(kSimOrgId) +
                 R"(","limit":1,"offset":0,"totalCount":1,"tokens":[{"id":")" + old_id +
                 R"(","name":"old","description":"","type":"DEPLOYMENT","shortToken":"s",)"
                 R"("createdAt":"2024-01-01T00:00:00Z","updatedAt":"2024-01-01T00:00:00Z",)"
                 R"("startAt":"2024-01-01T00:00:00Z","roles":[{"entityId":")" +
                 kSimDeploymentId +
                 R"(","entityType":"DEPLOYMENT","role":"DEPLOYMENT_ADMIN"}]}]})");
  SimProcess sim(options);
  const std::string v1_tokens = "/v1/organizations/" + sim.org_id() + "/tokens";
  HttpResponse got = sim.api("GET", v1_tokens + "/" + old_id);
  REQUIRE(got.status == 200);
  auto old = sim::v1::decode_token(got.body);
  REQUIRE(old.ok());
  CHECK(old->type == EntityType::Deployment);
  CHECK(old->kind == TokenKind::Standard);

  const RoleSet dag_roles =
      normalize_roles({{"DEPLOYMENT_ADMIN", kSimDeploymentId, EntityType::Deployment},
                       {"DAG_VIEWER", "etl", EntityType::Dag, kSimDeploymentId},
                       {"DAG_AUTHOR", "finance", EntityType::DagTag, kSimDeploymentId}});
  REQUIRE(
      sim.api("POST", v1_tokens + "/" + old_id + "/roles", sim::v1::encode_roles_request(dag_roles))
          .status == 200);
  sim::TokenPatch direct;
  direct.kind = TokenKind::DirectAccess;
  CHECK(sim.control().patch_token(old_id, direct).kind == TokenKind::DirectAccess);
  sim.restart();
  auto back = sim.control().token(old_id);
  REQUIRE(back);
  CHECK(back->roles == dag_roles);
  CHECK(back->kind == TokenKind::DirectAccess);
  CHECK(read_file(options.data_file).find(R"("scope":"DEPLOYMENT")") != std::string::npos);
}

TEST_CASE("TLS with a throwaway CA", "[sim]") {
  TempDir dir;
  TestTls tls = make_test_tls(dir.path());
  SimOptions options = no_limits();
  options.tls_cert = tls.cert_file;
  options.tls_key = tls.key_file;
  options.ca_file = tls.ca_file;
  SimProcess sim(options);
  CHECK(sim.base_url().starts_with("https://127.0.0.1:"));
  CHECK(sim.control().healthy());
  CHECK(sim.api("POST", tokens_path(sim), org_token_body("over tls")).status == 200);

  HttpResponse untrusted = http_request({"GET", sim.base_url() + "/_sim/health", {}, ""});
  CHECK(untrusted.status == 0);
  CHECK_FALSE(untrusted.error.empty());
  HttpResponse plain = http_request(
      {"GET", "http://127.0.0.1:" + std::to_string(sim.port()) + "/_sim/health", {}, ""});
  CHECK(plain.status == 0);
}

TEST_CASE("parallel clients on keep-alive connections", "[sim]") {
  SimProcess sim(no_limits());
  constexpr int kThreads = 8;
  constexpr int kPerThread = 40;
  std::vector<std::vector<std::string>> ids(kThreads);
  std::vector<int> failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      HttpConnection connection(sim.base_url());
      for (int i = 0; i < kPerThread; ++i) {
        HttpResponse r = connection.request("POST", tokens_path(sim), org_token_body("p"),
                                            bearer_header(sim.bearer_token()));
        auto token = astro::json::decode_token(r.body);
        if (r.status != 200 || !token.ok()) {
          ++failures[t];
          continue;
        }
        ids[t].push_back(token->id);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  std::set<std::string> unique;
  for (int t = 0; t < kThreads; ++t) {
    CHECK(failures[t] == 0);
    unique.insert(ids[t].begin(), ids[t].end());
  }
  CHECK(unique.size() == kThreads * kPerThread);
  std::set<std::string> values;
  for (const auto& v : sim.control().issued_values()) values.insert(v);
  CHECK(values.size() == kThreads * kPerThread);
}

TEST_CASE("10000 tokens: bulk creation and pages of 1000 stay fast", "[sim]") {
  SimProcess sim(no_limits());
  sim::NewToken templ{{"scale", "a token among many", EntityType::Workspace, "WORKSPACE_MEMBER",
                       kSimWorkspaceId, 365},
                      std::nullopt,
                      ""};
  auto start = std::chrono::steady_clock::now();
  auto created = sim.control().create_tokens(templ, 10000);
  auto bulk_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  REQUIRE(created.ids.size() == 10000);
  CHECK(bulk_ms < std::chrono::seconds(20));

  HttpConnection connection(sim.base_url());
  start = std::chrono::steady_clock::now();
  size_t listed = 0;
  for (int offset = 0; offset < 10000; offset += 1000) {
    HttpResponse r =
        connection.request("GET", tokens_path(sim) + "?limit=1000&offset=" + std::to_string(offset),
                           "", bearer_header(sim.bearer_token()));
    REQUIRE(r.status == 200);
    auto page = astro::json::decode_token_page(r.body);
    REQUIRE(page.ok());
    CHECK(page->total_count == 10000);
    listed += page->tokens.size();
  }
  auto list_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  CHECK(listed == 10000);
  // Ten pages, each encoded and decoded: generous even under sanitizers.
  CHECK(list_ms < std::chrono::seconds(10));
}
