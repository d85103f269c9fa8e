// Fault rules, rate limits and the request log of astro-api-sim, in process.
#include <catch2/catch.hpp>

#include "sim/controls.h"

using namespace tokend;
using namespace tokend::sim;

namespace {

FaultRule rule(std::string operation) {
  FaultRule r;
  r.operation = std::move(operation);
  return r;
}

}  // namespace

TEST_CASE("fault plans round-trip through JSON", "[sim]") {
  FaultRule counted = rule("GetApiToken");
  counted.status = 503;
  counted.count = 3;
  counted.retry_after = 1;
  FaultRule rated = rule("*");
  rated.status = 500;
  rated.rate = 0.25;
  rated.latency_ms = 40;
  FaultRule dropped = rule("CreateApiToken");
  dropped.drop_count = 1;
  dropped.drop_when = DropWhen::After;
  FaultRule lossy = rule("ListApiTokens");
  lossy.drop_rate = 0.5;
  FaultPlan plan{{counted, rated, dropped, lossy}, 7};
  auto decoded = decode_fault_plan(encode_fault_plan(plan));
  REQUIRE(decoded.ok());
  CHECK(*decoded == plan);

  FaultPlan unseeded{{counted}, std::nullopt};
  auto again = decode_fault_plan(encode_fault_plan(unseeded));
  REQUIRE(again.ok());
  CHECK(*again == unseeded);
}

TEST_CASE("fault plans are validated with messages naming the field", "[sim]") {
  struct Case {
    std::string body;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"[]", "body must be a JSON object"},
      {"{", "body is not valid JSON"},
      {R"({})", "missing required field rules"},
      {R"({"rules":{}})", "rules must be an array"},
      {R"({"rules":[],"extra":1})", "unknown field extra"},
      {R"({"rules":[5]})", "rules[0] must be an object"},
      {R"({"rules":[{"operation":"Nope","status":500}]})",
       "rules[0].operation: unknown operation Nope"},
      {R"({"rules":[{"status":200}]})", "rules[0].status must be between 400 and 599"},
      {R"({"rules":[{"status":500,"rate":1.5}]})", "rules[0].rate must be between 0 and 1"},
      {R"({"rules":[{"status":500,"count":-1}]})", "rules[0].count must be between 0 and 1000000"},
      {R"({"rules":[{"count":2}]})", "rules[0]: rate, count and retryAfter need a status"},
      {R"({"rules":[{"dropWhen":"after"}]})", "rules[0]: dropWhen needs dropRate or dropCount"},
      {R"({"rules":[{"dropCount":1,"dropWhen":"later"}]})",
       "rules[0].dropWhen must be \"before\" or \"after\""},
      {R"({"rules":[{"operation":"*"}]})",
       "rules[0]: a rule needs a status, latencyMs, dropRate or dropCount"},
      {R"({"rules":[{"status":500,"colour":"red"}]})", "rules[0]: unknown field colour"},
      {R"({"rules":[{"latencyMs":"slow"}]})", "rules[0].latencyMs must be an integer"},
  };
  for (const Case& c : cases) {
    INFO(c.body);
    auto plan = decode_fault_plan(c.body);
    REQUIRE_FALSE(plan.ok());
    CHECK(plan.error().kind == ErrorKind::Invalid);
    CHECK(plan.error().message.starts_with(c.message));
  }
  auto always = decode_fault_plan(R"({"rules":[{"operation":"GetApiToken","status":502}]})");
  REQUIRE(always.ok());
  CHECK(always->rules[0].rate == 1);
}

TEST_CASE("fault decisions consume counts - add latencies and prefer drops", "[sim]") {
  FaultInjector faults;
  FaultRule twice = rule("GetApiToken");
  twice.status = 503;
  twice.count = 2;
  twice.retry_after = 3;
  FaultRule slow = rule("*");
  slow.latency_ms = 10;
  FaultRule slower = rule("GetApiToken");
  slower.latency_ms = 5;
  faults.set({{twice, slow, slower}, 1});

  FaultDecision first = faults.decide("GetApiToken");
  CHECK(first.status == 503);
  CHECK(first.retry_after == 3);
  CHECK(first.latency_ms == 15);
  CHECK_FALSE(first.drop);
  CHECK(faults.decide("ListApiTokens").status == 0);
  CHECK(faults.decide("ListApiTokens").latency_ms == 10);
  CHECK(faults.current().rules.size() == 3);
  CHECK(faults.current().rules.front().count == 1);
  CHECK(faults.decide("GetApiToken").status == 503);
  CHECK(faults.current().rules.size() == 2);  // the spent status rule is gone
  FaultDecision third = faults.decide("GetApiToken");
  CHECK(third.status == 0);
  CHECK(third.latency_ms == 15);

  FaultRule drop = rule("CreateApiToken");
  drop.drop_count = 1;
  drop.drop_when = DropWhen::After;
  FaultRule fail = rule("CreateApiToken");
  fail.status = 500;
  fail.count = 5;
  faults.set({{drop, fail}, std::nullopt});
  FaultDecision dropped = faults.decide("CreateApiToken");
  CHECK(dropped.drop == DropWhen::After);
  CHECK(dropped.status == 0);
  CHECK(faults.decide("CreateApiToken").status == 500);
  CHECK(faults.current().rules.front().count == 4);
  faults.clear();
  CHECK(faults.current().rules.empty());
  CHECK(faults.decide("CreateApiToken").status == 0);
}

