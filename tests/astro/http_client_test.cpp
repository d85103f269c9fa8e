// HttpClient against a scripted local HTTP server: request shapes, status
// mapping, pagination, retries, ambiguity, connection reuse, secrecy.
#include <catch2/catch.hpp>

#include <Poco/Net/ServerSocket.h>

#include <atomic>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "astro/http_client.h"
#include "astro/json.h"
#include "astro/local_server.h"
#include "sim/v1_json.h"
#include "version.h"

using namespace tokend;
using namespace tokend::astro;
using tokend::testing::LocalServer;
using tokend::testing::RecordedRequest;
using tokend::testing::Reply;

namespace {

constexpr const char* kOrg = "clx42kkcm01fo01o06agtmshg";
constexpr const char* kBearer = "bearer-secret-4f9a1c";
// v1, the default: tokens and lookups under one base. The scripted answers are
// encoded by the simulator's v1 encoders (sim/v1_json.h), the server side.
const std::string kTokens = std::string("/v1/organizations/") + kOrg + "/tokens";
const std::string kPlatform = std::string("/v1/organizations/") + kOrg;
const std::string kBetaTokens = std::string("/iam/v1beta1/organizations/") + kOrg + "/tokens";
const std::string kBetaPlatform = std::string("/platform/v1beta1/organizations/") + kOrg;

HttpClientOptions fast_options(const std::string& url) {
  HttpClientOptions options;
  options.api_url = url;
  options.organization_id = kOrg;
  options.bearer_token = SecretValue(kBearer);
  options.connect_timeout = std::chrono::milliseconds(1000);
  options.request_timeout = std::chrono::milliseconds(2000);
  options.rate_limits = RateLimits{0, 0, 0, 1};
  options.retry.max_attempts = 4;
  options.retry.base_delay = std::chrono::milliseconds(1);
  options.retry.max_delay = std::chrono::milliseconds(4);
  return options;
}

std::unique_ptr<HttpClient> make_client(HttpClientOptions options, Logger& logger = null_logger()) {
  auto client = HttpClient::create(std::move(options), logger);
  REQUIRE(client.ok());
  return std::move(client.value());
}

ApiToken sample_token(const std::string& id) {
  ApiToken t;
  t.id = id;
  t.name = "token " + id;
  t.description = "";
  t.type = EntityType::Workspace;
  t.roles = {Role{"WORKSPACE_OWNER", "clx42sxw501gl01o0gjenthnh", EntityType::Workspace}};
  t.short_token = "short";
  t.created_at = t.updated_at = t.start_at = *parse_rfc3339("2026-01-02T03:04:05Z");
  return t;
}

std::string token_id(int n) {
  std::string digits = std::to_string(n);
  return "c" + std::string(24 - digits.size(), '0') + digits;
}

std::string token_body(const std::string& id, const std::string& value = "") {
  ApiToken t = sample_token(id);
  t.token = SecretValue(value);
  return sim::v1::encode_token(t, !value.empty());
}

std::string error_body(const std::string& message, const std::string& request_id, int status) {
  return sim::v1::encode_error({message, request_id, status, {}});
}

Reply answer(int status, std::string body = "{}", std::map<std::string, std::string> headers = {}) {
  Reply r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

// A port nothing listens on: bound, then closed.
unsigned short closed_port() {
  Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
  unsigned short port = socket.address().port();
  socket.close();
  return port;
}

struct ObservedCalls {
  std::mutex mutex;
  std::vector<std::pair<Operation, int>> calls;
  std::vector<double> durations;  // seconds, by call
  RequestObserver observer() {
    return [this](Operation op, int status, std::chrono::duration<double> elapsed) {
      std::lock_guard<std::mutex> lock(mutex);
      calls.emplace_back(op, status);
      durations.push_back(elapsed.count());
    };
  }
};

}  // namespace

TEST_CASE("every operation sends the contract's method - path - headers and body", "[astro]") {
  LocalServer server([](const RecordedRequest& r) {
    if (r.method == "DELETE") return answer(204);
    if (r.path() == kTokens && r.method == "GET")
      return answer(200, sim::v1::encode_token_page({{sample_token(token_id(1))}, 1, 0, 1000}));
    if (r.path() == kTokens + "/" + token_id(1) + "/roles")
      return answer(200, sim::v1::encode_subject_roles({}));
    if (r.path().find("/rotate") != std::string::npos || r.path() == kTokens)
      return answer(200, token_body(token_id(1), "value-1"));
    if (r.path() == kPlatform + "/workspaces")
      return answer(200, R"({"workspaces":[{"id":"w1"}],"totalCount":1,"offset":0,"limit":1000})");
    if (r.path() == kPlatform + "/deployments")
      return answer(200, R"({"deployments":[{"id":"d1"}],"totalCount":1,"offset":0,"limit":1000})");
    return answer(200, token_body(token_id(1)));
  });
  auto client = make_client(fast_options(server.url()));

  CreateTokenRequest create{
      "ci", "desc", EntityType::Workspace, "WORKSPACE_OWNER", "clx42sxw501gl01o0gjenthnh", 30};
  UpdateTokenRequest update{"ci2", "desc2"};
  RoleSet roles{{"WORKSPACE_OWNER", "clx42sxw501gl01o0gjenthnh", EntityType::Workspace}};
  REQUIRE(client->list_tokens().ok());
  REQUIRE(client->get_token(token_id(1)).ok());
  REQUIRE(client->create_token(create).ok());
  REQUIRE(client->update_token(token_id(1), update).ok());
  REQUIRE(client->update_token_roles(token_id(1), roles).ok());
  REQUIRE(client->rotate_token(token_id(1)).ok());
  REQUIRE(client->delete_token(token_id(1)).ok());
  REQUIRE(client->existing_workspaces({"w1", "w2"}).ok());
  REQUIRE(client->existing_deployments({"d1"}).ok());

  struct Expected {
    std::string method;
    std::string uri;
    std::string body;
  };
  const std::string id = token_id(1);
  const std::vector<Expected> expected = {
      {"GET", kTokens + "?offset=0&limit=1000&sorts=createdAt:asc", ""},
      {"GET", kTokens + "/" + id, ""},
      {"POST", kTokens,
       R"({"name":"ci","description":"desc","scope":"WORKSPACE","kind":"STANDARD",)"
       R"("role":"WORKSPACE_OWNER","entityId":"clx42sxw501gl01o0gjenthnh",)"
       R"("tokenExpiryPeriodInDays":30})"},
      {"POST", kTokens + "/" + id, R"({"name":"ci2","description":"desc2"})"},
      {"POST", kTokens + "/" + id + "/roles",
       R"({"roles":[{"entityId":"clx42sxw501gl01o0gjenthnh","entityType":"WORKSPACE",)"
       R"("role":"WORKSPACE_OWNER"}]})"},
      {"POST", kTokens + "/" + id + "/rotate", ""},
      {"DELETE", kTokens + "/" + id, ""},
      {"GET", kPlatform + "/workspaces?offset=0&limit=1000&workspaceIds=w1&workspaceIds=w2", ""},
      {"GET", kPlatform + "/deployments?offset=0&limit=1000&deploymentIds=d1", ""},
  };
  auto requests = server.requests();
  REQUIRE(requests.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("request " << i << ": " << requests[i].method << " " << requests[i].uri);
    CHECK(requests[i].method == expected[i].method);
    CHECK(requests[i].uri == expected[i].uri);
    CHECK(requests[i].body == expected[i].body);
    CHECK(requests[i].header("Authorization") == std::string("Bearer ") + kBearer);
    CHECK(requests[i].header("User-Agent") == std::string("astro-tokend/") + kVersion);
    CHECK(requests[i].header("Accept") == "application/json");
    if (!expected[i].body.empty()) CHECK(requests[i].header("Content-Type") == "application/json");
  }
}

TEST_CASE("with api_version v1beta1 every operation uses the IAM and Platform paths and shapes",
          "[astro]") {
  LocalServer server([](const RecordedRequest& r) {
    if (r.method == "DELETE") return answer(204);
    if (r.path() == kBetaTokens && r.method == "GET")
      return answer(200, json::encode_token_page({{sample_token(token_id(1))}, 1, 0, 1000}));
    if (r.path() == kBetaTokens + "/" + token_id(1) + "/roles")
      return answer(200, json::encode_subject_roles({}));
    ApiToken t = sample_token(token_id(1));
    if (r.path().find("/rotate") != std::string::npos || r.path() == kBetaTokens)
      t.token = SecretValue("value-1");
    if (r.path() == kBetaPlatform + "/workspaces")
      return answer(200, R"({"workspaces":[{"id":"w1"}],"totalCount":1,"offset":0,"limit":1000})");
    if (r.path() == kBetaPlatform + "/deployments")
      return answer(200, R"({"deployments":[{"id":"d1"}],"totalCount":1,"offset":0,"limit":1000})");
    return answer(200, json::encode_token(t, !t.token.empty()));
  });
  HttpClientOptions options = fast_options(server.url());
  options.api_version = ApiVersion::V1Beta1;
  auto client = make_client(options);

  CreateTokenRequest create{
      "ci", "desc", EntityType::Workspace, "WORKSPACE_OWNER", "clx42sxw501gl01o0gjenthnh", 30};
  RoleSet roles{{"WORKSPACE_OWNER", "clx42sxw501gl01o0gjenthnh", EntityType::Workspace}};
  auto listed = client->list_tokens();
  REQUIRE(listed.ok());
  CHECK(listed->tokens.at(0).type == EntityType::Workspace);
  REQUIRE(client->get_token(token_id(1)).ok());
  REQUIRE(client->create_token(create).ok());
  REQUIRE(client->update_token(token_id(1), {"ci2", "desc2"}).ok());
  REQUIRE(client->update_token_roles(token_id(1), roles).ok());
  REQUIRE(client->rotate_token(token_id(1)).ok());
  REQUIRE(client->delete_token(token_id(1)).ok());
  REQUIRE(client->existing_workspaces({"w1", "w2"}).ok());
  REQUIRE(client->existing_deployments({"d1"}).ok());

  const std::string id = token_id(1);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"GET", kBetaTokens + "?offset=0&limit=1000&sorts=createdAt:asc"},
      {"GET", kBetaTokens + "/" + id},
      {"POST", kBetaTokens},
      {"POST", kBetaTokens + "/" + id},
      {"POST", kBetaTokens + "/" + id + "/roles"},
      {"POST", kBetaTokens + "/" + id + "/rotate"},
      {"DELETE", kBetaTokens + "/" + id},
      {"GET", kBetaPlatform + "/workspaces?offset=0&limit=1000&workspaceIds=w1&workspaceIds=w2"},
      {"GET", kBetaPlatform + "/deployments?offset=0&limit=1000&deploymentIds=d1"},
  };
  auto requests = server.requests();
  REQUIRE(requests.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("request " << i << ": " << requests[i].method << " " << requests[i].uri);
    CHECK(requests[i].method == expected[i].first);
    CHECK(requests[i].uri == expected[i].second);
  }
  CHECK(requests[2].body ==
        R"({"name":"ci","description":"desc","type":"WORKSPACE","role":"WORKSPACE_OWNER",)"
        R"("entityId":"clx42sxw501gl01o0gjenthnh","tokenExpiryPeriodInDays":30})");
  CHECK(requests[4].body ==
        R"({"roles":[{"entityId":"clx42sxw501gl01o0gjenthnh","entityType":"WORKSPACE",)"
        R"("role":"WORKSPACE_OWNER"}]})");
}

