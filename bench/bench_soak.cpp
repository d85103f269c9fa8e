// Soak: astro-tokend run against astro-api-sim behind the fault-injecting
// proxy, one request in five answered 503 without reaching the simulator
// (creates among them come back ambiguous and are resolved), while a spec
// file is edited every few seconds (descriptions change, a token comes and
// goes). Prints the machine, and the daemon's resident set (VmRSS) and open
// file descriptors (/proc/PID/fd) at the start and at the end, over a few
// one-second samples each: the mean resident set, and the fewest descriptors
// (a sample taken during a cycle also counts the cycle's connections and
// files, which a leak is not); fails (exit 1) when either grew by 10 % or
// more, when the daemon died, or when no cycle succeeded.
//
//   bench_soak [--duration D]   D: seconds, or with s/m/h ("90s", "10m"); default 10m
//   BENCH_SHOW_LOG=1 prints the daemon's log.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/fault_proxy.h"
#include "support/process.h"
#include "support/sim.h"

namespace testing = tokend::testing;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

constexpr int kTokens = 30;       // managed from the start
constexpr int kFaultEvery = 5;    // one request in five fails: 20 %
constexpr int kEditEverySec = 3;  // a spec edit this often
constexpr int kWindow = 5;        // samples averaged at the start and at the end
constexpr double kMaxGrowth = 0.10;

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

// VmRSS of `pid` in KiB; -1 when it cannot be read.
long rss_kib(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

// Open file descriptors of `pid`; -1 when they cannot be listed.
long open_fds(int pid) {
  std::error_code ec;
  long n = 0;
  for (std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), end;
       !ec && it != end; it.increment(ec))
    ++n;
  return ec ? -1 : n;
}

// What each open descriptor of `pid` refers to ("socket:[123]", a path).
std::vector<std::string> fd_targets(int pid) {
  std::vector<std::string> out;
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), end;
       !ec && it != end; it.increment(ec)) {
    std::error_code link_ec;
    const std::filesystem::path target = std::filesystem::read_symlink(it->path(), link_ec);
    out.push_back(it->path().filename().string() + " -> " +
                  (link_ec ? std::string("?") : target.string()));
  }
  return out;
}

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// "600", "90s", "10m", "1h" as seconds; throws on anything else.
int parse_duration(const std::string& text) {
  size_t used = 0;
  const long value = std::stol(text, &used);
  const std::string unit = text.substr(used);
  long factor = 0;
  if (unit.empty() || unit == "s") factor = 1;
  if (unit == "m") factor = 60;
  if (unit == "h") factor = 3600;
  if (factor == 0 || value <= 0) throw std::invalid_argument("bad --duration " + text);
  return static_cast<int>(value * factor);
}

std::string token_toml(const std::string& key, const std::string& description) {
  return "[api_token." + key + "]\nname = \"soak " + key + "\"\ndescription = \"" + description +
         "\"\ntype = \"WORKSPACE\"\nrole = \"WORKSPACE_OPERATOR\"\n"
         "roles = [{ role = \"WORKSPACE_OPERATOR\", entity_id = \"" +
         testing::kSimWorkspaceId + "\", entity_type = \"WORKSPACE\" }]\n\n";
}

// The edited spec file after `edit` edits: three tokens whose description
// changes every time, and a fourth present every other time.
std::string edited_specs(int edit) {
  std::string toml;
  for (int i = 0; i < 3; ++i)
    toml += token_toml("edited_" + std::to_string(i), "edit " + std::to_string(edit));
  if (edit % 2 == 1) toml += token_toml("coming_and_going", "edit " + std::to_string(edit));
  return toml;
}

double mean(const std::vector<long>& values) {
  return values.empty() ? 0
                        : static_cast<double>(std::accumulate(values.begin(), values.end(), 0L)) /
                              static_cast<double>(values.size());
}

}  // namespace

