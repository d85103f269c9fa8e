// The PostgreSQL writer lease against a real server: one holder at a time,
// takeover at once when the holder's session is gone and only after expiry
// when it merely stopped renewing, epochs, and write fencing.
#include <catch2/catch.hpp>
#include <thread>

#include "state/pg_lease.h"
#include "state/pg_store.h"
#include "support/postgres.h"

using tokend::ErrorKind;
using tokend::state::LeaseTimings;
using tokend::state::PgLease;
using tokend::state::PgStore;
using tokend::testing::database_of;
using tokend::testing::shared_postgres;
using namespace std::chrono_literals;

namespace {

std::unique_ptr<PgLease> lease_on(const std::string& dsn, const std::string& command,
                                  LeaseTimings timings = {}) {
  auto lease = PgLease::connect(dsn, command, timings);
  INFO((lease.ok() ? std::string() : lease.error().describe()));
  REQUIRE(lease.ok());
  return std::move(lease).value();
}

// A state database with the schema (and so the lease row).
std::string state_database() {
  const std::string dsn = shared_postgres().create_database();
  REQUIRE(PgStore::open(dsn).ok());
  return dsn;
}

bool acquired(PgLease& lease) {
  auto taken = lease.try_acquire();
  INFO((taken.ok() ? std::string() : taken.error().describe()));
  REQUIRE(taken.ok());
  return *taken;
}

// Ends the sessions holding advisory locks, as a crash of their process would.
void kill_lock_holders(const std::string& dsn) {
  shared_postgres().query(database_of(dsn),
                          "SELECT count(pg_terminate_backend(pid)) FROM pg_locks "
                          "WHERE locktype = 'advisory' AND granted");
  // pg_terminate_backend only signals: wait (bounded) until the sessions are gone.
  for (int i = 0; i < 500; ++i) {
    if (shared_postgres().query(database_of(dsn),
                                "SELECT count(*) FROM pg_locks WHERE locktype "
                                "= 'advisory' AND granted") == "0")
      return;
    std::this_thread::sleep_for(10ms);
  }
  FAIL("the sessions holding advisory locks did not end");
}

tokend::state::Intent intent_for(const std::string& key) {
  tokend::state::Intent intent;
  intent.key = key;
  return intent;
}

}  // namespace

TEST_CASE("one holder at a time - the other is told who holds it", "[state][postgres]") {
  const std::string dsn = state_database();
  auto first = lease_on(dsn, "run");
  auto second = lease_on(dsn, "apply");
  REQUIRE(acquired(*first));
  CHECK(first->held());
  CHECK(first->epoch() == 1);
  CHECK(first->check().ok());
  CHECK_FALSE(acquired(*second));
  CHECK_FALSE(second->held());
  REQUIRE(second->holder().has_value());
  CHECK(second->holder()->pid == ::getpid());
  CHECK(second->holder()->command == "run");
  CHECK(first->renew().ok());
  CHECK_FALSE(acquired(*second));

  // A holder that gives the lease up lets the other take it at once.
  first->release();
  CHECK_FALSE(first->held());
  REQUIRE(acquired(*second));
  CHECK(second->epoch() == 2);
  CHECK_FALSE(acquired(*first));
}

TEST_CASE("a holder whose session is gone loses the lease at once", "[state][postgres]") {
  const std::string dsn = state_database();
  LeaseTimings long_lease{60s, 40s, 2s};
  auto first = lease_on(dsn, "run", long_lease);
  auto second = lease_on(dsn, "run", long_lease);
  REQUIRE(acquired(*first));
  CHECK_FALSE(acquired(*second));
  kill_lock_holders(dsn);
  // Long before the 60 s lease expires.
  REQUIRE(acquired(*second));
  CHECK(second->epoch() == 2);
  auto renewed = first->renew();
  REQUIRE_FALSE(renewed.ok());
  CHECK(renewed.error().kind == ErrorKind::Conflict);
  CHECK_THAT(renewed.error().message, Catch::StartsWith("lost the writer lease (epoch 1) to pid "));
  CHECK_FALSE(first->held());
  CHECK_FALSE(first->check().ok());
}

