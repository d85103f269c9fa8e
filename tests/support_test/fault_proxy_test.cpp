// The fault-injecting proxy of the tests (tests/support/fault_proxy.h), in
// front of the real astro-api-sim.
#include <catch2/catch.hpp>

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>

#include <atomic>
#include <chrono>
#include <istream>

#include "astro/json.h"
#include "support/fault_proxy.h"
#include "support/http.h"
#include "support/sim.h"

using namespace tokend;
using namespace tokend::testing;

namespace {

using SteadyClock = std::chrono::steady_clock;

SimOptions no_limits() {
  SimOptions options;
  options.rate_limits = false;
  options.serve_v1beta1 = true;
  return options;
}

std::string tokens_path(const SimProcess& sim) {
  return "/iam/v1beta1/organizations/" + sim.org_id() + "/tokens";
}

std::string create_body(const std::string& name) {
  return astro::json::encode_create_request(
      {name, "", EntityType::Organization, "ORGANIZATION_MEMBER", "", std::nullopt});
}

// A request through the proxy with the simulator's bearer token.
HttpResponse via(const FaultProxy& proxy, const SimProcess& sim, const std::string& method,
                 const std::string& target, const std::string& body = "") {
  HttpRequest request;
  request.method = method;
  request.url = proxy.url() + target;
  request.headers = bearer_header(sim.bearer_token());
  request.body = body;
  HttpOptions options;
  options.timeout = std::chrono::milliseconds(20000);
  return http_request(request, options);
}

astro::json::TokenPage page_of(const HttpResponse& response) {
  INFO(response.status << " " << response.error << " " << response.body);
  REQUIRE(response.status == 200);
  auto page = astro::json::decode_token_page(response.body);
  REQUIRE(page.ok());
  return *page;
}

std::vector<std::string> ids(const astro::json::TokenPage& page) {
  std::vector<std::string> out;
  for (const auto& token : page.tokens) out.push_back(token.id);
  return out;
}

void seed_tokens(const SimProcess& sim, int count) {
  sim::NewToken templ;
  templ.request = {"seeded", "", EntityType::Organization, "ORGANIZATION_MEMBER", "", std::nullopt};
  REQUIRE(sim.control().create_tokens(templ, count).ids.size() == static_cast<size_t>(count));
}

long long millis_since(SteadyClock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start).count();
}

}  // namespace

TEST_CASE("fault proxy: without rules it forwards requests and answers unchanged", "[proxy]") {
  SimProcess sim(no_limits());
  FaultProxy proxy(sim.base_url());
  seed_tokens(sim, 3);

  HttpResponse created = via(proxy, sim, "POST", tokens_path(sim), create_body("through proxy"));
  REQUIRE(created.status == 200);
  auto token = astro::json::decode_token(created.body);
  REQUIRE(token.ok());
  CHECK(token->name == "through proxy");
  CHECK_FALSE(token->token.empty());

  const auto direct = page_of(sim.api("GET", tokens_path(sim) + "?offset=0&limit=10"));
  const auto proxied = page_of(via(proxy, sim, "GET", tokens_path(sim) + "?offset=0&limit=10"));
  CHECK(ids(proxied) == ids(direct));
  CHECK(proxied.total_count == 4);

  // Without the bearer token the simulator refuses, and the proxy passes that on.
  HttpRequest anonymous;
  anonymous.url = proxy.url() + tokens_path(sim);
  CHECK(http_request(anonymous).status == 401);

  REQUIRE(proxy.requests().size() == 3);
  CHECK(proxy.requests()[0].method == "POST");
  CHECK(proxy.requests()[1].target == tokens_path(sim) + "?offset=0&limit=10");
  CHECK(proxy.requests()[1].faults.empty());
  CHECK(proxy.request_count(tokens_path(sim)) == 3);
}

TEST_CASE("fault proxy: a rule applies to the requests its match selects, or to the Nth",
          "[proxy]") {
  SimProcess sim(no_limits());
  FaultProxy proxy(sim.base_url());
  seed_tokens(sim, 3);
  proxy.set_rules({lie_total_count(token_listing(sim.org_id(), 2), 77)});

  // GetApiToken and a POST are not listings: they do not count.
  CHECK(via(proxy, sim, "GET", tokens_path(sim) + "/cnosuchtoken").status == 404);
  CHECK(via(proxy, sim, "POST", tokens_path(sim), create_body("x")).status == 200);
  CHECK(page_of(via(proxy, sim, "GET", tokens_path(sim))).total_count == 4);
  CHECK(page_of(via(proxy, sim, "GET", tokens_path(sim))).total_count == 77);
  CHECK(page_of(via(proxy, sim, "GET", tokens_path(sim))).total_count == 4);

  const auto log = proxy.requests();
  REQUIRE(log.size() == 5);
  CHECK(log[2].faults.empty());
  REQUIRE(log[3].faults.size() == 1);
  CHECK(log[3].faults[0] == ProxyFault::LieTotalCount);

  // New rules start counting again; every selected request when nth is 0.
  proxy.set_rules({lie_total_count(any_request(tokens_path(sim)), 1)});
  CHECK(page_of(via(proxy, sim, "GET", tokens_path(sim))).total_count == 1);
  CHECK(page_of(via(proxy, sim, "GET", tokens_path(sim))).total_count == 1);
  proxy.clear_rules();
  CHECK(page_of(via(proxy, sim, "GET", tokens_path(sim))).total_count == 4);
}

