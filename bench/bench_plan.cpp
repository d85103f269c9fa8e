// bench_plan: what a no-op `astro-tokend plan` over a large organization
// costs. Seeds astro-api-sim (bulk control, published rate limits) and the
// state (StateStore) with 10,000 tokens matching 10,000 specs spread over a
// handful of spec files, with their values in their sinks, then runs
// `astro-tokend plan` as a child process: wall time, peak RSS of the child
// (wait4's ru_maxrss) and API requests by operation (the simulator's request
// log), next to what the Terraform provider's refresh sends for the same
// tokens (one GetApiToken each). Prints PASS/MISS against the targets; it
// reports, it does not assert (exit 1 only when the run itself went wrong).
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "cli/fixture.h"

namespace {

constexpr int kTokens = 10000;
constexpr int kSpecFiles = 8;
constexpr int kTargetRequests = 11;
constexpr double kTargetSeconds = 1.0;
constexpr double kTargetMiB = 64;

struct ChildRun {
  int exit_code = -1;
  double seconds = 0;
  double max_rss_mib = 0;
  double cpu_seconds = 0;  // user + system
  std::string out;
};

// Runs astro-tokend with `args` and `env_entry` added to the environment;
// stdout to a file read back afterwards, stderr inherited.
ChildRun run_measured(const std::vector<std::string>& args, const std::string& env_entry,
                      const std::string& out_file) {
  std::vector<std::string> argv_text{TOKEND_BIN};
  argv_text.insert(argv_text.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : argv_text) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::string env_text = env_entry;

  ChildRun run;
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid < 0) return run;
  if (pid == 0) {
    int fd = open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0) _exit(127);
    putenv(env_text.data());
    execv(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  struct rusage usage {};
  if (wait4(pid, &status, 0, &usage) != pid) return run;
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  run.max_rss_mib = static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB
  const auto seconds_of = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  run.cpu_seconds = seconds_of(usage.ru_utime) + seconds_of(usage.ru_stime);
  run.out = tokend::testing::read_file(out_file);
  return run;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) != 0) continue;
    const size_t colon = line.find(':');
    return colon == std::string::npos ? line : line.substr(colon + 2);
  }
  return "unknown CPU";
}

const char* verdict(bool pass) { return pass ? "PASS" : "MISS"; }

// The 1-minute load average: other work on the machine stretches wall time.
std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one;
  in >> one;
  return one.empty() ? "unknown" : one;
}

}  // namespace

int main() {
  try {
    struct utsname machine {};
    uname(&machine);
    std::printf("bench_plan: a no-op `astro-tokend plan` over %d managed tokens (%d spec files)\n",
                kTokens, kSpecFiles);
    std::printf("machine: %u CPUs (nproc), %s, %s %s\n", std::thread::hardware_concurrency(),
                cpu_model().c_str(), machine.sysname, machine.release);

    tokend::testing::CliOptions options;
    options.sim_rate_limits = true;  // the published Astro limits, as in production
    tokend::testing::CliWorkspace ws(options);
    const auto seed_start = std::chrono::steady_clock::now();
    tokend::testing::seed_managed_fleet(ws, kTokens, kSpecFiles);
    std::printf(
        "seeded the simulator, %d spec files, the state and the sinks in %.1f s\n", kSpecFiles,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - seed_start).count());

    const std::vector<std::string> args{"-c", ws.config_path(), "plan", "--detailed-exitcode"};
    const std::string env =
        std::string(tokend::testing::kBearerEnv) + "=" + ws.sim().bearer_token();
    const std::string out_file = ws.dir().file("plan.out");

    // One warm-up run (page cache, dynamic loading), then the measured one.
    ChildRun warm = run_measured(args, env, out_file);
    // Let the simulator's one-second GET budget refill, as between two real plans.
    std::this_thread::sleep_for(std::chrono::seconds(1));
    ws.control().reset_requests();
    ChildRun run = run_measured(args, env, out_file);
    const tokend::testing::RequestStats stats = ws.control().requests();

    const bool no_op = run.exit_code == 0 && warm.exit_code == 0 &&
                       run.out == "No changes. Your tokens match the configuration.\n";
    if (!no_op) {
      std::printf("ERROR: the plan was not a no-op (exit %d):\n%s\n", run.exit_code,
                  run.out.c_str());
      return 1;
    }
    const auto requests = static_cast<int>(stats.total);
    std::printf("\nmeasured run (after one warm-up run):\n");
    std::printf("  wall time     %8.3f s    target <= %.1f s    %s\n", run.seconds, kTargetSeconds,
                verdict(run.seconds <= kTargetSeconds));
    std::printf("  CPU time      %8.3f s    (user + system; load average %s)\n", run.cpu_seconds,
                load_average().c_str());
    std::printf("  peak RSS      %8.1f MiB  target <= %.0f MiB   %s\n", run.max_rss_mib, kTargetMiB,
                verdict(run.max_rss_mib <= kTargetMiB));
    std::printf("  API requests  %8d      target <= %d       %s\n", requests, kTargetRequests,
                verdict(requests <= kTargetRequests));
    for (const auto& [operation, by_status] : stats.status_counts)
      for (const auto& [status, count] : by_status)
        std::printf("    %-20s HTTP %d  %llu\n", operation.c_str(), status,
                    static_cast<unsigned long long>(count));
    std::printf(
        "\nthe Terraform provider's refresh of the same tokens: %d GetApiToken requests "
        "(one per token)\n",
        kTokens);
    std::printf("astro-tokend: %d requests, %.0fx fewer\n", requests,
                requests > 0 ? static_cast<double>(kTokens) / requests : 0.0);
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "bench_plan: %s\n", error.what());
    return 1;
  }
}