TEST_CASE("v1 sends kind and DAG roles and reads them back", "[astro]") {
  const std::string dep = "clyn6kxud003x01mtxmccegnh";
  ApiToken held = sample_token(token_id(3));
  held.type = EntityType::Deployment;
  held.kind = TokenKind::DirectAccess;
  held.last_rotated_at = *parse_rfc3339("2026-03-04T05:06:07Z");
  held.roles = normalize_roles({{"DEPLOYMENT_ADMIN", dep, EntityType::Deployment},
                                {"DAG_VIEWER", "etl_daily", EntityType::Dag, dep},
                                {"DAG_AUTHOR", "finance", EntityType::DagTag, dep}});
  LocalServer server([&](const RecordedRequest& r) {
    if (r.path().ends_with("/roles")) return answer(200, sim::v1::encode_subject_roles(held.roles));
    ApiToken shown = held;
    if (r.method == "POST") shown.token = SecretValue("value-3");
    return answer(200, sim::v1::encode_token(shown, r.method == "POST"));
  });
  auto client = make_client(fast_options(server.url()));
  auto created = client->create_token({"dac", "", EntityType::Deployment, "DEPLOYMENT_ADMIN", dep,
                                       std::nullopt, TokenKind::DirectAccess});
  REQUIRE(created.ok());
  CHECK(created->kind == TokenKind::DirectAccess);
  CHECK(created->last_rotated_at == held.last_rotated_at);
  CHECK(created->roles == held.roles);
  REQUIRE(client->update_token_roles(created->id, held.roles).ok());
  auto requests = server.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[0].body.find(R"("kind":"DIRECT_ACCESS")") != std::string::npos);
  // In the normalized order of the set.
  CHECK(requests[1].body ==
        R"({"roles":[{"deploymentId":"clyn6kxud003x01mtxmccegnh","entityId":"finance",)"
        R"("entityType":"DAG_TAG","role":"DAG_AUTHOR"},)"
        R"({"deploymentId":"clyn6kxud003x01mtxmccegnh","entityId":"etl_daily",)"
        R"("entityType":"DAG","role":"DAG_VIEWER"},)"
        R"({"entityId":"clyn6kxud003x01mtxmccegnh","entityType":"DEPLOYMENT",)"
        R"("role":"DEPLOYMENT_ADMIN"}]})");
}

