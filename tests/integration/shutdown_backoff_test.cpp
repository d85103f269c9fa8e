// SIGTERM stops the daemon within a second whatever it waits for: a 429's
// Retry-After or a 5xx back-off in the API client ends at once, an answer
// still arriving is cut (a create's after a short grace, its intent kept for
// the next run to settle), what had completed stays committed, and the
// daemon exits 0. Runs the real daemon
// against astro-api-sim behind the fault-injecting proxy.
#include <catch2/catch.hpp>

#include <signal.h>

#include <filesystem>

#include "daemon/harness.h"
#include "state/store.h"
#include "support/fault_proxy.h"

using namespace tokend::testing;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

// Sends SIGTERM; the daemon's exit and how long it took.
std::pair<std::optional<ProcessResult>, std::chrono::steady_clock::duration> terminate(
    DaemonUnderTest& daemon) {
  daemon.process().signal(SIGTERM);
  const auto signalled = std::chrono::steady_clock::now();
  auto exit = daemon.process().wait_for_exit(seconds(10));
  return {std::move(exit), std::chrono::steady_clock::now() - signalled};
}

}  // namespace

TEST_CASE("SIGTERM during an API back-off stops the daemon within 1s with state consistent",
          "[integration][daemon][shutdown]") {
  SimProcess sim;
  FaultProxy proxy(sim.base_url());
  DaemonConfig config;
  config.api_url = proxy.url();
  config.interval = "1s";
  DaemonUnderTest daemon(sim, config);
  daemon.write_spec("ci.toml", workspace_token_toml("ci", "ci deployer"));
  daemon.start();
  // The first cycle creates and delivers the token.
  REQUIRE(daemon.wait_for_log("msg=\"reconcile finished\"", 0, seconds(15)));

  // From now on every request waits: a 429 asking for 50 s, or 503s whose
  // back-off grows towards the client's cap.
  const bool rate_limited = GENERATE(true, false);
  INFO((rate_limited ? "429 Retry-After: 50" : "503"));
  proxy.set_rules(
      {rate_limited ? error_status(any_request(), 429, "50") : error_status(any_request(), 503)});
  const size_t mark = daemon.log().size();
  REQUIRE(daemon.wait_for_log("msg=\"astro api request failed, retrying\"", mark, seconds(10)));
  if (!rate_limited) {
    // Into the longer waits of the back-off.
    REQUIRE(daemon.wait_for_log("attempt=3", mark, seconds(10)));
  }
  const size_t requests_before = proxy.requests().size();

  auto [exit, took] = terminate(daemon);
  INFO(daemon.log());
  REQUIRE(exit);
  CHECK(exit->exit_code == 0);
  CHECK(took < seconds(1));
  CHECK(daemon.log().find("msg=stopping signal=SIGTERM") != std::string::npos);
  // Nothing more was sent once the signal came (at most a request already on its way).
  CHECK(proxy.requests().size() <= requests_before + 1);

  // What completed is committed and matches the API: one token, recorded, delivered.
  auto store = tokend::state::StateStore::open(daemon.state_path());
  REQUIRE(store.ok());
  auto rows = (*store)->resources();
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == 1);
  auto tokens = sim.control().tokens();
  REQUIRE(tokens.size() == 1);
  CHECK(tokens[0].id == (*rows)[0].id);
  CHECK(std::filesystem::exists(daemon.sink_path("ci")));
  auto intents = (*store)->pending_intents();
  REQUIRE(intents.ok());
  CHECK(intents->empty());
}

TEST_CASE("SIGTERM while a listing is arriving stops the daemon within 1s",
          "[integration][daemon][shutdown]") {
  SimProcess sim;
  FaultProxy proxy(sim.base_url());
  DaemonConfig config;
  config.api_url = proxy.url();
  config.timeout = "60s";
  DaemonUnderTest daemon(sim, config);
  daemon.write_spec("ci.toml", workspace_token_toml("ci", "ci deployer"));
  daemon.start();
  REQUIRE(daemon.wait_for_log("msg=\"reconcile finished\"", 0, seconds(15)));

  // The next cycle's listing comes a byte a second: it would take minutes.
  const std::string listing = "/v1/organizations/" + sim.org_id() + "/tokens";
  const size_t listed = proxy.request_count(listing);
  proxy.set_rules({trickle(token_listing(sim.org_id()), milliseconds(1000))});
  REQUIRE(eventually([&] { return proxy.request_count(listing) > listed; }, seconds(10)));

  auto [exit, took] = terminate(daemon);
  INFO(daemon.log());
  REQUIRE(exit);
  CHECK(exit->exit_code == 0);
  CHECK(took < seconds(1));
  CHECK(proxy.request_count(listing) == listed + 1);
}

