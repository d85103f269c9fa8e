#include "state/pg_connection.h"

#include <charconv>
#include <cstdlib>
#include <cstring>

#include "util/files.h"

namespace tokend::state {

namespace {

constexpr const char* kCredentialName = "astro-tokend-postgres";
constexpr std::size_t kMaxPasswordBytes = 4096;

std::string trimmed_message(const char* message) {
  std::string text = message != nullptr ? message : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  for (char& c : text)
    if (c == '\n') c = ' ';
  return text;
}

// Whether the dsn names `keyword` (key=value or URI form), so that our
// default for it does not override the operator's.
bool dsn_names(const std::string& dsn, const std::string& keyword) {
  PQconninfoOption* options = PQconninfoParse(dsn.c_str(), nullptr);
  if (options == nullptr) return false;
  bool named = false;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (keyword == o->keyword && o->val != nullptr && o->val[0] != '\0') named = true;
  }
  PQconninfoFree(options);
  return named;
}

}  // namespace

Error pg_error(const PgFailure& failure, std::string_view doing) {
  const std::string& state = failure.sqlstate();
  ErrorKind kind = ErrorKind::Io;
  if (failure.connection_lost() || state.rfind("08", 0) == 0 || state == "57P01" ||
      state == "57P02" || state == "57P03") {
    kind = ErrorKind::Unavailable;
  } else if (state == "23505" || state == "40001" || state == "40P01" || state == "55P03") {
    kind = ErrorKind::Conflict;
  } else if (state.rfind("23", 0) == 0 || state.rfind("22", 0) == 0) {
    kind = ErrorKind::Invalid;
  } else if (state == "XX001" || state == "XX002") {
    kind = ErrorKind::Corrupt;
  } else if (state == "28000" || state == "28P01") {
    kind = ErrorKind::Unauthorized;
  }
  return Error{kind, "state database: " + std::string(doing) + ": " + failure.what()};
}

std::string PgRows::text(int row, int column) const {
  return std::string(PQgetvalue(result_.get(), row, column),
                     static_cast<size_t>(PQgetlength(result_.get(), row, column)));
}

int64_t PgRows::int64(int row, int column) const {
  const char* begin = PQgetvalue(result_.get(), row, column);
  const char* end = begin + PQgetlength(result_.get(), row, column);
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || ptr != end || null(row, column)) {
    throw PgCorruptRow("column " + std::string(PQfname(result_.get(), column)) +
                       " is not an integer");
  }
  return value;
}

int PgRows::int32(int row, int column) const { return static_cast<int>(int64(row, column)); }

double PgRows::real(int row, int column) const {
  const std::string value = text(row, column);
  char* end = nullptr;
  double out = std::strtod(value.c_str(), &end);
  if (value.empty() || end != value.c_str() + value.size()) {
    throw PgCorruptRow("column " + std::string(PQfname(result_.get(), column)) +
                       " is not a number");
  }
  return out;
}

std::optional<int64_t> PgRows::optional_int64(int row, int column) const {
  if (null(row, column)) return std::nullopt;
  return int64(row, column);
}

int64_t PgRows::affected() const {
  const char* text = PQcmdTuples(result_.get());
  return text[0] == '\0' ? 0 : std::strtoll(text, nullptr, 10);
}

Result<std::unique_ptr<PgConnection>> PgConnection::open(const std::string& dsn) {
  char* parse_error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(dsn.c_str(), &parse_error);
  if (parsed == nullptr) {
    std::string message = trimmed_message(parse_error);
    PQfreemem(parse_error);
    return Error::invalid("state database: the dsn is not a libpq connection string: " + message);
  }
  PQconninfoFree(parsed);

  // Later keywords override earlier ones, and the expanded dsn overrides the
  // defaults before it; the password from the credential comes last.
  std::vector<std::string> keywords, values;
  if (!dsn_names(dsn, "application_name")) {
    keywords.emplace_back("application_name");
    values.emplace_back("astro-tokend");
  }
  if (!dsn_names(dsn, "connect_timeout")) {
    keywords.emplace_back("connect_timeout");
    values.emplace_back("10");
  }
  keywords.emplace_back("dbname");
  values.push_back(dsn);
  if (const char* dir = std::getenv("CREDENTIALS_DIRECTORY"); dir != nullptr && dir[0] != '\0') {
    auto password =
        read_file_if_exists(std::string(dir) + "/" + kCredentialName, kMaxPasswordBytes);
    if (!password.ok()) return password.error();
    if (password.value()) {
      std::string value = std::move(*password.value());
      while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
      keywords.emplace_back("password");
      values.push_back(std::move(value));
    }
  }

  auto connection = std::unique_ptr<PgConnection>(
      new PgConnection(nullptr, std::move(keywords), std::move(values)));
  try {
    connection->reconnect();
  } catch (const PgFailure& e) {
    return pg_error(e, "connecting");
  }
  return connection;
}