TEST_CASE("a v1 error answer shows its fieldErrors in the Error message", "[astro]") {
  LocalServer server([](const RecordedRequest&) {
    return answer(400, sim::v1::encode_error({"invalid roles",
                                              "req-77",
                                              400,
                                              {{"required", "roles[1].deploymentId",
                                                "deploymentId is required for DAG roles"}}}));
  });
  auto client = make_client(fast_options(server.url()));
  Status done =
      client->update_token_roles(token_id(1), {{"DAG_VIEWER", "etl", EntityType::Dag, "cdep"}});
  REQUIRE_FALSE(done.ok());
  CHECK(done.error().kind == ErrorKind::Invalid);
  CHECK(done.error().request_id == "req-77");
  CHECK(done.error().message ==
        "UpdateApiTokenRoles: invalid roles (roles[1].deploymentId: deploymentId is required for "
        "DAG roles)");
}

TEST_CASE("what the configured API version cannot express is refused locally", "[astro]") {
  LocalServer server([](const RecordedRequest&) { return answer(200, token_body(token_id(1))); });
  const RoleSet dag_roles{{"DEPLOYMENT_ADMIN", "cdep", EntityType::Deployment},
                          {"DAG_VIEWER", "etl", EntityType::Dag, "cdep"}};
  HttpClientOptions beta_options = fast_options(server.url());
  beta_options.api_version = ApiVersion::V1Beta1;
  auto beta = make_client(beta_options);
  auto direct = beta->create_token({"d", "", EntityType::Organization, "ORGANIZATION_MEMBER", "",
                                    std::nullopt, TokenKind::DirectAccess});
  REQUIRE_FALSE(direct.ok());
  CHECK(direct.error().kind == ErrorKind::Invalid);
  CHECK(direct.error().message.find("DIRECT_ACCESS") != std::string::npos);
  Status dag = beta->update_token_roles(token_id(1), dag_roles);
  REQUIRE_FALSE(dag.ok());
  CHECK(dag.error().kind == ErrorKind::Invalid);
  CHECK(dag.error().message.find("v1beta1") != std::string::npos);

  auto v1 = make_client(fast_options(server.url()));
  Status no_deployment =
      v1->update_token_roles(token_id(1), {{"DAG_AUTHOR", "finance", EntityType::DagTag}});
  REQUIRE_FALSE(no_deployment.ok());
  CHECK(no_deployment.error().message ==
        "UpdateApiTokenRoles: the DAG_TAG role DAG_AUTHOR on finance names no deployment_id");
  CHECK(server.request_count() == 0);
  REQUIRE(v1->update_token_roles(token_id(1), dag_roles).ok());
  CHECK(server.request_count() == 1);
}

TEST_CASE("create and rotate return the new value - list and get never ask for one", "[astro]") {
  LocalServer server([](const RecordedRequest& r) {
    if (r.method == "POST") return answer(200, token_body(token_id(7), "secret-value-7"));
    return answer(200, token_body(token_id(7)));
  });
  auto client = make_client(fast_options(server.url()));
  auto created = client->create_token(
      {"n", "", EntityType::Organization, "ORGANIZATION_MEMBER", "", std::nullopt});
  REQUIRE(created.ok());
  CHECK(created->id == token_id(7));
  CHECK(created->token.reveal() == "secret-value-7");
  auto rotated = client->rotate_token(token_id(7));
  REQUIRE(rotated.ok());
  CHECK(rotated->token.reveal() == "secret-value-7");
  auto got = client->get_token(token_id(7));
  REQUIRE(got.ok());
  CHECK(got->token.empty());
}

TEST_CASE("a create answer without a readable token value is Ambiguous", "[astro]") {
  LocalServer server([](const RecordedRequest&) { return answer(200, token_body(token_id(7))); });
  auto client = make_client(fast_options(server.url()));
  auto created = client->create_token(
      {"n", "", EntityType::Organization, "ORGANIZATION_MEMBER", "", std::nullopt});
  REQUIRE_FALSE(created.ok());
  CHECK(created.error().kind == ErrorKind::Ambiguous);
  CHECK(server.request_count() == 1);
}

TEST_CASE("statuses map to error kinds and carry the API's message and requestId", "[astro]") {
  struct Row {
    int status;
    ErrorKind kind;
    size_t requests;  // attempts made (max_attempts = 4)
  };
  const std::vector<Row> rows = {
      {400, ErrorKind::Invalid, 1},     {401, ErrorKind::Unauthorized, 1},
      {403, ErrorKind::Forbidden, 1},   {404, ErrorKind::NotFound, 1},
      {409, ErrorKind::Conflict, 1},    {422, ErrorKind::Invalid, 1},
      {429, ErrorKind::RateLimited, 4}, {500, ErrorKind::Unavailable, 4},
      {502, ErrorKind::Unavailable, 4}, {503, ErrorKind::Unavailable, 4},
  };
  for (const Row& row : rows) {
    DYNAMIC_SECTION("HTTP " << row.status) {
      LocalServer server([&](const RecordedRequest&) {
        return answer(
            row.status,
            error_body("the message for " + std::to_string(row.status), "req-42", row.status),
            {{"Retry-After", "0"}});
      });
      auto client = make_client(fast_options(server.url()));
      auto got = client->get_token(token_id(1));
      REQUIRE_FALSE(got.ok());
      CHECK(got.error().kind == row.kind);
      CHECK(got.error().http_status == row.status);
      CHECK(got.error().request_id == "req-42");
      CHECK(got.error().message.find("the message for " + std::to_string(row.status)) !=
            std::string::npos);
      CHECK(got.error().message.find("GetApiToken") != std::string::npos);
      CHECK(server.request_count() == row.requests);
    }
  }
}

