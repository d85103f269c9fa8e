// astro-api-sim fault injection and rate limits over real HTTP.
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "astro/json.h"
#include "support/http.h"
#include "support/sim.h"

using namespace tokend;
using namespace tokend::testing;

namespace {

SimOptions options_with_limits(const std::string& spec) {
  SimOptions options;
  options.rate_limits = true;
  options.rate_limits_spec = spec;
  options.serve_v1beta1 = true;
  return options;
}

SimOptions no_limits() {
  SimOptions options;
  options.rate_limits = false;
  options.serve_v1beta1 = true;
  return options;
}

std::string org_token_body(const std::string& name) {
  return astro::json::encode_create_request(
      {name, "", EntityType::Organization, "ORGANIZATION_MEMBER", "", std::nullopt});
}

std::string tokens_path(const SimProcess& sim) {
  return "/iam/v1beta1/organizations/" + sim.org_id() + "/tokens";
}

using SteadyClock = std::chrono::steady_clock;

long long millis_since(SteadyClock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start).count();
}

}  // namespace

TEST_CASE("an injected status answers the next N matching requests - then goes", "[sim]") {
  SimProcess sim(no_limits());
  SimControl control = sim.control();
  auto set =
      control.set_faults({fail_next("ListApiTokens", 503, 3), fail_next("GetApiToken", 429, 1, 2)});
  REQUIRE(set.rules.size() == 2);

  for (int i = 0; i < 3; ++i) {
    HttpResponse r = sim.api("GET", tokens_path(sim));
    CHECK(r.status == 503);
    auto error = astro::json::decode_error(r.body);
    REQUIRE(error);
    CHECK(error->status_code == 503);
    CHECK_FALSE(r.header("Retry-After"));
  }
  CHECK(sim.api("GET", tokens_path(sim)).status == 200);

  HttpResponse limited = sim.api("GET", tokens_path(sim) + "/cabc");
  CHECK(limited.status == 429);
  CHECK(limited.header("Retry-After") == "2");
  CHECK(sim.api("GET", tokens_path(sim) + "/cabc").status == 404);

  CHECK(control.faults().rules.empty());
  RequestStats stats = control.requests();
  CHECK(stats.total == 6);
  CHECK(stats.count("ListApiTokens") == 4);
  CHECK(stats.count("ListApiTokens", 503) == 3);
  CHECK(stats.count("ListApiTokens", 200) == 1);
  CHECK(stats.count("GetApiToken", 429) == 1);
  REQUIRE(stats.requests.size() == 6);
  CHECK(stats.requests[0].seq == 1);
  CHECK(stats.requests[0].status == 503);
  CHECK(stats.requests[3].status == 200);
  CHECK(stats.requests[5].operation == "GetApiToken");
  CHECK(stats.requests[5].method == "GET");
  CHECK(stats.requests[5].path == tokens_path(sim) + "/cabc");

  control.reset_requests();
  CHECK(control.requests().total == 0);
}

TEST_CASE("a rate of failures is reproducible with a random seed", "[sim]") {
  SimProcess sim(no_limits());
  SimControl control = sim.control();
  auto pattern = [&] {
    control.set_faults({fail_rate("*", 500, 0.5)}, 42);
    std::string statuses;
    for (int i = 0; i < 40; ++i)
      statuses += sim.api("GET", tokens_path(sim)).status == 500 ? 'x' : '.';
    return statuses;
  };
  std::string first = pattern();
  std::string second = pattern();
  CHECK(first == second);
  auto failures = std::count(first.begin(), first.end(), 'x');
  CHECK(failures > 5);
  CHECK(failures < 35);
  control.clear_faults();
  CHECK(sim.api("GET", tokens_path(sim)).status == 200);
}

TEST_CASE("injected latency delays the answer after the operation took effect", "[sim]") {
  SimProcess sim(no_limits());
  SimControl control = sim.control();
  control.set_faults({add_latency("CreateApiToken", 1500)});

  auto start = SteadyClock::now();
  CHECK(sim.api("GET", tokens_path(sim)).status == 200);
  CHECK(millis_since(start) < 1500);

  // A client that gives up first sees a timeout, yet the token exists.
  HttpOptions impatient;
  impatient.timeout = std::chrono::milliseconds(300);
  start = SteadyClock::now();
  HttpResponse r = http_request({"POST", sim.base_url() + tokens_path(sim),
                                 bearer_header(sim.bearer_token()), org_token_body("slow")},
                                impatient);
  CHECK(r.status == 0);
  CHECK(r.timed_out);
  CHECK(millis_since(start) < 1500);
  REQUIRE(control.tokens().size() == 1);
  CHECK(control.tokens()[0].name == "slow");

  start = SteadyClock::now();
  CHECK(sim.api("POST", tokens_path(sim), org_token_body("patient")).status == 200);
  CHECK(millis_since(start) >= 1500);
}