PgConnection::~PgConnection() {
  if (conn_ != nullptr) PQfinish(conn_);
}

bool PgConnection::connected() const {
  return conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK;
}

void PgConnection::reconnect() {
  if (conn_ != nullptr) {
    PQfinish(conn_);
    conn_ = nullptr;
  }
  std::vector<const char*> k, v;
  for (size_t i = 0; i < keywords_.size(); ++i) {
    k.push_back(keywords_[i].c_str());
    v.push_back(values_[i].c_str());
  }
  k.push_back(nullptr);
  v.push_back(nullptr);
  PGconn* conn = PQconnectdbParams(k.data(), v.data(), 1);
  if (conn == nullptr) throw PgFailure("", "out of memory", true);
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = trimmed_message(PQerrorMessage(conn));
    PQfinish(conn);
    // libpq reports a refused password in its message only.
    const bool auth = message.find("authentication failed") != std::string::npos ||
                      message.find("no password supplied") != std::string::npos;
    throw PgFailure(auth ? "28P01" : "", "cannot connect: " + message, !auth);
  }
  conn_ = conn;
  ++session_;
  // Errors and notices are read from results; nothing is printed.
  PQsetNoticeProcessor(
      conn_, [](void*, const char*) {}, nullptr);
}

void PgConnection::ensure() {
  if (!connected()) reconnect();
}

PgRows PgConnection::exec(const std::string& sql, const std::vector<PgParam>& params) {
  if (conn_ == nullptr) throw PgFailure("", "not connected", true);
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const PgParam& p : params) values.push_back(p ? p->c_str() : nullptr);
  // Without parameters, the simple protocol, which also runs a script of
  // several statements (a migration).
  PGresult* result = params.empty()
                         ? PQexec(conn_, sql.c_str())
                         : PQexecParams(conn_, sql.c_str(), static_cast<int>(params.size()),
                                        nullptr, values.data(), nullptr, nullptr, 0);
  ExecStatusType status = result != nullptr ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return PgRows(result);
  // Copied before PQclear: the field points into the result.
  const char* field = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  const std::string state = field != nullptr ? field : "";
  std::string message =
      trimmed_message(result != nullptr ? PQresultErrorMessage(result) : PQerrorMessage(conn_));
  if (message.empty()) message = trimmed_message(PQerrorMessage(conn_));
  PQclear(result);
  const bool lost = PQstatus(conn_) != CONNECTION_OK;
  throw PgFailure(state, message, lost);
}

PgTransaction::PgTransaction(PgConnection& conn, const std::string& mode) : conn_(conn) {
  const std::string begin = mode.empty() ? "BEGIN" : "BEGIN " + mode;
  conn_.ensure();
  try {
    conn_.exec(begin);
  } catch (const PgFailure& e) {
    // A session that the server dropped (a restart) shows only now; BEGIN has
    // no effect, so it is safe to reconnect once and begin again.
    if (!e.connection_lost()) throw;
    conn_.reconnect();
    conn_.exec(begin);
  }
}

PgTransaction::~PgTransaction() {
  if (!open_) return;
  try {
    if (conn_.connected()) conn_.exec("ROLLBACK");
  } catch (const std::exception&) {
    // A lost connection rolls the transaction back on the server.
  }
}

void PgTransaction::commit() {
  conn_.exec("COMMIT");
  open_ = false;
}

}  // namespace tokend::state