TEST_CASE("error_kind_for_status and judge_attempt follow the retry table", "[astro]") {
  CHECK(error_kind_for_status(400) == ErrorKind::Invalid);
  CHECK(error_kind_for_status(418) == ErrorKind::Invalid);
  CHECK(error_kind_for_status(504) == ErrorKind::Unavailable);
  CHECK(error_kind_for_status(302) == ErrorKind::Internal);

  struct Row {
    bool idempotent;
    Delivery delivery;
    int status;
    Verdict verdict;
  };
  const std::vector<Row> rows = {
      {true, Delivery::Answered, 200, Verdict::Success},
      {false, Delivery::Answered, 204, Verdict::Success},
      {true, Delivery::Answered, 429, Verdict::Retry},
      {false, Delivery::Answered, 429, Verdict::Retry},
      {true, Delivery::Answered, 503, Verdict::Retry},
      {false, Delivery::Answered, 503, Verdict::Ambiguous},
      {false, Delivery::Answered, 500, Verdict::Ambiguous},
      {true, Delivery::Answered, 400, Verdict::Fail},
      {false, Delivery::Answered, 404, Verdict::Fail},
      {true, Delivery::NotSent, 0, Verdict::Retry},
      {false, Delivery::NotSent, 0, Verdict::Retry},
      {true, Delivery::LostAfterSend, 0, Verdict::Retry},
      {false, Delivery::LostAfterSend, 0, Verdict::Ambiguous},
      {true, Delivery::TlsFailed, 0, Verdict::Fail},
      {false, Delivery::TlsFailed, 0, Verdict::Fail},
  };
  for (const Row& row : rows) {
    INFO("idempotent=" << row.idempotent << " delivery=" << static_cast<int>(row.delivery)
                       << " status=" << row.status);
    CHECK(judge_attempt(row.idempotent, row.delivery, row.status) == row.verdict);
  }
}

TEST_CASE("backoff is capped - exponential and fully jittered", "[astro]") {
  RetryPolicy policy;
  policy.base_delay = std::chrono::milliseconds(100);
  policy.max_delay = std::chrono::milliseconds(1000);
  using ms = std::chrono::milliseconds;
  CHECK(backoff_delay(policy, 1, 0.0) == ms(0));
  CHECK(backoff_delay(policy, 1, 0.5) == ms(50));
  CHECK(backoff_delay(policy, 2, 0.5) == ms(100));
  CHECK(backoff_delay(policy, 3, 0.5) == ms(200));
  CHECK(backoff_delay(policy, 4, 0.999) == ms(799));
  CHECK(backoff_delay(policy, 5, 0.999) == ms(999));  // capped at 1000
  CHECK(backoff_delay(policy, 60, 0.5) == ms(500));   // no overflow
}

TEST_CASE("Retry-After is read as seconds or as an HTTP date", "[astro]") {
  const auto now = std::chrono::system_clock::time_point{
      std::chrono::seconds{1445412480}};  // 2015-10-21T07:28:00Z
  using ms = std::chrono::milliseconds;
  CHECK(parse_retry_after("1", now) == ms(1000));
  CHECK(parse_retry_after(" 120 ", now) == ms(120000));
  CHECK(parse_retry_after("0", now) == ms(0));
  CHECK(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now) == ms(30000));
  CHECK(parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now) == ms(0));  // in the past
  CHECK_FALSE(parse_retry_after("", now).has_value());
  CHECK_FALSE(parse_retry_after("-5", now).has_value());
  CHECK_FALSE(parse_retry_after("soon", now).has_value());
}

TEST_CASE("a retry reads as one sentence for people", "[astro]") {
  using ms = std::chrono::milliseconds;
  CHECK(retry_sentence("ListApiTokens", ms(2000), "HTTP 503", 2, 5) ==
        "Retrying ListApiTokens in 2s after HTTP 503 (attempt 2 of 5)");
  CHECK(retry_sentence("GetApiToken", ms(1234), "HTTP 429", 3, 5) ==
        "Retrying GetApiToken in 1.2s after HTTP 429 (attempt 3 of 5)");
  CHECK(retry_sentence("GetApiToken", ms(1260), "HTTP 429", 3, 5) ==
        "Retrying GetApiToken in 1.3s after HTTP 429 (attempt 3 of 5)");
  CHECK(retry_sentence("DeleteApiToken", ms(250), "Connection refused", 2, 4) ==
        "Retrying DeleteApiToken in 250ms after Connection refused (attempt 2 of 4)");
  CHECK(retry_sentence("ListApiTokens", ms(90000), "HTTP 502", 4, 5) ==
        "Retrying ListApiTokens in 1m30s after HTTP 502 (attempt 4 of 5)");
}

TEST_CASE("the client logs each retry with its sentence for people", "[astro]") {
  std::atomic<int> seen{0};
  LocalServer server([&](const RecordedRequest&) {
    if (++seen <= 2) return answer(503, error_body("try later", "r", 503));
    return answer(200, token_body(token_id(1)));
  });
  std::ostringstream human_out;
  std::ostringstream text_out;
  Logger human(human_out, LogLevel::Info, LogFormat::Human);
  Logger text(text_out, LogLevel::Info, LogFormat::Text);
  REQUIRE(make_client(fast_options(server.url()), human)->get_token(token_id(1)).ok());
  seen = 0;
  REQUIRE(make_client(fast_options(server.url()), text)->get_token(token_id(1)).ok());

  const std::regex sentence(R"(Retrying GetApiToken in \d+ms after HTTP 503 \(attempt 2 of 4\)\n)"
                            R"(Retrying GetApiToken in \d+ms after HTTP 503 \(attempt 3 of 4\)\n)");
  INFO(human_out.str());
  CHECK(std::regex_match(human_out.str(), sentence));
  INFO(text_out.str());
  CHECK(text_out.str().find("level=warn msg=\"astro api request failed, retrying\" "
                            "op=GetApiToken reason=\"HTTP 503\" attempt=1 wait_ms=") !=
        std::string::npos);
}

TEST_CASE("list_tokens follows every page with limit 1000 and stops at totalCount", "[astro]") {
  static constexpr int kTotal = 2500;
  LocalServer server([](const RecordedRequest& r) {
    const int offset = std::stoi(r.query("offset").at(0));
    const int limit = std::stoi(r.query("limit").at(0));
    json::TokenPage page;
    page.total_count = kTotal;
    page.offset = offset;
    page.limit = limit;
    for (int i = offset; i < std::min(kTotal, offset + limit); ++i)
      page.tokens.push_back(sample_token(token_id(i)));
    return answer(200, sim::v1::encode_token_page(page));
  });
  auto client = make_client(fast_options(server.url()));
  auto tokens = client->list_tokens();
  REQUIRE(tokens.ok());
  REQUIRE(tokens->tokens.size() == kTotal);
  CHECK(tokens->consistent);
  CHECK(tokens->tokens.front().id == token_id(0));
  CHECK(tokens->tokens.back().id == token_id(kTotal - 1));
  auto requests = server.requests();
  REQUIRE(requests.size() == 3);
  CHECK(requests[0].query("offset") == std::vector<std::string>{"0"});
  CHECK(requests[1].query("offset") == std::vector<std::string>{"1000"});
  CHECK(requests[2].query("offset") == std::vector<std::string>{"2000"});
  for (const auto& r : requests) {
    CHECK(r.query("limit") == std::vector<std::string>{"1000"});
    CHECK(r.query("sorts") == std::vector<std::string>{"createdAt:asc"});
  }
}