TEST_CASE("fault proxy: repeated and short pages rewrite what the simulator is asked", "[proxy]") {
  SimProcess sim(no_limits());
  FaultProxy proxy(sim.base_url());
  seed_tokens(sim, 5);
  const auto first = page_of(sim.api("GET", tokens_path(sim) + "?offset=0&limit=2"));
  REQUIRE(first.tokens.size() == 2);

  proxy.set_rules({repeat_page(token_listing(sim.org_id()))});
  for (const char* offset : {"2", "4", "1000"}) {
    const auto repeated =
        page_of(via(proxy, sim, "GET", tokens_path(sim) + "?offset=" + offset + "&limit=2"));
    CHECK(ids(repeated) == ids(first));
    CHECK(repeated.offset == 0);
  }

  proxy.set_rules({short_pages(token_listing(sim.org_id()), 1)});
  const auto short_page = page_of(via(proxy, sim, "GET", tokens_path(sim) + "?limit=1000"));
  CHECK(short_page.tokens.size() == 1);
  CHECK(short_page.total_count == 5);
  const auto no_query = page_of(via(proxy, sim, "GET", tokens_path(sim)));
  CHECK(no_query.tokens.size() == 1);

  // Both at once: the first page, one token, a totalCount of 1.
  proxy.set_rules({repeat_page(token_listing(sim.org_id())),
                   short_pages(token_listing(sim.org_id()), 1),
                   lie_total_count(token_listing(sim.org_id()), 1)});
  const auto combined = page_of(via(proxy, sim, "GET", tokens_path(sim) + "?offset=3&limit=1000"));
  CHECK(ids(combined) == std::vector<std::string>{first.tokens[0].id});
  CHECK(combined.total_count == 1);
  CHECK(proxy.requests().back().faults.size() == 3);
}

TEST_CASE("fault proxy: an endless body streams until the client goes away", "[proxy]") {
  SimProcess sim(no_limits());
  FaultProxy proxy(sim.base_url());
  const bool huge_length = GENERATE(false, true);
  proxy.set_rules({huge_length ? endless_body_huge_length(token_listing(sim.org_id()))
                               : endless_body(token_listing(sim.org_id()))});

  constexpr size_t kRead = size_t{8} << 20;
  {
    Poco::Net::HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(proxy.port()));
    session.setTimeout(Poco::Timespan(20, 0));
    Poco::Net::HTTPRequest request("GET", tokens_path(sim), Poco::Net::HTTPMessage::HTTP_1_1);
    session.sendRequest(request);
    Poco::Net::HTTPResponse response;
    std::istream& in = session.receiveResponse(response);
    CHECK(response.getStatus() == Poco::Net::HTTPResponse::HTTP_OK);
    if (huge_length) {
      CHECK(response.getContentLength64() == (Poco::Int64{1} << 40));
    } else {
      CHECK(response.getChunkedTransferEncoding());
    }
    std::string head(11, '\0');
    in.read(head.data(), 11);
    CHECK(head == "{\"tokens\":[");
    std::string buffer(65536, '\0');
    size_t total = 11;
    while (total < kRead && in.read(buffer.data(), static_cast<std::streamsize>(buffer.size())))
      total += static_cast<size_t>(in.gcount());
    CHECK(total >= kRead);
    session.reset();  // the client goes away
  }
  CHECK(proxy.endless_bytes_sent() >= kRead);
  // The simulator was never asked.
  CHECK(sim.control().requests().count("ListApiTokens") == 0);
}

TEST_CASE("fault proxy: an endless body ends at its byte limit", "[proxy]") {
  SimProcess sim(no_limits());
  FaultProxy proxy(sim.base_url());
  proxy.set_max_endless_bytes(200000);
  proxy.set_rules({endless_body(any_request())});
  HttpResponse r = via(proxy, sim, "GET", tokens_path(sim));
  CHECK(r.status == 200);
  CHECK(r.body.size() >= 200000);
  CHECK(r.body.size() < 400000);
  CHECK(r.body.rfind("{\"tokens\":[{\"id\":", 0) == 0);
}

