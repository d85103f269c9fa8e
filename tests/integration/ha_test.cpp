// High availability on PostgreSQL, end to end: two real daemons on one real
// database in front of astro-api-sim, each behind its own FaultProxy so that
// the requests of each can be told apart. Exactly one leads; SIGKILL and
// SIGSTOP of the leader hand over; a resumed old leader writes nothing; a
// database restart is survived; the CLI is refused while a daemon leads.
#include <signal.h>

#include <catch2/catch.hpp>
#include <set>

#include "daemon/harness.h"
#include "support/fault_proxy.h"
#include "support/postgres.h"
#include "support/sim.h"

using namespace tokend::testing;
using namespace std::chrono_literals;

namespace {

// Short lease timings keep the test quick; the benchmark uses the defaults.
const std::string kHa = "\n[ha]\nlease = \"4s\"\nrenew = \"2s\"\nretry = \"500ms\"\n";

DaemonConfig ha_config(const std::string& api_url, const std::string& dsn,
                       const std::string& secrets_dir) {
  DaemonConfig config;
  config.api_url = api_url;
  config.interval = "1s";
  config.state = "backend = \"postgres\"\ndsn = \"" + dsn + "\"";
  config.secrets_dir = secrets_dir;
  config.extra = kHa;
  return config;
}

// API writes (anything but GET) the proxy forwarded from request `from` on.
std::vector<std::string> writes_since(const FaultProxy& proxy, size_t from) {
  std::vector<std::string> out;
  auto requests = proxy.requests();
  for (size_t i = from; i < requests.size(); ++i)
    if (requests[i].method != "GET") out.push_back(requests[i].method + " " + requests[i].target);
  return out;
}

bool has_token(const SimProcess& sim, const std::string& name) {
  for (const auto& token : sim.control().tokens())
    if (token.name == name) return true;
  return false;
}

double leader_gauge(const DaemonUnderTest& daemon) {
  return daemon.metric("astro_tokend_leader").value_or(-1);
}

}  // namespace

TEST_CASE(
    "two daemons on one database: one leads, SIGKILL and SIGSTOP hand over, the old "
    "leader writes nothing",
    "[integration][postgres][ha]") {
  const std::string dsn = shared_postgres().create_database();
  SimProcess sim;
  FaultProxy proxy_a(sim.base_url());
  FaultProxy proxy_b(sim.base_url());
  TempDir shared;  // the secrets directory both hosts see
  DaemonUnderTest a(sim, ha_config(proxy_a.url(), dsn, shared.path()));
  DaemonUnderTest b(sim, ha_config(proxy_b.url(), dsn, shared.path()));
  auto add_spec = [&](const std::string& key) {
    a.write_spec(key + ".toml", workspace_token_toml(key, "ha " + key));
    b.write_spec(key + ".toml", workspace_token_toml(key, "ha " + key));
  };
  add_spec("first");

  a.start();
  REQUIRE(a.wait_for_log("became leader (epoch 1)"));
  b.start();
  REQUIRE(b.wait_for_log("standing by (leader: "));
  REQUIRE(eventually([&] { return has_token(sim, "ha first"); }, 15s));
  CHECK(leader_gauge(a) == 1);
  CHECK(leader_gauge(b) == 0);
  CHECK(writes_since(proxy_b, 0).empty());

  // SIGKILL: the session goes with the process, the standby takes over at once.
  add_spec("second");
  const auto killed_at = std::chrono::steady_clock::now();
  a.process().signal(SIGKILL);
  REQUIRE(a.process().wait_for_exit(10s));
  REQUIRE(b.wait_for_log("became leader (epoch 2)", 0, 15s));
  REQUIRE(eventually([&] { return has_token(sim, "ha second"); }, 15s));
  CHECK(std::chrono::steady_clock::now() - killed_at < 15s);
  CHECK(leader_gauge(b) == 1);

  // The killed host comes back as a standby.
  a.start();
  REQUIRE(a.wait_for_log("standing by (leader: "));
  CHECK(leader_gauge(a) == 0);

  // SIGSTOP past the lease: its session lives on, so only expiry hands over.
  const size_t b_requests_at_stop = proxy_b.requests().size();
  const size_t a_log_before = a.log().size();
  b.process().signal(SIGSTOP);
  REQUIRE(a.wait_for_log("became leader (epoch 3)", a_log_before, 20s));
  add_spec("third");
  REQUIRE(eventually([&] { return has_token(sim, "ha third"); }, 15s));
  CHECK(leader_gauge(a) == 1);

  // SIGCONT: the old leader steps down without any API or state write.
  const size_t b_log_before = b.log().size();
  const int64_t serial_before =
      std::stoll(shared_postgres().query(database_of(dsn), "SELECT serial FROM meta"));
  b.process().signal(SIGCONT);
  REQUIRE(b.wait_for_log("lost leadership", b_log_before, 15s));
  REQUIRE(b.wait_for_log("standing by (leader: ", b_log_before, 15s));
  REQUIRE(eventually([&] { return leader_gauge(b) == 0; }, 5s));
  CHECK(leader_gauge(a) == 1);
  INFO("the old leader's log after SIGCONT:\n" << b.log().substr(b_log_before));
  CHECK(writes_since(proxy_b, b_requests_at_stop).empty());
  CHECK(b.log().find("reconcile finished", b_log_before) == std::string::npos);
  // What the state holds now was written by the leader: its three tokens,
  // no intent left pending by the old one.
  CHECK(shared_postgres().query(database_of(dsn), "SELECT count(*) FROM resources") == "3");
  CHECK(shared_postgres().query(database_of(dsn),
                                "SELECT count(*) FROM intents WHERE resolved = 0") == "0");
  CHECK(std::stoll(shared_postgres().query(database_of(dsn), "SELECT serial FROM meta")) >=
        serial_before);

  // No token was created twice across all of it.
  std::multiset<std::string> names;
  for (const auto& token : sim.control().tokens()) names.insert(token.name);
  CHECK(names == std::multiset<std::string>{"ha first", "ha second", "ha third"});
  CHECK(sim.control().requests().count("CreateApiToken") == 3);
}

