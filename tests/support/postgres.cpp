#include "support/postgres.h"

#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <thread>

namespace tokend::testing {

namespace {

constexpr const char* kPort = "5432";
constexpr auto kStartTimeout = std::chrono::seconds(60);

// The newest installed PostgreSQL's bin directory (Debian keeps each major
// version in /usr/lib/postgresql/N/bin).
std::string bin_dir() {
  std::string best;
  int best_version = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    const std::string name = entry.path().filename().string();
    int version = std::atoi(name.c_str());
    if (version > best_version && std::filesystem::exists(entry.path() / "bin" / "postgres")) {
      best_version = version;
      best = (entry.path() / "bin").string();
    }
  }
  if (best.empty()) throw std::runtime_error("PostgreSQL is not installed (scripts/setup.sh)");
  return best;
}

// Connects or throws with libpq's message.
PGconn* connect(const std::string& dsn) {
  PGconn* conn = PQconnectdb(dsn.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = PQerrorMessage(conn);
    PQfinish(conn);
    throw std::runtime_error("cannot connect to the test PostgreSQL: " + message);
  }
  return conn;
}

}  // namespace

PostgresServer::PostgresServer() {
  data_dir_ = dir_.file("data");
  log_path_ = dir_.file("postgres.log");
  if (::geteuid() == 0) {
    // PostgreSQL refuses to run as root: the cluster belongs to postgres.
    struct passwd* pw = ::getpwnam("postgres");
    if (pw == nullptr) throw std::runtime_error("there is no postgres user (scripts/setup.sh)");
    if (::chown(dir_.path().c_str(), pw->pw_uid, pw->pw_gid) != 0)
      throw std::runtime_error("cannot give " + dir_.path() + " to postgres");
  }
  ProcessResult initdb = run_process(
      as_owner({bin_dir() + "/initdb", "-D", data_dir_, "--auth=trust", "--username=postgres",
                "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"}),
      RunOptions{{}, {}, "/", "", std::chrono::milliseconds(120000)});
  if (initdb.exit_code != 0) throw std::runtime_error("initdb failed:\n" + initdb.out + initdb.err);
  start();
}

PostgresServer::~PostgresServer() {
  try {
    stop();
  } catch (const std::exception&) {
    // The BackgroundProcess kills what is left.
  }
}

std::vector<std::string> PostgresServer::as_owner(std::vector<std::string> argv) const {
  if (::geteuid() != 0) return argv;
  std::vector<std::string> out = {"/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres",
                                  "--init-groups", "--"};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

void PostgresServer::start() {
  if (server_) return;
  RunOptions options;
  options.cwd = "/";
  server_ = std::make_unique<BackgroundProcess>(
      as_owner({bin_dir() + "/postgres", "-D", data_dir_, "-k", dir_.path(), "-p", kPort, "-c",
                "listen_addresses=", "-c", "fsync=off", "-c", "full_page_writes=off", "-c",
                "synchronous_commit=off", "-c", "max_connections=200", "-c",
                "shared_buffers=16MB"}),
      options, log_path_, log_path_);
  // Readiness: the server answers a ping on its socket (bounded wait).
  const std::string ping_dsn = dsn("postgres");
  const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
  while (PQping(ping_dsn.c_str()) != PQPING_OK) {
    if (!server_->running() || std::chrono::steady_clock::now() > deadline) {
      server_.reset();
      throw std::runtime_error("PostgreSQL did not start:\n" + log());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void PostgresServer::stop() {
  if (!server_) return;
  server_->signal(SIGINT);  // fast shutdown: disconnects clients, then exits
  server_->wait_for_exit(std::chrono::milliseconds(60000));
  server_.reset();
}

std::string PostgresServer::dsn(const std::string& database) const {
  return "host=" + dir_.path() + " port=" + kPort + " user=postgres dbname=" + database;
}

std::string PostgresServer::create_database() {
  const std::string name =
      "tokend_" + std::to_string(::getpid()) + "_" + std::to_string(++databases_);
  query("postgres", "CREATE DATABASE " + name);
  return dsn(name);
}

std::string PostgresServer::query(const std::string& database, const std::string& sql) const {
  PGconn* conn = connect(dsn(database));
  PGresult* result = PQexec(conn, sql.c_str());
  ExecStatusType status = PQresultStatus(result);
  std::string value;
  std::string message = PQresultErrorMessage(result);
  if (status == PGRES_TUPLES_OK && PQntuples(result) > 0 && PQnfields(result) > 0)
    value = PQgetvalue(result, 0, 0);
  PQclear(result);
  PQfinish(conn);
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK)
    throw std::runtime_error("query failed: " + sql + ": " + message);
  return value;
}

std::string PostgresServer::log() const {
  std::error_code ec;
  return std::filesystem::exists(log_path_, ec) ? read_file(log_path_) : std::string();
}

PostgresServer& shared_postgres() {
  static PostgresServer server;
  return server;
}

std::string database_of(const std::string& dsn) {
  auto at = dsn.rfind("dbname=");
  return at == std::string::npos ? std::string() : dsn.substr(at + 7);
}

}  // namespace tokend::testing