TEST_CASE("dropped connections - before and after the operation", "[sim]") {
  SimProcess sim(no_limits());
  SimControl control = sim.control();

  SECTION("before: nothing happened and no answer came") {
    control.set_faults({drop_next("CreateApiToken", 1, sim::DropWhen::Before)});
    HttpResponse r = sim.api("POST", tokens_path(sim), org_token_body("lost"));
    CHECK(r.status == 0);
    CHECK_FALSE(r.error.empty());
    CHECK(control.tokens().empty());
    CHECK(control.issued_values().empty());
  }
  SECTION("after: the token IS created but the answer is lost") {
    control.set_faults({drop_next("CreateApiToken", 1, sim::DropWhen::After)});
    HttpResponse r = sim.api("POST", tokens_path(sim), org_token_body("created anyway"));
    CHECK(r.status == 0);
    REQUIRE(control.tokens().size() == 1);
    CHECK(control.tokens()[0].name == "created anyway");
    CHECK(control.issued_values().size() == 1);
  }
  SECTION("a keep-alive connection that was dropped is not reused") {
    HttpConnection connection(sim.base_url());
    CHECK(
        connection.request("GET", tokens_path(sim), "", bearer_header(sim.bearer_token())).status ==
        200);
    control.set_faults({drop_next("ListApiTokens", 1)});
    CHECK(
        connection.request("GET", tokens_path(sim), "", bearer_header(sim.bearer_token())).status ==
        0);
    CHECK(
        connection.request("GET", tokens_path(sim), "", bearer_header(sim.bearer_token())).status ==
        200);
  }
  RequestStats stats = control.requests();
  CHECK(stats.count("CreateApiToken", 0) + stats.count("ListApiTokens", 0) == 1);
  // The next request is answered normally.
  CHECK(sim.api("POST", tokens_path(sim), org_token_body("fine")).status == 200);
}

TEST_CASE("fault rules apply to API routes only and are validated", "[sim]") {
  SimProcess sim(no_limits());
  SimControl control = sim.control();
  control.set_faults({fail_rate("*", 500, 1.0), drop_next("*", 5), add_latency("*", 2000)});
  auto start = SteadyClock::now();
  CHECK(control.healthy());
  CHECK(control.tokens().empty());
  CHECK(control.requests().total == 0);
  CHECK(millis_since(start) < 2000);

  HttpResponse bad = http_request({"PUT",
                                   sim.base_url() + "/_sim/faults",
                                   {},
                                   R"({"rules":[{"operation":"GetToken","status":503}]})"});
  CHECK(bad.status == 400);
  auto error = astro::json::decode_error(bad.body);
  REQUIRE(error);
  CHECK(error->message == "rules[0].operation: unknown operation GetToken");
  HttpResponse useless =
      http_request({"PUT", sim.base_url() + "/_sim/faults", {}, R"({"rules":[{}]})"});
  CHECK(useless.status == 400);
  // A rejected plan leaves the previous one in place.
  CHECK(control.faults().rules.size() == 3);
}

TEST_CASE("rate limits answer 429 with Retry-After per method", "[sim]") {
  SimProcess sim(options_with_limits("get=5,post=2,delete=1"));
  int first_limited = -1;
  HttpResponse limited;
  for (int i = 0; i < 50 && first_limited < 0; ++i) {
    HttpResponse r = sim.api("GET", tokens_path(sim));
    if (r.status == 429) {
      first_limited = i;
      limited = r;
    } else {
      REQUIRE(r.status == 200);
    }
  }
  REQUIRE(first_limited >= 5);  // the burst is one second's worth
  auto retry_after = limited.header("Retry-After");
  REQUIRE(retry_after);
  CHECK(std::stoi(*retry_after) >= 1);
  auto error = astro::json::decode_error(limited.body);
  REQUIRE(error);
  CHECK(error->status_code == 429);

  // Other methods have their own buckets; /_sim/ is not limited at all.
  CHECK(sim.api("POST", tokens_path(sim), org_token_body("post")).status == 200);
  for (int i = 0; i < 20; ++i) REQUIRE(sim.control().healthy());

  // Waiting as told is enough.
  auto start = SteadyClock::now();
  int status = 429;
  while (status == 429 && millis_since(start) < 5000) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    status = sim.api("GET", tokens_path(sim)).status;
  }
  CHECK(status == 200);
  CHECK(millis_since(start) <= std::stoi(*retry_after) * 1000 + 500);
  CHECK(sim.control().requests().count("ListApiTokens", 429) >= 1);
}

TEST_CASE("the published limits apply by default and --no-rate-limits lifts them", "[sim]") {
  SECTION("default: get=25 per second") {
    SimOptions options;
    options.serve_v1beta1 = true;
    SimProcess sim(options);
    int limited = 0;
    for (int i = 0; i < 200 && limited == 0; ++i)
      if (sim.api("GET", tokens_path(sim)).status == 429) limited = i;
    CHECK(limited >= 25);
  }
  SECTION("--no-rate-limits") {
    SimProcess sim(no_limits());
    HttpConnection connection(sim.base_url());
    int limited = 0;
    for (int i = 0; i < 300; ++i)
      if (connection.request("GET", tokens_path(sim), "", bearer_header(sim.bearer_token()))
              .status != 200)
        ++limited;
    CHECK(limited == 0);
  }
}
