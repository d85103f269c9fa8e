// A libpq connection for the PostgreSQL backend of state/ (internal to
// state/). Failures are thrown as PgFailure inside the backend and turned into
// an Error at each public call by pg_guarded; nothing of libpq leaks out.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace tokend::state {

// A failed libpq call: the server's SQLSTATE ("" when there is none, such as
// a lost connection) and its message.
class PgFailure : public std::runtime_error {
 public:
  PgFailure(std::string sqlstate, const std::string& message, bool connection_lost)
      : std::runtime_error(message), sqlstate_(std::move(sqlstate)), lost_(connection_lost) {}
  const std::string& sqlstate() const { return sqlstate_; }
  bool connection_lost() const { return lost_; }

 private:
  std::string sqlstate_;
  bool lost_;
};

// A value that a stored row cannot be turned back from.
class PgCorruptRow : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A write refused because its writer no longer holds the lease it was fenced
// with.
class PgLostLease : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Maps a failure to an Error: unique violations and serialization failures
// are Conflict, other integrity or data errors Invalid, a connection that
// cannot be made or was lost (and server shutdowns) Unavailable, data
// corruption Corrupt, anything else Io.
Error pg_error(const PgFailure& failure, std::string_view doing);

// The rows of one statement, read as text.
class PgRows {
 public:
  explicit PgRows(PGresult* result) : result_(result) {}
  int size() const { return PQntuples(result_.get()); }
  bool null(int row, int column) const { return PQgetisnull(result_.get(), row, column) != 0; }
  std::string text(int row, int column) const;
  int64_t int64(int row, int column) const;  // PgCorruptRow when not an integer
  int int32(int row, int column) const;
  double real(int row, int column) const;
  std::optional<int64_t> optional_int64(int row, int column) const;
  // The number of rows an INSERT/UPDATE/DELETE touched.
  int64_t affected() const;

 private:
  struct Clear {
    void operator()(PGresult* r) const { PQclear(r); }
  };
  std::unique_ptr<PGresult, Clear> result_;
};

using PgParam = std::optional<std::string>;  // nullopt: SQL NULL

// One connection. Not thread-safe: its owner serializes calls.
class PgConnection {
 public:
  // Connects to `dsn` (a libpq connection string without a password; libpq's
  // passfile and PGPASSFILE still apply), with the password from
  // $CREDENTIALS_DIRECTORY/astro-tokend-postgres when that file exists.
  // application_name is "astro-tokend" unless the dsn names one; the connect
  // timeout is 10 s unless the dsn says otherwise. Unavailable when the server
  // cannot be reached, Unauthorized when it refuses the credentials, Invalid
  // for a malformed dsn, Io when the credential file cannot be read.
  static Result<std::unique_ptr<PgConnection>> open(const std::string& dsn);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Runs one statement with text parameters ($1, $2, …); throws PgFailure.
  // Never reconnects (a statement inside a transaction must not silently
  // run outside it): call ensure() before a call's first statement.
  PgRows exec(const std::string& sql, const std::vector<PgParam>& params = {});
  // Reconnects when the session is known to be gone (a server restart);
  // throws PgFailure (connection_lost) when the server is still away.
  void ensure();
  // Whether the session is open right now (no round trip).
  bool connected() const;
  // Drops and reopens the session; throws PgFailure when that fails.
  void reconnect();
  // Counts sessions: changes on every (re)connect, so that session-level
  // state (an advisory lock) can tell that it went with an old session.
  uint64_t session() const { return session_; }

 private:
  PgConnection(PGconn* conn, std::vector<std::string> keywords, std::vector<std::string> values)
      : conn_(conn), keywords_(std::move(keywords)), values_(std::move(values)) {}
  PGconn* conn_;
  uint64_t session_ = 0;
  std::vector<std::string> keywords_;
  std::vector<std::string> values_;  // may hold the password: never logged
};

// A transaction on a connection: BEGIN on construction (with `mode`, e.g.
// "ISOLATION LEVEL REPEATABLE READ"; reconnecting first, or once when BEGIN
// finds the session dropped), ROLLBACK on destruction unless committed.
class PgTransaction {
 public:
  explicit PgTransaction(PgConnection& conn, const std::string& mode = "");
  ~PgTransaction();
  PgTransaction(const PgTransaction&) = delete;
  PgTransaction& operator=(const PgTransaction&) = delete;
  void commit();

 private:
  PgConnection& conn_;
  bool open_ = true;
};

// Runs `body` (returning a Result) and turns whatever it throws into an Error.
template <typename Body>
auto pg_guarded(std::string_view doing, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const PgFailure& e) {
    return pg_error(e, doing);
  } catch (const PgCorruptRow& e) {
    return Error::corrupt("state database: " + std::string(doing) + ": " + e.what());
  } catch (const PgLostLease& e) {
    return Error::conflict("state database: " + std::string(doing) + ": " + e.what());
  } catch (const std::exception& e) {
    return Error::internal("state database: " + std::string(doing) + ": " + e.what());
  }
}

}  // namespace tokend::state
