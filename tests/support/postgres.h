// Test support: a real PostgreSQL 15 server in a temporary directory
// (initdb as the postgres user when the tests run as root, which PostgreSQL
// refuses), listening only on a unix socket in that directory
// (listen_addresses = ''), stopped and removed on destruction. Each test
// takes a database of its own.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "support/process.h"

namespace tokend::testing {

class PostgresServer {
 public:
  // initdb (trust authentication for the local socket) and start; throws
  // std::runtime_error, with the server's log, when either fails.
  PostgresServer();
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // The directory holding the socket (libpq's host=).
  const std::string& socket_dir() const { return dir_.path(); }
  // A libpq connection string for `database` as the superuser.
  std::string dsn(const std::string& database) const;
  // Creates a database with a name of its own and returns its dsn.
  std::string create_database();
  // Runs one SQL statement (or script) on `database` and returns the first
  // column of the first row ("" when there is none); throws on failure.
  std::string query(const std::string& database, const std::string& sql) const;

  // Fast shutdown (SIGINT) and wait; start() again serves the same data.
  void stop();
  void start();
  bool running() const { return server_ != nullptr; }
  std::string log() const;

 private:
  std::vector<std::string> as_owner(std::vector<std::string> argv) const;
  TempDir dir_;
  std::string data_dir_;
  std::string log_path_;
  std::unique_ptr<BackgroundProcess> server_;
  int databases_ = 0;
};

// One server shared by every test of this process, started on first use.
PostgresServer& shared_postgres();

// The database name inside a dsn made by PostgresServer::dsn.
std::string database_of(const std::string& dsn);

}  // namespace tokend::testing