TEST_CASE("fault proxy: a trickled answer arrives whole, one byte per interval", "[proxy]") {
  SimProcess sim(no_limits());
  FaultProxy proxy(sim.base_url());
  proxy.set_rules({trickle(any_request(tokens_path(sim) + "/"), std::chrono::milliseconds(10))});
  const auto start = SteadyClock::now();
  HttpResponse r = via(proxy, sim, "GET", tokens_path(sim) + "/cnosuchtoken");
  const long long elapsed = millis_since(start);
  REQUIRE(r.status == 404);
  auto error = astro::json::decode_error(r.body);
  REQUIRE(error);
  CHECK(error->status_code == 404);
  INFO("body of " << r.body.size() << " bytes took " << elapsed << " ms");
  CHECK(elapsed >= static_cast<long long>(r.body.size() - 1) * 10 * 9 / 10);
  // The listing is not selected: it is answered at once.
  CHECK(via(proxy, sim, "GET", tokens_path(sim)).status == 200);
}

TEST_CASE("fault proxy: a whole trickled answer sends its headers one byte per interval too",
          "[proxy]") {
  SimProcess sim(no_limits());
  FaultProxy proxy(sim.base_url());
  proxy.set_rules(
      {trickle_headers(any_request(tokens_path(sim) + "/"), std::chrono::milliseconds(5))});
  const auto start = SteadyClock::now();
  HttpResponse r = via(proxy, sim, "GET", tokens_path(sim) + "/cnosuchtoken");
  const long long elapsed = millis_since(start);
  REQUIRE(r.status == 404);
  REQUIRE(astro::json::decode_error(r.body));
  // The status line and the Content-Length header alone are over 40 bytes.
  INFO("body of " << r.body.size() << " bytes took " << elapsed << " ms");
  CHECK(elapsed >= static_cast<long long>(r.body.size() + 40) * 5 * 9 / 10);
}

TEST_CASE("fault proxy: a hook runs after the simulator answered, before the client reads",
          "[proxy]") {
  SimProcess sim(no_limits());
  FaultProxy proxy(sim.base_url());
  seed_tokens(sim, 4);
  const auto all = page_of(sim.api("GET", tokens_path(sim) + "?limit=10"));
  REQUIRE(all.tokens.size() == 4);
  std::atomic<int> calls{0};
  SimControl control = sim.control();
  const std::string victim = all.tokens[3].id;
  proxy.set_rules({after_answer(token_listing(sim.org_id(), 1), [&] {
    ++calls;
    control.delete_token(victim);
  })});

  const auto page1 = page_of(via(proxy, sim, "GET", tokens_path(sim) + "?offset=0&limit=2"));
  CHECK(calls == 1);
  CHECK(page1.total_count == 4);  // taken before the hook deleted a token
  const auto page2 = page_of(via(proxy, sim, "GET", tokens_path(sim) + "?offset=2&limit=2"));
  CHECK(calls == 1);
  CHECK(page2.total_count == 3);
  CHECK(ids(page2) == std::vector<std::string>{all.tokens[2].id});
}

TEST_CASE("fault proxy: a late forward drops the client, then reaches the simulator", "[proxy]") {
  SimProcess sim(no_limits());
  FaultProxy proxy(sim.base_url());
  proxy.set_rules({late_forward(token_create(sim.org_id(), 1), std::chrono::milliseconds(1500))});

  const auto start = SteadyClock::now();
  HttpResponse dropped = via(proxy, sim, "POST", tokens_path(sim), create_body("late"));
  const long long dropped_after = millis_since(start);
  CHECK(dropped.status == 0);
  CHECK(dropped_after < 1500);
  CHECK(sim.control().tokens().empty());

  REQUIRE(proxy.wait_late_forwards(std::chrono::seconds(20)));
  const long long landed_after = millis_since(start);
  CHECK(landed_after >= 1500);
  CHECK(proxy.late_forwards_done() == 1);
  const auto tokens = sim.control().tokens();
  REQUIRE(tokens.size() == 1);
  CHECK(tokens[0].name == "late");

  // Only the first create was selected.
  CHECK(via(proxy, sim, "POST", tokens_path(sim), create_body("on time")).status == 200);
  CHECK(sim.control().tokens().size() == 2);
}

TEST_CASE("fault proxy: stopping abandons pending late forwards", "[proxy]") {
  SimProcess sim(no_limits());
  const auto start = SteadyClock::now();
  {
    FaultProxy proxy(sim.base_url());
    proxy.set_rules({late_forward(token_create(sim.org_id()), std::chrono::seconds(60))});
    CHECK(via(proxy, sim, "POST", tokens_path(sim), create_body("never")).status == 0);
  }
  CHECK(millis_since(start) < 30000);
  CHECK(sim.control().tokens().empty());
}
