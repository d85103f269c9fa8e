// bench_plan: what a no-op `astro-tokend plan` and one daemon cycle cost over
// a large organization. For 1,000 and 10,000 tokens it seeds astro-api-sim
// (bulk control, published rate limits) and the state (StateStore) with
// tokens matching specs spread over a handful of spec files, with their
// values in their sinks, then measures:
//   - `astro-tokend plan` as a child process, cold (no spec cache) and warm
//     (the spec cache the cold run left): wall time, peak RSS of the child
//     (wait4's ru_maxrss) and API requests (the simulator's request log);
//   - `astro-tokend run`: the median duration of kTimerCycles timer-triggered
//     reconcile cycles (their "reconcile finished" log lines), their requests
//     per cycle and the daemon's peak RSS (VmHWM);
//   - toml11's own parse of the spec files, one after another in this
//     process: the CPU a cold plan spends before anything of astro-tokend's,
//     and so the floor of its wall time on this machine's cores;
// next to what the Terraform provider's refresh sends for the same tokens
// (one GetApiToken each). Prints the machine, and PASS/MISS against the
// targets at 10,000 tokens; a MISS does not fail the run (wall time depends on
// the machine's load). Exit 1 when the run itself went wrong: a plan that is
// not a no-op, a request count other than one listing page per 1,000 tokens
// (one more allowed), a daemon cycle that did not finish.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <toml.hpp>

#include "cli/fixture.h"