int main(int argc, char** argv) {
  int run_seconds = 600;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "--duration" && i + 1 < argc)
        run_seconds = parse_duration(argv[++i]);
      else if (arg.rfind("--duration=", 0) == 0)
        run_seconds = parse_duration(arg.substr(11));
      else
        throw std::invalid_argument("usage: bench_soak [--duration SECONDS|90s|10m]");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_soak: %s\n", e.what());
    return 2;
  }
  if (run_seconds < 4 * kWindow) run_seconds = 4 * kWindow;

  try {
    testing::SimOptions sim_options;
    sim_options.rate_limits = false;
    testing::SimProcess sim(sim_options);
    testing::FaultProxy proxy(sim.base_url());
    proxy.set_rules(
        {testing::error_status(testing::every_nth(testing::any_request(), kFaultEvery), 503)});
    testing::TempDir dir;
    std::filesystem::create_directories(dir.file("tokens.d"));
    std::string fleet;
    for (int i = 0; i < kTokens; ++i)
      fleet += token_toml("svc_" + std::to_string(i), "soak benchmark");
    testing::write_file(dir.file("tokens.d/fleet.toml"), fleet);
    testing::write_file(dir.file("tokens.d/edited.toml"), edited_specs(0));
    testing::write_file(
        dir.file("astro-tokend.toml"),
        "[astro]\norganization_id = \"" + std::string(testing::kSimOrgId) + "\"\napi_url = \"" +
            proxy.url() +
            "\"\ntoken_env = \"BENCH_API_TOKEN\"\ntimeout = \"5s\"\n[astro.rate_limits]\n"
            "get = 1000\npost = 1000\ndelete = 1000\n[specs]\npaths = [\"tokens.d\"]\n"
            "[state]\npath = \"state/state.db\"\n[reconcile]\ninterval = \"2s\"\n"
            "jitter = \"0s\"\n[secrets]\ndir = \"secrets\"\n[server]\nlisten = \"127.0.0.1:0\"\n");
    testing::RunOptions options;
    options.env["BENCH_API_TOKEN"] = sim.bearer_token();
    options.unset_env = {"CREDENTIALS_DIRECTORY", "NOTIFY_SOCKET", "WATCHDOG_USEC"};

    const auto started = std::chrono::steady_clock::now();
    const auto deadline = started + seconds(run_seconds);
    testing::BackgroundProcess daemon({TOKEND_BIN, "run", "-c", dir.file("astro-tokend.toml")},
                                      options, dir.file("daemon.out"), dir.file("daemon.err"));
    const auto log = [&] {
      std::error_code ec;
      return std::filesystem::exists(dir.file("daemon.err"), ec)
                 ? testing::read_file(dir.file("daemon.err"))
                 : std::string();
    };

    // Warm-up: until a cycle succeeded (every token created and delivered)
    // and a tenth of the run (at least 5 s) passed, so that pools, caches
    // and the allocator have settled before the first sample.
    const auto warm_until = started + std::max(seconds(5), seconds(run_seconds / 10));
    int edit = 0;
    auto next_edit = started + seconds(kEditEverySec);
    const auto edit_if_due = [&] {
      if (std::chrono::steady_clock::now() < next_edit) return;
      testing::write_file(dir.file("tokens.d/edited.toml.tmp"), edited_specs(++edit));
      std::filesystem::rename(dir.file("tokens.d/edited.toml.tmp"),
                              dir.file("tokens.d/edited.toml"));
      next_edit += seconds(kEditEverySec);
    };
    while (std::chrono::steady_clock::now() < deadline &&
           (std::chrono::steady_clock::now() < warm_until ||
            log().find("msg=\"reconcile finished\" result=success") == std::string::npos)) {
      if (!daemon.running()) throw std::runtime_error("the daemon died:\n" + log());
      edit_if_due();
      std::this_thread::sleep_for(milliseconds(100));
    }

    // Samples every second; the first kWindow are the start, the last kWindow the end.
    std::vector<long> rss, fds;
    std::vector<std::string> last_targets;  // at the last sample, printed when fds grew
    auto next_sample = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() < deadline ||
           rss.size() < static_cast<size_t>(2 * kWindow)) {
      if (!daemon.running()) throw std::runtime_error("the daemon died:\n" + log());
      edit_if_due();
      if (std::chrono::steady_clock::now() >= next_sample) {
        rss.push_back(rss_kib(daemon.pid()));
        fds.push_back(open_fds(daemon.pid()));
        last_targets = fd_targets(daemon.pid());
        next_sample += seconds(1);
      }
      std::this_thread::sleep_for(milliseconds(50));
    }
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const uint64_t faults = proxy.requests().size() / kFaultEvery;
    const uint64_t proxied = proxy.requests().size();
    daemon.signal(SIGTERM);
    auto exit = daemon.wait_for_exit(seconds(10));
    const std::string text = log();
    const size_t cycles = count(text, "msg=\"reconcile finished\"");
    const size_t successes = count(text, "msg=\"reconcile finished\" result=success");
    const size_t reloads = count(text, "msg=\"configuration reloaded\"");

    const std::vector<long> rss_start(rss.begin(), rss.begin() + kWindow);
    const std::vector<long> rss_end(rss.end() - kWindow, rss.end());
    const std::vector<long> fds_start(fds.begin(), fds.begin() + kWindow);
    const std::vector<long> fds_end(fds.end() - kWindow, fds.end());
    const double rss_growth = mean(rss_end) / mean(rss_start) - 1;
    const long fds_start_min = *std::min_element(fds_start.begin(), fds_start.end());
    const long fds_end_min = *std::min_element(fds_end.begin(), fds_end.end());
    const double fds_growth =
        static_cast<double>(fds_end_min) / static_cast<double>(fds_start_min) - 1;
    const bool rss_ok = mean(rss_start) > 0 && rss_growth < kMaxGrowth;
    const bool fds_ok = fds_start_min > 0 && fds_growth < kMaxGrowth;
    const bool exit_ok = exit && exit->exit_code == 0;

    std::printf("machine: nproc %ld, %s\n", sysconf(_SC_NPROCESSORS_ONLN), cpu_model().c_str());
    std::printf(
        "soak: %.0f s wall, %d + 3-4 tokens, 1 request in %d answered 503 (%llu of %llu), a spec "
        "edit every %d s (%d edits, %zu reloads)\n",
        wall, kTokens, kFaultEvery, static_cast<unsigned long long>(faults),
        static_cast<unsigned long long>(proxied), kEditEverySec, edit, reloads);
    std::printf("cycles: %zu (%zu successful)\n", cycles, successes);
    std::printf("rss (VmRSS): start %.1f MiB, end %.1f MiB, growth %+.1f %%   limit < 10 %%   %s\n",
                mean(rss_start) / 1024, mean(rss_end) / 1024, rss_growth * 100,
                rss_ok ? "PASS" : "FAIL");
    std::printf(
        "open fds (fewest of %d samples): start %ld, end %ld, growth %+.1f %%   limit < 10 %%   "
        "%s\n",
        kWindow, fds_start_min, fds_end_min, fds_growth * 100, fds_ok ? "PASS" : "FAIL");
    if (!fds_ok)
      for (const std::string& target : last_targets) std::printf("  fd %s\n", target.c_str());
    std::printf("daemon exit: %s\n", exit_ok ? "0 after SIGTERM" : "abnormal");
    if (successes == 0 || std::getenv("BENCH_SHOW_LOG"))
      std::printf("daemon log:\n%s\n", text.c_str());
    if (!rss_ok || !fds_ok || !exit_ok || successes == 0) return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_soak: %s\n", e.what());
    return 1;
  }
  return 0;
}