TEST_CASE("list_tokens follows smaller pages than asked for and never reports a token twice",
          "[astro]") {
  // The server caps pages at 20 and repeats the last token of each page at the
  // start of the next (as when tokens are created between pages).
  static constexpr int kTotal = 45;
  LocalServer server([](const RecordedRequest& r) {
    const int offset = std::stoi(r.query("offset").at(0));
    json::TokenPage page;
    page.total_count = kTotal;
    page.offset = offset;
    page.limit = 20;
    const int first = offset == 0 ? 0 : offset - 1;
    for (int i = first; i < std::min(kTotal, offset + 20); ++i)
      page.tokens.push_back(sample_token(token_id(i)));
    return answer(200, sim::v1::encode_token_page(page));
  });
  auto client = make_client(fast_options(server.url()));
  auto tokens = client->list_tokens();
  REQUIRE(tokens.ok());
  std::set<std::string> ids;
  for (const auto& t : tokens->tokens) ids.insert(t.id);
  CHECK(ids.size() == tokens->tokens.size());
  CHECK(server.request_count() <= 3);
  // A token on two pages means the pages shifted: others may be missing.
  CHECK_FALSE(tokens->consistent);
  CHECK(tokens->problem == "token " + token_id(19) + " was listed on two pages");
}

TEST_CASE("list_tokens calls a listing inconsistent when its pages add up to fewer tokens",
          "[astro]") {
  // Three tokens of the first page are deleted before the second is asked
  // for: the second page starts three tokens later and totalCount shrinks.
  static constexpr int kTotal = 1500;
  LocalServer server([](const RecordedRequest& r) {
    const int offset = std::stoi(r.query("offset").at(0));
    json::TokenPage page;
    page.offset = offset;
    page.limit = 1000;
    page.total_count = offset == 0 ? kTotal : kTotal - 3;
    const int shift = offset == 0 ? 0 : 3;
    for (int i = offset + shift; i < std::min(kTotal, offset + shift + 1000); ++i)
      page.tokens.push_back(sample_token(token_id(i)));
    return answer(200, sim::v1::encode_token_page(page));
  });
  auto client = make_client(fast_options(server.url()));
  auto tokens = client->list_tokens();
  REQUIRE(tokens.ok());
  CHECK(server.request_count() == 2);
  CHECK(tokens->tokens.size() == kTotal - 3);
  CHECK_FALSE(tokens->consistent);
  CHECK(tokens->problem == "the pages held 1497 tokens, but the first said totalCount 1500");
}

TEST_CASE("list_tokens calls a listing inconsistent when totalCount grows between pages",
          "[astro]") {
  LocalServer server([](const RecordedRequest& r) {
    const int offset = std::stoi(r.query("offset").at(0));
    json::TokenPage page;
    page.offset = offset;
    page.limit = 1000;
    page.total_count = offset == 0 ? 1200 : 1201;
    for (int i = offset; i < std::min(page.total_count, offset + 1000); ++i)
      page.tokens.push_back(sample_token(token_id(i)));
    return answer(200, sim::v1::encode_token_page(page));
  });
  auto client = make_client(fast_options(server.url()));
  auto tokens = client->list_tokens();
  REQUIRE(tokens.ok());
  CHECK(tokens->tokens.size() == 1201);
  CHECK_FALSE(tokens->consistent);
  CHECK(tokens->problem == "totalCount changed from 1200 to 1201 between pages");
}

TEST_CASE("list_tokens gives up on an empty page short of totalCount", "[astro]") {
  LocalServer server([](const RecordedRequest& r) {
    json::TokenPage page;
    page.total_count = 5000;
    page.offset = std::stoi(r.query("offset").at(0));
    page.limit = 1000;
    if (page.offset == 0)
      for (int i = 0; i < 1000; ++i) page.tokens.push_back(sample_token(token_id(i)));
    return answer(200, sim::v1::encode_token_page(page));
  });
  auto client = make_client(fast_options(server.url()));
  auto tokens = client->list_tokens();
  REQUIRE_FALSE(tokens.ok());
  CHECK(tokens.error().kind == ErrorKind::Internal);
  CHECK(tokens.error().message.find("empty page at offset 1000") != std::string::npos);
  CHECK(server.request_count() == 2);
}

TEST_CASE("an unreadable page is Internal and names the field", "[astro]") {
  LocalServer server([](const RecordedRequest&) {
    return answer(200, R"({"tokens":[],"offset":0,"limit":1000})");
  });
  auto client = make_client(fast_options(server.url()));
  auto tokens = client->list_tokens();
  REQUIRE_FALSE(tokens.ok());
  CHECK(tokens.error().kind == ErrorKind::Internal);
  CHECK(tokens.error().message.find("totalCount") != std::string::npos);
}

TEST_CASE("lookups send every id in one paginated query and return those that exist", "[astro]") {
  // The server pages at 20 whatever the limit, like the API's default.
  std::vector<std::string> known;
  for (int i = 0; i < 30; ++i) known.push_back("ws" + std::to_string(i));
  LocalServer server([&](const RecordedRequest& r) {
    std::vector<std::string> matching;
    for (const auto& id : r.query("workspaceIds"))
      if (std::find(known.begin(), known.end(), id) != known.end()) matching.push_back(id);
    const size_t offset = std::stoul(r.query("offset").at(0));
    std::string body = "{\"workspaces\":[";
    for (size_t i = offset; i < std::min(matching.size(), offset + 20); ++i)
      body +=
          (i > offset ? "," : "") + std::string("{\"id\":\"") + matching[i] + "\",\"name\":\"x\"}";
    body += "],\"totalCount\":" + std::to_string(matching.size()) +
            ",\"offset\":" + std::to_string(offset) + ",\"limit\":20}";
    return answer(200, body);
  });
  auto client = make_client(fast_options(server.url()));

  std::vector<std::string> asked = known;
  asked.push_back("missing-1");
  asked.push_back("ws3");  // duplicates are asked once
  auto found = client->existing_workspaces(asked);
  REQUIRE(found.ok());
  CHECK(*found == known);
  auto requests = server.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[0].query("workspaceIds").size() == 31);
  CHECK(requests[0].query("limit") == std::vector<std::string>{"1000"});
  CHECK(requests[1].query("offset") == std::vector<std::string>{"20"});

  SECTION("an empty id list makes no request") {
    auto none = client->existing_workspaces({});
    REQUIRE(none.ok());
    CHECK(none->empty());
    CHECK(server.request_count() == 2);
  }
}

TEST_CASE("a lookup of very many ids lists without a filter and intersects", "[astro]") {
  LocalServer server([](const RecordedRequest& r) {
    CHECK(r.query("deploymentIds").empty());
    return answer(
        200, R"({"deployments":[{"id":"d1"},{"id":"d7"}],"totalCount":2,"offset":0,"limit":1000})");
  });
  auto client = make_client(fast_options(server.url()));
  std::vector<std::string> asked;
  for (size_t i = 0; i < HttpClient::kMaxIdsPerQuery + 1; ++i)
    asked.push_back("d" + std::to_string(i));
  auto found = client->existing_deployments(asked);
  REQUIRE(found.ok());
  CHECK(*found == std::vector<std::string>{"d1", "d7"});
  CHECK(server.request_count() == 1);
}

