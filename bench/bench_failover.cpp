// Failover time of two astro-tokend daemons on one PostgreSQL database (the
// default [ha] timings: lease 15s, renew 10s, retry 2s) against
// astro-api-sim: the time from SIGKILL of the leader, and from SIGSTOP of the
// leader, until the standby logs "became leader", 5 rounds each. Prints the
// machine, every round and the medians, with PASS/MISS against the targets
// (< 15 s after SIGKILL; within lease + retry = 17 s after SIGSTOP). It
// reports; it does not assert.
//
//   bench_failover [ROUNDS]   (default 5)
#include <signal.h>
#include <sys/utsname.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/postgres.h"
#include "support/process.h"
#include "support/sim.h"

namespace testing = tokend::testing;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

std::string kernel() {
  utsname name{};
  if (uname(&name) != 0) return "unknown";
  return std::string(name.sysname) + " " + name.release;
}

// One daemon: its config in a directory of its own, its log, its process.
class Replica {
 public:
  Replica(const testing::SimProcess& sim, const std::string& dsn, const std::string& secrets,
          const std::string& name)
      : sim_(sim), name_(name) {
    std::filesystem::create_directories(dir_.file("tokens.d"));
    testing::write_file(dir_.file("tokens.d/ci.toml"),
                        "[api_token.ci]\nname = \"failover ci\"\ntype = \"WORKSPACE\"\n"
                        "role = \"WORKSPACE_OWNER\"\nroles = [{ role = \"WORKSPACE_OWNER\", "
                        "entity_id = \"" +
                            std::string(testing::kSimWorkspaceId) +
                            "\", entity_type = \"WORKSPACE\" }]\n");
    testing::write_file(dir_.file("astro-tokend.toml"),
                        "[astro]\norganization_id = \"" + std::string(testing::kSimOrgId) +
                            "\"\napi_url = \"" + sim.base_url() +
                            "\"\ntoken_env = \"BENCH_API_TOKEN\"\n[specs]\npaths = "
                            "[\"tokens.d\"]\n[state]\nbackend = \"postgres\"\ndsn = \"" +
                            dsn +
                            "\"\n[reconcile]\ninterval = \"5s\"\njitter = \"0s\"\n"
                            "[secrets]\ndir = \"" +
                            secrets + "\"\n[server]\nlisten = \"\"\n");
  }
  void start() {
    testing::RunOptions options;
    options.env["BENCH_API_TOKEN"] = sim_.bearer_token();
    options.unset_env = {"CREDENTIALS_DIRECTORY", "NOTIFY_SOCKET", "WATCHDOG_USEC"};
    log_from_ = log().size();
    process_ = std::make_unique<testing::BackgroundProcess>(
        std::vector<std::string>{TOKEND_BIN, "run", "-c", dir_.file("astro-tokend.toml")}, options,
        "", dir_.file("daemon.log"));
  }
  std::string log() const {
    std::error_code ec;
    return std::filesystem::exists(dir_.file("daemon.log"), ec)
               ? testing::read_file(dir_.file("daemon.log"))
               : std::string();
  }
  size_t log_size() const { return log().size(); }
  // Polls (20 ms) for `needle` at or after byte `from`.
  bool wait_for(const std::string& needle, size_t from, std::chrono::milliseconds timeout) const {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      if (log().find(needle, from) != std::string::npos) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  testing::BackgroundProcess& process() { return *process_; }
  const std::string& name() const { return name_; }
  size_t started_at_log() const { return log_from_; }

 private:
  const testing::SimProcess& sim_;
  std::string name_;
  testing::TempDir dir_;
  std::unique_ptr<testing::BackgroundProcess> process_;
  size_t log_from_ = 0;
};

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  size_t n = values.size();
  return n == 0 ? 0 : (n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2);
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
  try {
    testing::PostgresServer postgres;
    const std::string dsn = postgres.create_database();
    testing::SimProcess sim;
    testing::TempDir secrets;
    Replica a(sim, dsn, secrets.path(), "a"), b(sim, dsn, secrets.path(), "b");
    a.start();
    if (!a.wait_for("became leader", 0, 30s)) throw std::runtime_error("a never led:\n" + a.log());
    b.start();
    if (!b.wait_for("standing by", 0, 30s))
      throw std::runtime_error("b never stood by:\n" + b.log());
    Replica* leader = &a;
    Replica* standby = &b;

    std::vector<double> after_kill, after_stop;
    for (int round = 1; round <= rounds; ++round) {
      const size_t from = standby->log_size();
      const auto killed = Clock::now();
      leader->process().signal(SIGKILL);
      if (!standby->wait_for("became leader", from, 60s))
        throw std::runtime_error("no takeover after SIGKILL:\n" + standby->log());
      after_kill.push_back(std::chrono::duration<double>(Clock::now() - killed).count());
      std::printf("SIGKILL round %d: %s took over after %.2f s\n", round, standby->name().c_str(),
                  after_kill.back());
      leader->process().wait_for_exit(10s);
      std::swap(leader, standby);
      standby->start();
      if (!standby->wait_for("standing by", standby->started_at_log(), 30s))
        throw std::runtime_error("restarted replica did not stand by:\n" + standby->log());
    }
    for (int round = 1; round <= rounds; ++round) {
      const size_t from = standby->log_size();
      const auto stopped = Clock::now();
      leader->process().signal(SIGSTOP);
      if (!standby->wait_for("became leader", from, 60s))
        throw std::runtime_error("no takeover after SIGSTOP:\n" + standby->log());
      after_stop.push_back(std::chrono::duration<double>(Clock::now() - stopped).count());
      std::printf("SIGSTOP round %d: %s took over after %.2f s\n", round, standby->name().c_str(),
                  after_stop.back());
      const size_t old_from = leader->log_size();
      leader->process().signal(SIGCONT);
      if (!leader->wait_for("standing by", old_from, 30s))
        throw std::runtime_error("the resumed leader did not stand by:\n" + leader->log());
      std::swap(leader, standby);
    }
    const double kill_median = median(after_kill), stop_median = median(after_stop);
    std::printf("machine: %u cores, %s, %s\n", std::thread::hardware_concurrency(),
                cpu_model().c_str(), kernel().c_str());
    std::printf("ha: lease 15s, renew 10s, retry 2s (defaults); PostgreSQL on a unix socket\n");
    std::printf("takeover after SIGKILL: median %.2f s of %d   target < 15 s   %s\n", kill_median,
                rounds, kill_median < 15 ? "PASS" : "MISS");
    std::printf(
        "takeover after SIGSTOP: median %.2f s of %d   target <= 17 s (lease + retry)   %s\n",
        stop_median, rounds, stop_median <= 17 ? "PASS" : "MISS");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_failover: %s\n", e.what());
    return 1;
  }
  return 0;
}
