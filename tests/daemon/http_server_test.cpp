#include <catch2/catch.hpp>

#include <atomic>

#include "daemon/http_server.h"
#include "support/http.h"

using namespace tokend::daemon;
using tokend::testing::http_request;

TEST_CASE("the health server serves metrics - liveness and readiness", "[daemon][http]") {
  std::atomic<bool> ready{false};
  HealthEndpoints endpoints;
  endpoints.metrics = [] {
    return std::string("# HELP x_total X.\n# TYPE x_total counter\nx_total 1\n");
  };
  endpoints.readiness = [&ready] {
    return ready ? Readiness{true, "ok"} : Readiness{false, "no reconcile cycle has succeeded yet"};
  };
  auto server = HealthServer::start("127.0.0.1:0", endpoints);
  REQUIRE(server.ok());
  const std::string& address = (*server)->address();
  REQUIRE(address.rfind("127.0.0.1:", 0) == 0);
  CHECK(address != "127.0.0.1:0");
  const std::string origin = "http://" + address;

  auto metrics = http_request({"GET", origin + "/metrics", {}, ""});
  CHECK(metrics.status == 200);
  CHECK(metrics.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(metrics.body == "# HELP x_total X.\n# TYPE x_total counter\nx_total 1\n");

  auto health = http_request({"GET", origin + "/healthz", {}, ""});
  CHECK(health.status == 200);
  CHECK(health.body == "ok\n");

  auto unready = http_request({"GET", origin + "/readyz", {}, ""});
  CHECK(unready.status == 503);
  CHECK(unready.body == "no reconcile cycle has succeeded yet\n");
  ready = true;
  auto now_ready = http_request({"GET", origin + "/readyz", {}, ""});
  CHECK(now_ready.status == 200);
  CHECK(now_ready.body == "ok\n");

  CHECK(http_request({"GET", origin + "/nope", {}, ""}).status == 404);
  CHECK(http_request({"GET", origin + "/", {}, ""}).status == 404);  // no status page given
  CHECK(http_request({"GET", origin + "/status.json", {}, ""}).status == 404);
  auto post = http_request({"POST", origin + "/metrics", {}, "{}"});
  CHECK(post.status == 405);
  CHECK(post.header("Allow") == "GET, HEAD");
}

TEST_CASE("the health server reports an address it cannot use", "[daemon][http]") {
  auto first = HealthServer::start(
      "127.0.0.1:0", {[] { return std::string(); }, [] { return Readiness{}; }, {}, {}});
  REQUIRE(first.ok());
  auto taken = HealthServer::start(
      (*first)->address(), {[] { return std::string(); }, [] { return Readiness{}; }, {}, {}});
  REQUIRE_FALSE(taken.ok());
  CHECK(taken.error().kind == tokend::ErrorKind::Io);
  CHECK(taken.error().message.find("cannot serve on " + (*first)->address()) == 0);

  auto bad = HealthServer::start(
      "not an address", {[] { return std::string(); }, [] { return Readiness{}; }, {}, {}});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().kind == tokend::ErrorKind::Invalid);
}

TEST_CASE("the status page and its JSON are served with headers that allow no script",
          "[daemon][http]") {
  HealthEndpoints endpoints;
  endpoints.metrics = [] { return std::string(); };
  endpoints.readiness = [] { return Readiness{true, "ok"}; };
  endpoints.status_html = [] { return std::string("<!DOCTYPE html>\n<p>hello</p>\n"); };
  endpoints.status_json = [] { return std::string("{\"tokens\": []}\n"); };
  auto server = HealthServer::start("127.0.0.1:0", endpoints);
  REQUIRE(server.ok());
  const std::string origin = "http://" + (*server)->address();

  auto page = http_request({"GET", origin + "/", {}, ""});
  CHECK(page.status == 200);
  CHECK(page.header("Content-Type") == "text/html; charset=utf-8");
  CHECK(page.header("Content-Security-Policy") ==
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'");
  CHECK(page.header("X-Content-Type-Options") == "nosniff");
  CHECK(page.header("Cache-Control") == "no-store");
  CHECK(page.body == "<!DOCTYPE html>\n<p>hello</p>\n");

  auto json = http_request({"GET", origin + "/status.json", {}, ""});
  CHECK(json.status == 200);
  CHECK(json.header("Content-Type") == "application/json");
  CHECK(json.body == "{\"tokens\": []}\n");
  CHECK(http_request({"POST", origin + "/", {}, ""}).status == 405);
}