TEST_CASE("a GET survives three 503s", "[astro]") {
  std::atomic<int> seen{0};
  LocalServer server([&](const RecordedRequest&) {
    if (++seen <= 3) return answer(503, error_body("try later", "r", 503));
    return answer(200, token_body(token_id(1)));
  });
  ObservedCalls observed;
  auto options = fast_options(server.url());
  options.observer = observed.observer();
  auto client = make_client(options);
  auto got = client->get_token(token_id(1));
  REQUIRE(got.ok());
  CHECK(server.request_count() == 4);
  REQUIRE(observed.calls.size() == 4);
  CHECK(observed.calls[0] == std::make_pair(Operation::GetApiToken, 503));
  CHECK(observed.calls[3] == std::make_pair(Operation::GetApiToken, 200));
}

TEST_CASE("the observer is told how long each exchange took", "[astro]") {
  LocalServer server([](const RecordedRequest&) {
    Reply reply = answer(200, token_body(token_id(1)));
    reply.delay = std::chrono::milliseconds(150);
    return reply;
  });
  ObservedCalls observed;
  auto options = fast_options(server.url());
  options.observer = observed.observer();
  REQUIRE(make_client(options)->get_token(token_id(1)).ok());
  REQUIRE(observed.durations.size() == 1);
  CHECK(observed.durations[0] >= 0.15);
  CHECK(observed.durations[0] < 2.0);  // within the request timeout
}

TEST_CASE(
    "idempotent operations are retried after a dropped connection - create and rotate are "
    "Ambiguous",
    "[astro]") {
  std::atomic<int> seen{0};
  LocalServer server([&](const RecordedRequest& r) {
    Reply reply =
        answer(200, r.method == "POST" ? token_body(token_id(1), "v") : token_body(token_id(1)));
    if (++seen == 1) reply.drop = true;
    return reply;
  });
  auto client = make_client(fast_options(server.url()));

  SECTION("update is retried") {
    CHECK(client->update_token(token_id(1), {"n", ""}).ok());
    CHECK(server.request_count() == 2);
  }
  SECTION("create is not") {
    auto created = client->create_token(
        {"n", "", EntityType::Organization, "ORGANIZATION_MEMBER", "", std::nullopt});
    REQUIRE_FALSE(created.ok());
    CHECK(created.error().kind == ErrorKind::Ambiguous);
    CHECK(created.error().http_status == 0);
    CHECK(server.request_count() == 1);
  }
  SECTION("rotate is not") {
    auto rotated = client->rotate_token(token_id(1));
    REQUIRE_FALSE(rotated.ok());
    CHECK(rotated.error().kind == ErrorKind::Ambiguous);
    CHECK(server.request_count() == 1);
  }
}

TEST_CASE("a 5xx answer to create is Ambiguous and not retried - a 429 is retried", "[astro]") {
  std::atomic<int> seen{0};
  int first_status = GENERATE(500, 503, 429);
  LocalServer server([&](const RecordedRequest&) {
    if (++seen == 1)
      return answer(first_status, error_body("busy", "req-9", first_status),
                    {{"Retry-After", "0"}});
    return answer(200, token_body(token_id(1), "v"));
  });
  auto client = make_client(fast_options(server.url()));
  auto created = client->create_token(
      {"n", "", EntityType::Organization, "ORGANIZATION_MEMBER", "", std::nullopt});
  if (first_status == 429) {
    CHECK(created.ok());
    CHECK(server.request_count() == 2);
  } else {
    REQUIRE_FALSE(created.ok());
    CHECK(created.error().kind == ErrorKind::Ambiguous);
    CHECK(created.error().request_id == "req-9");
    CHECK(created.error().http_status == first_status);
    CHECK(server.request_count() == 1);
  }
}

TEST_CASE("a request that times out is retried when idempotent and Ambiguous otherwise",
          "[astro]") {
  std::atomic<int> seen{0};
  LocalServer server([&](const RecordedRequest& r) {
    Reply reply =
        answer(200, r.method == "POST" ? token_body(token_id(1), "v") : token_body(token_id(1)));
    if (++seen == 1) reply.delay = std::chrono::milliseconds(1000);
    return reply;
  });
  auto options = fast_options(server.url());
  options.request_timeout = std::chrono::milliseconds(250);
  auto client = make_client(options);
  SECTION("get") {
    CHECK(client->get_token(token_id(1)).ok());
    CHECK(server.request_count() == 2);
  }
  SECTION("create") {
    auto created = client->create_token(
        {"n", "", EntityType::Organization, "ORGANIZATION_MEMBER", "", std::nullopt});
    REQUIRE_FALSE(created.ok());
    CHECK(created.error().kind == ErrorKind::Ambiguous);
    CHECK(created.error().message.find("no answer within 250ms") != std::string::npos);
    CHECK(server.request_count() == 1);
  }
}

TEST_CASE("create is retried when the connection is refused - then Unavailable", "[astro]") {
  ObservedCalls observed;
  auto options = fast_options("http://127.0.0.1:" + std::to_string(closed_port()));
  options.observer = observed.observer();
  auto client = make_client(options);
  auto created = client->create_token(
      {"n", "", EntityType::Organization, "ORGANIZATION_MEMBER", "", std::nullopt});
  REQUIRE_FALSE(created.ok());
  CHECK(created.error().kind == ErrorKind::Unavailable);
  CHECK(created.error().message.find("cannot connect") != std::string::npos);
  CHECK(created.error().message.find("after 4 attempts") != std::string::npos);
  REQUIRE(observed.calls.size() == 4);
  for (const auto& call : observed.calls)
    CHECK(call == std::make_pair(Operation::CreateApiToken, 0));
}

TEST_CASE("a Retry-After beyond max_retry_after fails at once with RateLimited", "[astro]") {
  LocalServer server([](const RecordedRequest&) {
    return answer(429, error_body("slow down", "r", 429), {{"Retry-After", "3600"}});
  });
  auto client = make_client(fast_options(server.url()));
  auto got = client->get_token(token_id(1));
  REQUIRE_FALSE(got.ok());
  CHECK(got.error().kind == ErrorKind::RateLimited);
  CHECK(got.error().message.find("3600s") != std::string::npos);
  CHECK(server.request_count() == 1);
}

TEST_CASE("a DELETE answering 404 is NotFound and not retried", "[astro]") {
  LocalServer server(
      [](const RecordedRequest&) { return answer(404, error_body("not found", "r", 404)); });
  auto client = make_client(fast_options(server.url()));
  auto deleted = client->delete_token(token_id(1));
  REQUIRE_FALSE(deleted.ok());
  CHECK(deleted.error().kind == ErrorKind::NotFound);
  CHECK(server.request_count() == 1);
}

