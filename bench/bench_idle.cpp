// Idle cost of the daemon: astro-tokend run managing 1,000 tokens that are
// already in line with their specs, interval 10s, for 60 s of wall time.
// Prints the machine, the daemon's CPU seconds (utime+stime from
// /proc/PID/stat), its CPU share of wall time, its peak RSS (VmHWM), the
// cycles it completed and the API requests it made, with PASS/MISS against
// the targets (< 1 % CPU, < 32 MiB). It reports; it does not assert.
//
//   bench_idle [SECONDS]   (default 60; BENCH_SHOW_LOG=1 prints the daemon's log)
#include <signal.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/process.h"
#include "support/sim.h"

namespace testing = tokend::testing;
using std::chrono::seconds;

namespace {

constexpr int kTokens = 1000;
constexpr int kFiles = 10;

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

// utime + stime of `pid` in seconds, from /proc/PID/stat.
double cpu_seconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(stat.substr(close + 2));
  std::vector<std::string> values;
  for (std::string field; fields >> field;) values.push_back(field);
  // After "pid (comm) ": state is field 3, utime field 14, stime field 15.
  if (values.size() < 13) return -1;
  double ticks = std::stod(values[11]) + std::stod(values[12]);
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// VmHWM of `pid` in KiB.
long peak_rss_kib(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

std::string token_toml(int i, const std::string& id) {
  std::string key = "svc_" + std::to_string(i);
  return "[api_token." + key + "]\nname = \"bench-" + std::to_string(i) +
         "\"\ndescription = \"idle benchmark\"\ntype = \"WORKSPACE\"\nrole = "
         "\"WORKSPACE_OPERATOR\"\n"
         "roles = [{ role = \"WORKSPACE_OPERATOR\", entity_id = \"" +
         testing::kSimWorkspaceId + "\", entity_type = \"WORKSPACE\" }]\nimport_id = \"" + id +
         "\"\n\n";
}

}  // namespace

int main(int argc, char** argv) {
  const int run_seconds = argc > 1 ? std::atoi(argv[1]) : 60;
  try {
    testing::SimOptions sim_options;
    sim_options.rate_limits = false;
    testing::SimProcess sim(sim_options);
    testing::TempDir dir;
    std::filesystem::create_directories(dir.file("tokens.d"));

    // 1,000 tokens in the organization, one spec adopting each.
    tokend::sim::NewToken templ;
    templ.request.name = "bench";
    templ.request.description = "idle benchmark";
    templ.request.type = tokend::EntityType::Workspace;
    templ.request.role = "WORKSPACE_OPERATOR";
    templ.request.entity_id = testing::kSimWorkspaceId;
    tokend::sim::BulkCreated created = sim.control().create_tokens(templ, kTokens);
    if (created.ids.size() != static_cast<size_t>(kTokens))
      throw std::runtime_error("bulk create failed");
    for (int file = 0; file < kFiles; ++file) {
      std::string toml;
      for (int i = file; i < kTokens; i += kFiles)
        toml += token_toml(i + 1, created.ids[static_cast<size_t>(i)]);
      testing::write_file(dir.file("tokens.d/tokens-" + std::to_string(file) + ".toml"), toml);
    }
    testing::write_file(
        dir.file("astro-tokend.toml"),
        "[astro]\norganization_id = \"" + std::string(testing::kSimOrgId) + "\"\napi_url = \"" +
            sim.base_url() +
            "\"\ntoken_env = \"BENCH_API_TOKEN\"\n[astro.rate_limits]\nget = 1000\npost = 1000\n"
            "delete = 1000\n[specs]\npaths = [\"tokens.d\"]\n[state]\npath = \"state/state.db\"\n"
            "[reconcile]\ninterval = \"10s\"\njitter = \"0s\"\n[secrets]\ndir = \"secrets\"\n"
            "[server]\nlisten = \"127.0.0.1:0\"\n");
    testing::RunOptions options;
    options.env["BENCH_API_TOKEN"] = sim.bearer_token();
    options.unset_env = {"CREDENTIALS_DIRECTORY", "NOTIFY_SOCKET", "WATCHDOG_USEC"};
    options.timeout = std::chrono::minutes(5);

    // Adopt them all with one apply, so the daemon starts with nothing to do.
    testing::ProcessResult applied = testing::run_tokend(
        {"apply", "--auto-approve", "-c", dir.file("astro-tokend.toml")}, options);
    if (applied.exit_code != 0)
      throw std::runtime_error("apply failed:\n" + applied.out + applied.err);

    sim.control().reset_requests();
    auto started = std::chrono::steady_clock::now();
    testing::BackgroundProcess daemon({TOKEND_BIN, "run", "-c", dir.file("astro-tokend.toml")},
                                      options, dir.file("daemon.out"), dir.file("daemon.err"));
    // CPU spent starting (loading the specs) and on the first cycle, sampled
    // when its last log line appears.
    double startup_cpu = -1;
    double startup_wall = 0;
    for (auto deadline = started + seconds(run_seconds);
         std::chrono::steady_clock::now() < deadline;) {
      std::error_code ec;
      if (std::filesystem::exists(dir.file("daemon.err"), ec) &&
          testing::read_file(dir.file("daemon.err")).find("msg=\"reconcile finished\"") !=
              std::string::npos) {
        startup_cpu = cpu_seconds(daemon.pid());
        startup_wall =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::this_thread::sleep_until(started + seconds(run_seconds));  // the measured period itself
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    double cpu = cpu_seconds(daemon.pid());
    long hwm = peak_rss_kib(daemon.pid());
    uint64_t requests = sim.control().requests().total;
    daemon.signal(SIGTERM);
    auto exit = daemon.wait_for_exit(seconds(10));
    std::string log = testing::read_file(dir.file("daemon.err"));
    size_t cycles = count(log, "msg=\"reconcile finished\"");
    size_t successes = count(log, "msg=\"reconcile finished\" result=success");

    double share = cpu / wall * 100;
    double hwm_mib = static_cast<double>(hwm) / 1024;
    std::printf("machine: %u cores, %s, %s\n", std::thread::hardware_concurrency(),
                cpu_model().c_str(), kernel().c_str());
    std::printf("daemon: %d tokens in line with their specs, interval 10s, %.1f s wall\n", kTokens,
                wall);
    std::printf("cpu: %.3f s (utime+stime)\n", cpu);
    if (startup_cpu >= 0)
      std::printf(
          "  of which start-up (load %d specs, open state, first cycle): %.3f s; after it: %.3f s "
          "over "
          "%.1f s = %.3f %%\n",
          kTokens, startup_cpu, cpu - startup_cpu, wall - startup_wall,
          (cpu - startup_cpu) / (wall - startup_wall) * 100);
    std::printf("cpu share of wall time: %.3f %%   target < 1 %%   %s\n", share,
                share < 1 ? "PASS" : "MISS");
    std::printf("peak rss (VmHWM): %.1f MiB   target < 32 MiB   %s\n", hwm_mib,
                hwm_mib < 32 ? "PASS" : "MISS");
    std::printf("cycles completed: %zu (%zu successful)\n", cycles, successes);
    std::printf("api requests: %llu (%.1f per cycle)\n", static_cast<unsigned long long>(requests),
                cycles > 0 ? static_cast<double>(requests) / static_cast<double>(cycles) : 0.0);
    std::printf("daemon exit: %s\n", exit && exit->exit_code == 0 ? "0 after SIGTERM" : "abnormal");
    if (successes == 0 || std::getenv("BENCH_SHOW_LOG"))
      std::printf("daemon log:\n%s\n", log.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_idle: %s\n", e.what());
    return 1;
  }
  return 0;
}