TEST_CASE("a holder that stops renewing loses the lease when it expires - and only then",
          "[state][postgres]") {
  const std::string dsn = state_database();
  LeaseTimings short_lease{1500ms, 1000ms, 200ms};
  auto frozen = lease_on(dsn, "run", short_lease);
  auto standby = lease_on(dsn, "run", short_lease);
  REQUIRE(acquired(*frozen));
  const auto taken_at = std::chrono::steady_clock::now();
  CHECK_FALSE(acquired(*standby));  // the holder keeps its session and its advisory lock

  bool taken = false;
  for (int attempt = 0; attempt < 100 && !taken; ++attempt) {  // at most ~20 s
    taken = acquired(*standby);
    if (!taken) std::this_thread::sleep_for(200ms);
  }
  REQUIRE(taken);
  CHECK(std::chrono::steady_clock::now() - taken_at >= 1500ms);
  CHECK(standby->epoch() == 2);

  // The frozen holder wakes up: no write passes its checks, and it cannot renew.
  auto checked = frozen->check();
  REQUIRE_FALSE(checked.ok());
  CHECK(checked.error().kind == ErrorKind::Conflict);
  auto renewed = frozen->renew();
  REQUIRE_FALSE(renewed.ok());
  CHECK(renewed.error().kind == ErrorKind::Conflict);

  // Its process dies later: the advisory lock it held comes free, but the
  // lease is the standby's now, and a third process must not take it.
  frozen.reset();
  auto third = lease_on(dsn, "run", short_lease);
  CHECK_FALSE(acquired(*third));
  // The new holder picks up the advisory lock when it renews, so from then on
  // its own crash hands over at once.
  REQUIRE(standby->renew().ok());
  kill_lock_holders(dsn);
  CHECK(acquired(*third));
  CHECK(third->epoch() == 3);
}

TEST_CASE("a store fenced with a lost epoch writes nothing", "[state][postgres]") {
  const std::string dsn = state_database();
  auto leader = lease_on(dsn, "run");
  REQUIRE(acquired(*leader));
  auto store = PgStore::open(dsn);
  REQUIRE(store.ok());
  (*store)->fence_writes(leader->epoch());
  tokend::state::RunRecord run;
  run.trigger = "timer";
  run.command = "run";
  REQUIRE((*store)->begin_run(run).ok());

  auto usurper = lease_on(dsn, "run");
  kill_lock_holders(dsn);
  REQUIRE(acquired(*usurper));
  const int64_t serial = (*store)->serial();
  auto journalled = (*store)->journal_intent(intent_for("k"));
  REQUIRE_FALSE(journalled.ok());
  CHECK(journalled.error().kind == ErrorKind::Conflict);
  CHECK(journalled.error().message ==
        "state database: journalling an intent for astro_api_token.k: this writer lost the "
        "writer lease (epoch 1)");
  auto begun = (*store)->begin_run(run);
  REQUIRE_FALSE(begun.ok());
  CHECK(begun.error().kind == ErrorKind::Conflict);
  CHECK((*store)->serial() == serial);
  CHECK(shared_postgres().query(database_of(dsn), "SELECT count(*) FROM intents") == "0");
  CHECK(shared_postgres().query(database_of(dsn), "SELECT count(*) FROM runs") == "1");

  // Fenced with the new epoch, the same store writes again.
  (*store)->fence_writes(usurper->epoch());
  CHECK((*store)->journal_intent(intent_for("k")).ok());
}

TEST_CASE("acquire_writer on PostgreSQL refuses a second writer naming the first",
          "[state][postgres]") {
  const std::string dsn = state_database();
  tokend::state::StoreLocation where{tokend::state::Backend::Postgres, "", dsn};
  auto first = tokend::state::acquire_writer(where, "apply");
  REQUIRE(first.ok());
  CHECK((*first)->epoch() == 1);
  auto second = tokend::state::acquire_writer(where, "state rm");
  REQUIRE_FALSE(second.ok());
  CHECK(second.error().kind == ErrorKind::Conflict);
  CHECK_THAT(second.error().message,
             Catch::Matches("state is locked by pid " + std::to_string(::getpid()) +
                            " on host .+ \\(apply\\) since \\d{4}-.+Z"));
  first->reset();
  CHECK(tokend::state::acquire_writer(where, "state rm").ok());
}