TEST_CASE("a non-JSON error answer is described by its status", "[astro]") {
  LocalServer server([](const RecordedRequest&) { return answer(403, "<html>nope</html>"); });
  auto client = make_client(fast_options(server.url()));
  auto got = client->get_token(token_id(1));
  REQUIRE_FALSE(got.ok());
  CHECK(got.error().kind == ErrorKind::Forbidden);
  CHECK(got.error().message == "GetApiToken: HTTP 403 Forbidden");
}

TEST_CASE("sequential requests reuse one connection - create and rotate open their own",
          "[astro]") {
  LocalServer server([](const RecordedRequest& r) {
    return answer(200, r.method == "POST" && r.path().find("/rotate") != std::string::npos
                           ? token_body(token_id(1), "v")
                           : token_body(token_id(1)));
  });
  auto client = make_client(fast_options(server.url()));
  for (int i = 0; i < 5; ++i) REQUIRE(client->get_token(token_id(1)).ok());
  CHECK(server.connections() == 1);
  REQUIRE(client->rotate_token(token_id(1)).ok());
  CHECK(server.connections() == 2);
  REQUIRE(client->get_token(token_id(1)).ok());  // the rotate's connection went back to the pool
  CHECK(server.connections() == 2);
}

TEST_CASE("close_idle_connections closes the pooled connections - the next request opens one",
          "[astro]") {
  LocalServer server([](const RecordedRequest&) { return answer(200, token_body(token_id(1))); });
  auto client = make_client(fast_options(server.url()));
  REQUIRE(client->get_token(token_id(1)).ok());
  REQUIRE(client->get_token(token_id(1)).ok());
  CHECK(server.connections() == 1);
  client->close_idle_connections();
  REQUIRE(client->get_token(token_id(1)).ok());
  CHECK(server.connections() == 2);
  REQUIRE(client->get_token(token_id(1)).ok());  // pooled again after that request
  CHECK(server.connections() == 2);
}

TEST_CASE("parallel callers share a bounded set of connections", "[astro]") {
  LocalServer server([](const RecordedRequest&) { return answer(200, token_body(token_id(1))); });
  auto client = make_client(fast_options(server.url()));
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i)
        if (!client->get_token(token_id(1)).ok()) ++failures;
    });
  for (auto& thread : threads) thread.join();
  CHECK(failures == 0);
  CHECK(server.request_count() == 100);
  CHECK(server.connections() <= 4);
}

TEST_CASE("the bearer token never reaches a log line or an error message", "[astro]") {
  // This server even echoes the credentials it got in its error message.
  std::atomic<int> seen{0};
  LocalServer server([&](const RecordedRequest& r) {
    if (++seen == 1) return answer(503, error_body("overloaded", "r", 503));
    return answer(401, error_body("bad credentials: " + r.header("Authorization"), "r", 401));
  });
  std::ostringstream log_text;
  Logger logger(log_text, LogLevel::Debug, LogFormat::Text);
  auto client = make_client(fast_options(server.url()), logger);
  auto got = client->get_token(token_id(1));
  REQUIRE_FALSE(got.ok());
  CHECK(got.error().kind == ErrorKind::Unauthorized);
  CHECK(server.request_count() == 2);  // one retry for the 503, none for the 401
  CHECK(got.error().describe().find(kBearer) == std::string::npos);
  CHECK(got.error().message.find("(sensitive value)") != std::string::npos);
  CHECK(log_text.str().find("astro api request") != std::string::npos);
  CHECK(log_text.str().find("retrying") != std::string::npos);
  CHECK(log_text.str().find(kBearer) == std::string::npos);
}

TEST_CASE("create() rejects unusable options with a clear error", "[astro]") {
  struct Row {
    std::string url;
    std::string org;
    ErrorKind kind;
    std::string says;
  };
  const std::vector<Row> rows = {
      {"ftp://example.com", kOrg, ErrorKind::Invalid, "must start with https:// or http://"},
      {"https://", kOrg, ErrorKind::Invalid, "has no host"},
      {"https://api.example.com?x=1", kOrg, ErrorKind::Invalid, "query"},
      {"https://api.example.com", "", ErrorKind::Invalid, "organization_id"},
  };
  for (const Row& row : rows) {
    HttpClientOptions options;
    options.api_url = row.url;
    options.organization_id = row.org;
    auto client = HttpClient::create(options, null_logger());
    INFO(row.url);
    REQUIRE_FALSE(client.ok());
    CHECK(client.error().kind == row.kind);
    CHECK(client.error().message.find(row.says) != std::string::npos);
  }
  HttpClientOptions options;
  options.organization_id = kOrg;
  options.ca_file = "/nonexistent/ca.pem";
  auto client = HttpClient::create(options, null_logger());
  REQUIRE_FALSE(client.ok());
  CHECK(client.error().kind == ErrorKind::Io);
  CHECK(client.error().message.find("/nonexistent/ca.pem") != std::string::npos);
}

TEST_CASE("api_url may carry a path prefix", "[astro]") {
  LocalServer server([](const RecordedRequest&) { return answer(200, token_body(token_id(1))); });
  auto client = make_client(fast_options(server.url() + "/proxy/"));
  REQUIRE(client->get_token(token_id(1)).ok());
  CHECK(server.requests().at(0).path() == "/proxy" + kTokens + "/" + token_id(1));
}

TEST_CASE("requests the contract forbids are refused locally and never sent", "[astro]") {
  LocalServer server(
      [](const RecordedRequest&) { return answer(200, token_body(token_id(1), "v")); });
  auto client = make_client(fast_options(server.url()));
  const std::string long_name(257, 'n');
  std::string multibyte_name;
  for (int i = 0; i < 256; ++i) multibyte_name += "\xc3\xa9";  // 256 characters, 512 bytes
  std::vector<Error> errors;
  for (int days : {0, 3651})
    errors.push_back(
        client->create_token({"n", "", EntityType::Organization, "ORGANIZATION_MEMBER", "", days})
            .error());
  errors.push_back(client->update_token(token_id(1), {"", ""}).error());
  errors.push_back(client->update_token(token_id(1), {long_name, ""}).error());
  errors.push_back(client->update_token(token_id(1), {"n", std::string(501, 'd')}).error());
  errors.push_back(client->update_token_roles(token_id(1), {}).error());
  errors.push_back(client->get_token("").error());
  for (const Error& error : errors) {
    INFO(error.message);
    CHECK(error.kind == ErrorKind::Invalid);
    CHECK(error.http_status == 0);
  }
  CHECK(server.request_count() == 0);
  CHECK(client->update_token(token_id(1), {multibyte_name, std::string(500, 'd')}).ok());
  CHECK(client->create_token({"n", "", EntityType::Organization, "ORGANIZATION_MEMBER", "", 3650})
            .ok());
  CHECK(server.request_count() == 2);
}