TEST_CASE("fault rates follow the random seed", "[sim]") {
  FaultRule half = rule("*");
  half.status = 500;
  half.rate = 0.5;
  auto run = [&](uint64_t seed) {
    FaultInjector faults;
    faults.set({{half}, seed});
    std::string pattern;
    for (int i = 0; i < 64; ++i) pattern += faults.decide("GetApiToken").status ? 'x' : '.';
    return pattern;
  };
  CHECK(run(9) == run(9));
  CHECK(run(9) != run(10));
  std::string pattern = run(9);
  auto failures = std::count(pattern.begin(), pattern.end(), 'x');
  CHECK(failures > 10);
  CHECK(failures < 54);
}

TEST_CASE("rate limit specs parse with defaults and clear errors", "[sim]") {
  auto all = parse_rate_limits("get=25,post=10,delete=5");
  REQUIRE(all.ok());
  CHECK(*all == RateLimits{25, 10, 5});
  auto partial = parse_rate_limits("post=2.5");
  REQUIRE(partial.ok());
  CHECK(*partial == RateLimits{25, 2.5, 5});
  for (const char* bad :
       {"", "get", "get=", "get=0", "get=-1", "get=abc", "put=3", "get=1,get=2", "get=1,"}) {
    INFO(bad);
    CHECK_FALSE(parse_rate_limits(bad).ok());
  }
  CHECK(parse_rate_limits("get=1,get=2").error().message == "rate limit for get given twice");
}

TEST_CASE("token buckets: a burst of one second - then Retry-After", "[sim]") {
  using std::chrono::milliseconds;
  RateLimiter limiter(RateLimits{4, 2, 1});
  auto t0 = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  for (int i = 0; i < 4; ++i) CHECK_FALSE(limiter.admit("GET", t0));
  auto wait = limiter.admit("GET", t0);
  REQUIRE(wait);
  CHECK(*wait == 1);
  CHECK_FALSE(limiter.admit("POST", t0));  // separate buckets
  CHECK_FALSE(limiter.admit("PATCH", t0));
  CHECK(limiter.admit("PUT", t0));
  CHECK_FALSE(limiter.admit("DELETE", t0));
  auto delete_wait = limiter.admit("DELETE", t0 + milliseconds(100));
  REQUIRE(delete_wait);
  CHECK(*delete_wait == 1);
  CHECK_FALSE(limiter.admit("GET", t0 + milliseconds(250)));  // one token refilled
  CHECK(limiter.admit("GET", t0 + milliseconds(260)));
  CHECK_FALSE(limiter.admit("DELETE", t0 + milliseconds(1100)));

  // Below one request per second the burst is still one request.
  RateLimiter slow(RateLimits{0.25, 10, 5});
  CHECK_FALSE(slow.admit("GET", t0));
  auto slow_wait = slow.admit("GET", t0);
  REQUIRE(slow_wait);
  CHECK(*slow_wait == 4);

  RateLimiter unlimited(std::nullopt);
  for (int i = 0; i < 1000; ++i) REQUIRE_FALSE(unlimited.admit("GET", t0));
}

TEST_CASE("the request log counts by operation and status and keeps order", "[sim]") {
  RequestLog log(3);
  log.record({0, "GET", "/a", "limit=1000", "ListApiTokens", 200});
  log.record({0, "GET", "/a", "", "ListApiTokens", 503});
  log.record({0, "POST", "/b", "", "CreateApiToken", 0});
  log.record({0, "POST", "/b", "", "CreateApiToken", 200});
  std::string json = log.encode(true);
  CHECK(json.starts_with(
      R"({"total":4,"counts":{"CreateApiToken":2,"ListApiTokens":2},)"
      R"("statusCounts":{"CreateApiToken":{"0":1,"200":1},"ListApiTokens":{"200":1,"503":1}},)"
      R"("requests":[{"seq":2,)"));
  CHECK(json.find(R"("seq":1)") == std::string::npos);  // beyond the capacity
  CHECK(
      json.find(
          R"({"seq":4,"method":"POST","path":"/b","query":"","operation":"CreateApiToken","status":200})") !=
      std::string::npos);
  CHECK(log.encode(false).find("requests") == std::string::npos);
  log.reset();
  CHECK(log.encode(true) == R"({"total":0,"counts":{},"statusCounts":{},"requests":[]})");
}