TEST_CASE("a CLI apply while a daemon leads is refused naming it", "[integration][postgres][ha]") {
  const std::string dsn = shared_postgres().create_database();
  SimProcess sim;
  TempDir shared;
  DaemonUnderTest daemon(sim, ha_config(sim.base_url(), dsn, shared.path()));
  daemon.write_spec("ci.toml", workspace_token_toml("ci", "ha cli"));
  daemon.start();
  REQUIRE(daemon.wait_for_log("became leader (epoch 1)"));
  const uint64_t creates = sim.control().requests().count("CreateApiToken");

  ProcessResult applied =
      run_tokend({"apply", "--auto-approve", "-c", daemon.config_path()}, daemon.run_options());
  CHECK(applied.exit_code == 1);
  CHECK_THAT(applied.err, Catch::Contains("state is locked by pid " + std::to_string(daemon.pid()) +
                                          " on host ") &&
                              Catch::Contains("(run) since "));
  ProcessResult removed = run_tokend(
      {"state", "rm", "astro_api_token.ci", "-c", daemon.config_path()}, daemon.run_options());
  CHECK(removed.exit_code == 1);
  CHECK_THAT(removed.err,
             Catch::Contains("state is locked by pid " + std::to_string(daemon.pid())));
  // plan works anywhere.
  ProcessResult planned = run_tokend({"plan", "-c", daemon.config_path()}, daemon.run_options());
  CHECK(planned.exit_code != 1);
  CHECK(sim.control().requests().count("CreateApiToken") <= creates + 1);
}

TEST_CASE("the database restarting under a running leader: it keeps running and resumes",
          "[integration][postgres][ha]") {
  PostgresServer server;  // its own: this test stops it
  const std::string dsn = server.create_database();
  SimProcess sim;
  TempDir shared;
  DaemonUnderTest daemon(sim, ha_config(sim.base_url(), dsn, shared.path()));
  daemon.write_spec("one.toml", workspace_token_toml("one", "db one"));
  daemon.start();
  REQUIRE(daemon.wait_for_log("became leader (epoch 1)"));
  REQUIRE(eventually([&] { return has_token(sim, "db one"); }, 15s));

  const size_t before = daemon.log().size();
  server.stop();
  REQUIRE(daemon.wait_for_log("cannot reach the state database", before, 15s));
  REQUIRE(daemon.wait_for_log("lost leadership", before, 15s));
  CHECK(daemon.process().running());
  CHECK(daemon.get("/healthz").status > 0);
  CHECK(daemon.metric("astro_tokend_leader") == 0);

  server.start();
  daemon.write_spec("two.toml", workspace_token_toml("two", "db two"));
  REQUIRE(daemon.wait_for_log("became leader (epoch 2)", before, 20s));
  REQUIRE(eventually([&] { return has_token(sim, "db two"); }, 15s));
  CHECK(daemon.process().running());
  CHECK(sim.control().requests().count("CreateApiToken") == 2);
}
