// Where a store test's state lives, for each backend the shared store suite
// runs on: SQLite (a file in a temporary directory, or :memory:) and
// PostgreSQL (a database of its own on the shared test server).
#pragma once

#include <SQLiteCpp/SQLiteCpp.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "state/pg_store.h"
#include "state/sqlite_store.h"
#include "state/store.h"
#include "support/postgres.h"
#include "support/process.h"

namespace tokend::testing {

// Every backend, for GENERATE: `const std::string backend = GENERATE(store_backends());`
inline auto store_backends() {
  return Catch::Generators::values<std::string>({"sqlite", "postgres"});
}

class StoreTarget {
 public:
  explicit StoreTarget(std::string backend) : backend_(std::move(backend)) {
    if (backend_ == "postgres") dsn_ = shared_postgres().create_database();
  }

  const std::string& backend() const { return backend_; }
  state::StoreLocation location() const {
    state::StoreLocation where;
    where.backend = backend_ == "postgres" ? state::Backend::Postgres : state::Backend::Sqlite;
    where.path = dir_.file("state.db");
    where.dsn = dsn_;
    return where;
  }

  // A store on this target's state: each call opens another store on the
  // same state.
  Result<std::unique_ptr<state::StateStore>> try_open() const {
    return state::open_store(location());
  }
  std::unique_ptr<state::StateStore> open() const {
    auto store = try_open();
    INFO((store.ok() ? std::string() : store.error().describe()));
    REQUIRE(store.ok());
    return std::move(store).value();
  }

  // Runs an SQL script (several statements) on the state directly.
  void exec(const std::string& sql) const {
    if (backend_ == "postgres") {
      shared_postgres().query(database_of(dsn_), sql);
    } else {
      SQLite::Database raw(dir_.file("state.db"), SQLite::OPEN_READWRITE);
      raw.exec(sql);
    }
  }
  // The first column of the first row of `sql`, as an integer.
  long long query_int(const std::string& sql) const {
    if (backend_ == "postgres") return std::stoll(shared_postgres().query(database_of(dsn_), sql));
    SQLite::Database raw(dir_.file("state.db"), SQLite::OPEN_READONLY);
    return raw.execAndGet(sql).getInt64();
  }

 private:
  std::string backend_;
  TempDir dir_;
  std::string dsn_;
};

// A private store: SQLite :memory:, or a new PostgreSQL database.
inline std::unique_ptr<state::StateStore> fresh_store(const std::string& backend) {
  if (backend == "sqlite") {
    auto store = state::StateStore::open(":memory:");
    REQUIRE(store.ok());
    return std::move(store).value();
  }
  auto store = state::open_store(
      state::StoreLocation{state::Backend::Postgres, "", shared_postgres().create_database()});
  INFO((store.ok() ? std::string() : store.error().describe()));
  REQUIRE(store.ok());
  return std::move(store).value();
}

}  // namespace tokend::testing