namespace {

namespace testing = tokend::testing;

constexpr int kSpecFiles = 8;
constexpr int kTokensPerPage = 1000;  // the listing's page size
// Targets at 10,000 tokens.
constexpr int kTargetRequests = 11;
constexpr double kTargetWarmSeconds = 0.6;
constexpr double kTargetColdSeconds = 1.2;
constexpr double kTargetWarmMiB = 48;
constexpr double kTargetCycleSeconds = 0.15;
constexpr int kTimerCycles = 5;  // the daemon cycle is the median of these

struct ChildRun {
  int exit_code = -1;
  double seconds = 0;
  double max_rss_mib = 0;
  double cpu_seconds = 0;  // user + system
  std::string out;
  std::uint64_t requests = 0;
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
  run.out = testing::read_file(out_file);
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

// VmHWM of `pid` in MiB; -1 when unknown.
double peak_rss_mib(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmHWM:", 0) == 0) return static_cast<double>(std::stol(line.substr(6))) / 1024;
  return -1;
}

// The requests a no-op plan or cycle over `tokens` should send: one listing page per 1,000.
int expected_requests(int tokens) { return (tokens + kTokensPerPage - 1) / kTokensPerPage; }

bool requests_right(int tokens, std::uint64_t requests) {
  const auto expected = static_cast<std::uint64_t>(expected_requests(tokens));
  return requests >= expected && requests <= expected + 1;
}

struct CycleRun {
  double seconds = -1;  // the median of the timer-triggered cycles
  double fastest = -1, slowest = -1;
  std::uint64_t requests = 0;  // of all of them
  double daemon_peak_mib = -1;
  std::string log;
};

// The `duration=…s` of the `occurrence`-th (1-based) "reconcile finished" line of `log`.
std::optional<double> cycle_duration(const std::string& log, int occurrence) {
  std::size_t at = 0;
  for (int seen = 0; seen < occurrence; ++seen) {
    at = log.find("msg=\"reconcile finished\"", seen == 0 ? 0 : at + 1);
    if (at == std::string::npos) return std::nullopt;
  }
  const std::size_t line_end = log.find('\n', at);
  const std::string line =
      log.substr(at, line_end == std::string::npos ? std::string::npos : line_end - at);
  if (line.find("result=success") == std::string::npos) return std::nullopt;
  const std::size_t field = line.find(" duration=");
  if (field == std::string::npos) return std::nullopt;
  return std::atof(line.c_str() + field + 10);
}

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
    ++n;
  return n;
}

// Runs the daemon over the workspace (interval 2s, info log) until
// kTimerCycles cycles after the first have finished: the first runs at
// start-up, the others on the timer.
CycleRun run_daemon_cycle(testing::CliWorkspace& ws) {
  std::string config = testing::read_file(ws.config_path());
  const std::string warn = "level = \"warn\"";
  const std::size_t level = config.find(warn);
  if (level == std::string::npos) throw std::runtime_error("the workspace config has no log level");
  config.replace(level, warn.size(), "level = \"info\"");
  config += "[reconcile]\ninterval = \"2s\"\njitter = \"0s\"\n[server]\nlisten = \"\"\n";
  const std::string config_path = ws.dir().file("daemon.toml");
  testing::write_file(config_path, config);

  testing::RunOptions options;
  options.env[testing::kBearerEnv] = ws.sim().bearer_token();
  options.unset_env = {"CREDENTIALS_DIRECTORY", "NOTIFY_SOCKET", "WATCHDOG_USEC"};
  const std::string err_path = ws.dir().file("daemon.err");
  testing::BackgroundProcess daemon({TOKEND_BIN, "run", "-c", config_path}, options,
                                    ws.dir().file("daemon.out"), err_path);
  CycleRun run;
  bool reset = false;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(20 + 4 * kTimerCycles);
  while (std::chrono::steady_clock::now() < deadline && daemon.running()) {
    std::error_code ec;
    const std::string log =
        std::filesystem::exists(err_path, ec) ? testing::read_file(err_path) : std::string();
    const std::size_t finished = count_of(log, "msg=\"reconcile finished\"");
    if (finished >= 1 && !reset) {
      ws.control().reset_requests();  // the timer's cycle starts 2 s after the first
      reset = true;
    }
    if (finished >= 1 + kTimerCycles) {
      run.requests = ws.control().requests().total;
      run.daemon_peak_mib = peak_rss_mib(daemon.pid());
      std::vector<double> durations;
      for (int cycle = 2; cycle <= 1 + kTimerCycles; ++cycle)
        if (std::optional<double> seconds = cycle_duration(log, cycle))
          durations.push_back(*seconds);
      if (durations.size() == static_cast<std::size_t>(kTimerCycles)) {
        std::sort(durations.begin(), durations.end());
        run.seconds = durations[durations.size() / 2];
        run.fastest = durations.front();
        run.slowest = durations.back();
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  daemon.signal(SIGTERM);
  daemon.wait_for_exit(std::chrono::seconds(10));
  run.log = testing::read_file(err_path);
  return run;
}

// toml11::parse of every spec file in `dir`, one after another: CPU seconds
// (this thread's) and bytes.
struct TomlFloor {
  double cpu_seconds = 0;
  std::uintmax_t bytes = 0;
};
TomlFloor toml11_floor(const std::string& dir) {
  TomlFloor floor;
  const auto thread_cpu = [] {
    timespec now{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
  };
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".toml") continue;
    floor.bytes += entry.file_size();
    const double start = thread_cpu();
    toml::value parsed = toml::parse(entry.path().string());
    floor.cpu_seconds += thread_cpu() - start;
    if (!parsed.is_table()) throw std::runtime_error(entry.path().string() + " is not a table");
  }
  return floor;
}

struct ScaleResult {
  int tokens = 0;
  TomlFloor toml;
  ChildRun cold;
  std::optional<ChildRun> warm;  // when the cold run left a spec cache
  CycleRun cycle;
};

// Seeds a fleet of `tokens` and measures the plans and the daemon cycle.
// Throws on a run that went wrong.
ScaleResult measure(int tokens) {
  testing::CliOptions options;
  options.sim_rate_limits = true;  // the published Astro limits, as in production
  testing::CliWorkspace ws(options);
  const auto seed_start = std::chrono::steady_clock::now();
  testing::seed_managed_fleet(ws, tokens, kSpecFiles);
  std::printf(
      "\n%d tokens: seeded the simulator, %d spec files, the state and the sinks in %.1f s\n",
      tokens, kSpecFiles,
      std::chrono::duration<double>(std::chrono::steady_clock::now() - seed_start).count());

  const std::vector<std::string> args{"-c", ws.config_path(), "plan", "--detailed-exitcode"};
  const std::string env = std::string(testing::kBearerEnv) + "=" + ws.sim().bearer_token();
  const std::string out_file = ws.dir().file("plan.out");
  // The spec cache lives beside the SQLite state.
  const std::string cache_dir =
      (std::filesystem::path(ws.state_path()).parent_path() / "spec-cache").string();

  const auto plan_once = [&](const char* what) {
    // Let the simulator's one-second GET budget refill, as between two real plans.
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    ws.control().reset_requests();
    ChildRun run = run_measured(args, env, out_file);
    run.requests = ws.control().requests().total;
    if (run.exit_code != 0 || run.out != "No changes. Your tokens match the configuration.\n")
      throw std::runtime_error(std::string("the ") + what + " plan was not a no-op (exit " +
                               std::to_string(run.exit_code) + "):\n" + run.out);
    if (!requests_right(tokens, run.requests))
      throw std::runtime_error(std::string("the ") + what + " plan sent " +
                               std::to_string(run.requests) + " requests, expected " +
                               std::to_string(expected_requests(tokens)));
    return run;
  };

  ScaleResult result;
  result.tokens = tokens;
  plan_once("warm-up");  // page cache, dynamic loading
  std::filesystem::remove_all(cache_dir);
  result.cold = plan_once("cold");
  std::error_code ec;
  if (std::filesystem::exists(cache_dir, ec)) result.warm = plan_once("warm");

  result.cycle = run_daemon_cycle(ws);
  if (result.cycle.seconds < 0)
    throw std::runtime_error("the daemon did not finish " + std::to_string(kTimerCycles) +
                             " successful timer cycles; its log:\n" + result.cycle.log);
  const auto cycles = static_cast<std::uint64_t>(kTimerCycles);
  const auto expected = static_cast<std::uint64_t>(expected_requests(tokens));
  if (result.cycle.requests < cycles * expected || result.cycle.requests > cycles * (expected + 1))
    throw std::runtime_error("the daemon's " + std::to_string(kTimerCycles) + " cycles sent " +
                             std::to_string(result.cycle.requests) + " requests, expected " +
                             std::to_string(expected) + " each");
  result.cycle.requests = (result.cycle.requests + cycles - 1) / cycles;  // per cycle
  result.toml = toml11_floor(ws.dir().file("specs"));
  return result;
}

void print_run(const char* what, const ChildRun& run) {
  std::printf("  plan %-5s  wall %6.3f s  cpu %6.3f s  peak RSS %6.1f MiB  requests %llu\n", what,
              run.seconds, run.cpu_seconds, run.max_rss_mib,
              static_cast<unsigned long long>(run.requests));
}

}  // namespace

int main() {
  try {
    struct utsname machine {};
    uname(&machine);
    std::printf("bench_plan: a no-op `astro-tokend plan` and one daemon cycle (%d spec files)\n",
                kSpecFiles);
    std::printf("machine: %u CPUs (nproc), %s, %s %s\n", std::thread::hardware_concurrency(),
                cpu_model().c_str(), machine.sysname, machine.release);

    std::vector<ScaleResult> results;
    for (int tokens : {1000, 10000}) results.push_back(measure(tokens));

    std::printf("\nresults (load average %s):\n", load_average().c_str());
    for (const ScaleResult& r : results) {
      std::printf("%d tokens:\n", r.tokens);
      print_run("cold", r.cold);
      if (r.warm) {
        print_run("warm", *r.warm);
        std::printf("  warm/cold    wall %.2fx  peak RSS %.2fx\n", r.warm->seconds / r.cold.seconds,
                    r.warm->max_rss_mib / r.cold.max_rss_mib);
      } else {
        std::printf("  plan warm    (no spec cache)\n");
      }
      std::printf(
          "  daemon cycle %6.3f s  (median of %d; %.3f-%.3f s)  requests %llu per cycle  "
          "daemon peak RSS %.1f MiB\n",
          r.cycle.seconds, kTimerCycles, r.cycle.fastest, r.cycle.slowest,
          static_cast<unsigned long long>(r.cycle.requests), r.cycle.daemon_peak_mib);
      const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
      std::printf(
          "  toml11::parse alone  cpu %6.3f s for %.1f MB of specs (%.2f MB/s): a cold plan "
          "takes at least %.3f s on %u cores\n",
          r.toml.cpu_seconds, static_cast<double>(r.toml.bytes) / 1e6,
          static_cast<double>(r.toml.bytes) / 1e6 / std::max(r.toml.cpu_seconds, 1e-9),
          r.toml.cpu_seconds / cores, cores);
    }

    const ScaleResult& big = results.back();
    const ChildRun& warm = big.warm ? *big.warm : big.cold;
    const char* warm_name = big.warm ? "warm" : "cold (no cache)";
    std::printf("\ntargets at %d tokens:\n", big.tokens);
    std::printf("  plan %-16s wall      %6.3f s    <= %.1f s    %s\n", warm_name, warm.seconds,
                kTargetWarmSeconds, verdict(warm.seconds <= kTargetWarmSeconds));
    std::printf("  plan %-16s peak RSS  %6.1f MiB  <= %.0f MiB   %s\n", warm_name, warm.max_rss_mib,
                kTargetWarmMiB, verdict(warm.max_rss_mib <= kTargetWarmMiB));
    std::printf("  plan cold             wall      %6.3f s    <= %.1f s    %s\n", big.cold.seconds,
                kTargetColdSeconds, verdict(big.cold.seconds <= kTargetColdSeconds));
    std::printf("  daemon cycle          wall      %6.3f s    <= %.2f s   %s\n", big.cycle.seconds,
                kTargetCycleSeconds, verdict(big.cycle.seconds <= kTargetCycleSeconds));
    std::uint64_t most = std::max(big.cold.requests, big.cycle.requests);
    if (big.warm) most = std::max(most, big.warm->requests);
    std::printf("  requests (most of any run)  %4llu        <= %d       %s\n",
                static_cast<unsigned long long>(most), kTargetRequests,
                verdict(most <= static_cast<std::uint64_t>(kTargetRequests)));
    std::printf(
        "\nthe Terraform provider's refresh of the same tokens: %d GetApiToken requests "
        "(one per token); astro-tokend: %llu, %.0fx fewer\n",
        big.tokens, static_cast<unsigned long long>(big.cold.requests),
        big.cold.requests > 0
            ? static_cast<double>(big.tokens) / static_cast<double>(big.cold.requests)
            : 0.0);
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "bench_plan: %s\n", error.what());
    return 1;
  }
}