TEST_CASE("a back-off or a Retry-After wait ends at once when stop is raised", "[astro]") {
  const bool rate_limited = GENERATE(true, false);
  LocalServer server([&](const RecordedRequest&) {
    return rate_limited
               ? answer(429, error_body("slow down", "req-1", 429), {{"Retry-After", "30"}})
               : answer(503, error_body("busy", "req-2", 503));
  });
  std::atomic<bool> stop{false};
  auto options = fast_options(server.url());
  options.retry.base_delay = std::chrono::milliseconds(30000);
  options.retry.max_delay = std::chrono::milliseconds(30000);
  options.retry.max_retry_after = std::chrono::milliseconds(60000);
  options.stop = &stop;
  auto client = make_client(options);
  std::thread stopper([&] {
    while (server.request_count() < 1) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    stop = true;
  });
  const auto start = std::chrono::steady_clock::now();
  auto listed = client->list_tokens();
  const auto took = std::chrono::steady_clock::now() - start;
  stopper.join();
  REQUIRE_FALSE(listed.ok());
  CHECK(listed.error().kind == ErrorKind::Unavailable);
  CHECK(listed.error().message == "ListApiTokens: not sent, shutting down");
  CHECK(took < std::chrono::milliseconds(1000));
  // (Full jitter may make the first back-off short enough for a second try.)
  CHECK(server.request_count() <= 2);
}

TEST_CASE("status line and headers trickling in end at the request deadline", "[astro]") {
  // A byte every 50 ms: each read succeeds at once, the headers alone would
  // take several seconds.
  LocalServer server([&](const RecordedRequest& r) {
    Reply reply =
        answer(200, r.method == "POST" ? token_body(token_id(1), "v") : token_body(token_id(1)));
    reply.trickle = std::chrono::milliseconds(50);
    return reply;
  });
  auto options = fast_options(server.url());
  options.request_timeout = std::chrono::milliseconds(600);
  options.retry.max_attempts = 1;
  auto client = make_client(options);
  const auto start = std::chrono::steady_clock::now();
  const bool create = GENERATE(false, true);
  Result<ApiToken> result = create ? client->create_token({"n", "", EntityType::Organization,
                                                           "ORGANIZATION_MEMBER", "", std::nullopt})
                                   : client->get_token(token_id(1));
  const auto took = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(result.ok());
  INFO(result.error().message);
  CHECK(result.error().kind == (create ? ErrorKind::Ambiguous : ErrorKind::Unavailable));
  CHECK(result.error().message.find("no answer within 600ms") != std::string::npos);
  CHECK(took >= std::chrono::milliseconds(550));
  CHECK(took < std::chrono::milliseconds(1500));
  CHECK(server.request_count() == 1);
}

TEST_CASE(
    "an exchange in flight when stop is raised is cut - a read at once, a write after its grace",
    "[astro]") {
  // Answers come 4 s late, or, with `soon`, 300 ms after the request.
  std::atomic<bool> soon{false};
  LocalServer server([&](const RecordedRequest& r) {
    Reply reply =
        answer(200, r.method == "POST" ? token_body(token_id(1), "v") : token_body(token_id(1)));
    reply.delay = std::chrono::milliseconds(soon ? 300 : 4000);
    return reply;
  });
  std::atomic<bool> stop{false};
  auto options = fast_options(server.url());
  options.request_timeout = std::chrono::milliseconds(8000);
  options.stop = &stop;
  auto client = make_client(options);
  // Raises stop 100 ms after the server saw the request.
  std::chrono::steady_clock::time_point stopped_at;
  std::thread stopper([&] {
    while (server.request_count() < 1) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    stopped_at = std::chrono::steady_clock::now();
    stop = true;
  });
  const auto create = [&] {
    return client->create_token(
        {"n", "", EntityType::Organization, "ORGANIZATION_MEMBER", "", std::nullopt});
  };
  SECTION("a GET is cut at once and not retried") {
    auto got = client->get_token(token_id(1));
    const auto after_stop = std::chrono::steady_clock::now() - stopped_at;
    stopper.join();
    REQUIRE_FALSE(got.ok());
    CHECK(got.error().kind == ErrorKind::Unavailable);
    CHECK(got.error().message == "GetApiToken: cut short by shutdown");
    CHECK(after_stop < std::chrono::milliseconds(200));
    CHECK(server.request_count() == 1);
  }
  SECTION("a create waits for its grace, then is Ambiguous") {
    auto created = create();
    const auto after_stop = std::chrono::steady_clock::now() - stopped_at;
    stopper.join();
    REQUIRE_FALSE(created.ok());
    CHECK(created.error().kind == ErrorKind::Ambiguous);
    CHECK_THAT(created.error().message,
               Catch::Contains("the request may have taken effect: cut short by shutdown"));
    CHECK(after_stop >=
          tokend::astro::RequestWatch::kWriteGraceOnStop - std::chrono::milliseconds(20));
    CHECK(after_stop <
          tokend::astro::RequestWatch::kWriteGraceOnStop + std::chrono::milliseconds(200));
    CHECK(server.request_count() == 1);
  }
  SECTION("a create answered within its grace succeeds") {
    soon = true;
    auto created = create();
    stopper.join();
    REQUIRE(created.ok());
    CHECK(created.value().token.reveal() == "v");
  }
}

TEST_CASE("an answer over max_response_bytes is an error naming the cap and is not retried",
          "[astro]") {
  const bool declared = GENERATE(true, false);
  std::string page = "{\"tokens\":[";
  for (int i = 1; i <= 40; ++i) page += (i > 1 ? "," : "") + token_body(token_id(i));
  page += "],\"totalCount\":40,\"offset\":0,\"limit\":1000}";
  LocalServer server([&](const RecordedRequest&) {
    Reply reply = answer(200, page);
    reply.chunked = !declared;
    return reply;
  });
  auto options = fast_options(server.url());
  options.max_response_bytes = 4096;
  auto client = make_client(options);
  auto listed = client->list_tokens();
  INFO(page.size());
  REQUIRE(page.size() > 4096);
  REQUIRE_FALSE(listed.ok());
  CHECK(listed.error().message ==
        "ListApiTokens: the answer is larger than max_response_bytes (4096 bytes)");
  CHECK(server.request_count() == 1);

  // A create whose answer is too large may have taken effect.
  auto created = client->create_token(
      {"n", "", EntityType::Organization, "ORGANIZATION_MEMBER", "", std::nullopt});
  REQUIRE_FALSE(created.ok());
  CHECK(created.error().kind == ErrorKind::Ambiguous);
  CHECK(created.error().message.find("larger than max_response_bytes (4096 bytes)") !=
        std::string::npos);
}