TEST_CASE(
    "SIGTERM while a create's answer is arriving stops within 1s - the restart adopts the token",
    "[integration][daemon][shutdown]") {
  SimProcess sim;
  FaultProxy proxy(sim.base_url());
  DaemonConfig config;
  config.api_url = proxy.url();
  config.timeout = "3s";
  DaemonUnderTest daemon(sim, config);
  // The create reaches the simulator; its answer then comes a byte a second.
  proxy.set_rules({trickle(token_create(sim.org_id()), milliseconds(1000))});
  daemon.write_spec("ci.toml", workspace_token_toml("ci", "ci deployer"));
  daemon.start();
  REQUIRE(eventually([&] { return sim.control().tokens().size() == 1; }, seconds(15)));
  const std::string made = sim.control().tokens()[0].id;

  auto [exit, took] = terminate(daemon);
  INFO(daemon.log());
  REQUIRE(exit);
  CHECK(exit->exit_code == 0);
  CHECK(took < seconds(1));
  {
    // The create's outcome is unknown to the state: its intent is kept.
    auto store = tokend::state::StateStore::open(daemon.state_path());
    REQUIRE(store.ok());
    auto rows = (*store)->resources();
    REQUIRE(rows.ok());
    CHECK(rows->empty());
    auto intents = (*store)->pending_intents();
    REQUIRE(intents.ok());
    CHECK(intents->size() == 1);
  }

  // Started again with the answers whole, the daemon settles the create
  // once its deadline passed: the token it made is adopted, not made twice.
  proxy.set_rules({});
  daemon.start();
  const auto settled = [&] {
    auto store = tokend::state::StateStore::open(daemon.state_path());
    if (!store.ok()) return false;
    auto rows = (*store)->resources();
    return rows.ok() && rows->size() == 1 && std::filesystem::exists(daemon.sink_path("ci"));
  };
  REQUIRE(eventually(settled, seconds(20)));
  CHECK(sim.control().tokens().size() == 1);
  CHECK(sim.control().tokens()[0].id == made);
  const auto second_exit = terminate(daemon).first;
  REQUIRE(second_exit);
  CHECK(second_exit->exit_code == 0);
  auto store = tokend::state::StateStore::open(daemon.state_path());
  REQUIRE(store.ok());
  auto rows = (*store)->resources();
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == 1);
  CHECK((*rows)[0].id == made);
  CHECK(sim.control().requests().count("CreateApiToken") == 1);
}

TEST_CASE("a sink that cannot be written holds its token back instead of rotating every cycle",
          "[integration][daemon][sink]") {
  SimProcess sim;
  DaemonConfig config;
  config.interval = "1s";
  DaemonUnderTest daemon(sim, config);
  daemon.write_spec("ci.toml", workspace_token_toml("ci", "ci deployer"));
  daemon.start();
  REQUIRE(daemon.wait_for_log("msg=\"reconcile finished\"", 0, seconds(15)));
  REQUIRE(std::filesystem::exists(daemon.sink_path("ci")));
  REQUIRE(sim.control().tokens().size() == 1);
  sim.control().reset_requests();

  // After the specs were loaded, the sink's directory becomes a regular
  // file: the value is gone (a reason to rotate), and no new one could be
  // written.
  const std::filesystem::path secrets = std::filesystem::path(daemon.sink_path("ci")).parent_path();
  std::filesystem::remove_all(secrets);
  write_file(secrets.string(), "not a directory\n");
  size_t mark = daemon.log().size();
  for (int cycle = 0; cycle < 2; ++cycle) {
    auto held = daemon.wait_for_log(
        "msg=\"cannot write sink; the token is held back, neither "
        "created nor rotated\" address=astro_api_token.ci",
        mark, seconds(10));
    REQUIRE(held);
    auto finished = daemon.wait_for_log("msg=\"reconcile finished\"", *held, seconds(10));
    REQUIRE(finished);
    mark = *finished;
  }
  INFO(daemon.log());
  CHECK(sim.control().requests().count("RotateApiToken") == 0);
  CHECK(sim.control().requests().count("CreateApiToken") == 0);
  CHECK(sim.control().tokens().size() == 1);

  // Once the directory can be made again, one rotation delivers a new value.
  std::filesystem::remove(secrets);
  REQUIRE(eventually([&] { return std::filesystem::exists(daemon.sink_path("ci")); }, seconds(10)));
  REQUIRE(daemon.wait_for_log("msg=\"reconcile finished\"", mark, seconds(10)));
  CHECK(sim.control().requests().count("RotateApiToken") == 1);
  CHECK(sim.control().tokens().size() == 1);
  daemon.process().signal(SIGTERM);
  auto exit = daemon.process().wait_for_exit(seconds(5));
  REQUIRE(exit);
  CHECK(exit->exit_code == 0);
}
