// Apply benchmark: astro-tokend creates 500 tokens with three roles each
// against astro-api-sim under rate limits get=25,post=100,delete=5 (the
// config's [astro.rate_limits] says post = 100 too), then reports, from the
// simulator's request log:
//   - API calls per created token (CreateApiToken + UpdateApiTokenRoles;
//     target 2.0, against the Terraform provider's 5: two lookups, create,
//     roles, read-back),
//   - the achieved POST rate as a share of the limit (POSTs over the
//     wall-clock span from the first to the last; target >= 0.9),
//   - the share of 429 answers (target <= 2%),
// each with PASS or MISS. Figures are reported, not asserted: the exit code
// is 0 unless the apply itself fails (or the set-up does).
#include <sys/utsname.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include "integration/apply_fixture.h"

using namespace tokend;
using namespace tokend::testing;
using Steady = std::chrono::steady_clock;

namespace {

constexpr int kTokens = 500;
constexpr double kPostLimit = 100;
constexpr const char* kSecondDeployment = "clbenchdeployment00000002";

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos)
      return line.substr(line.find(':') + 2);
  return "unknown";
}

std::string kernel() {
  utsname name{};
  if (uname(&name) != 0) return "unknown";
  return std::string(name.sysname) + " " + name.release;
}

std::string specs() {
  std::string text;
  for (int i = 0; i < kTokens; ++i) {
    char key[16];
    std::snprintf(key, sizeof key, "bench_%03d", i);
    text += "[api_token." + std::string(key) + "]\nname = \"" + key +
            "\"\ntype = \"WORKSPACE\"\nrole = \"WORKSPACE_OPERATOR\"\nroles = [\n"
            "  { role = \"WORKSPACE_OPERATOR\", entity_id = \"" +
            kSimWorkspaceId +
            "\", entity_type = \"WORKSPACE\" },\n"
            "  { role = \"DEPLOYMENT_ADMIN\", entity_id = \"" +
            kSimDeploymentId +
            "\", entity_type = \"DEPLOYMENT\" },\n"
            "  { role = \"DEPLOYMENT_ADMIN\", entity_id = \"" +
            kSecondDeployment + "\", entity_type = \"DEPLOYMENT\" },\n]\n\n";
  }
  return text;
}

const char* verdict(bool pass) { return pass ? "PASS" : "MISS"; }

// Watches the simulator's POST count (GET /_sim/requests, which is neither
// rate limited nor logged) and remembers when it first and last moved.
class PostWatcher {
 public:
  explicit PostWatcher(SimControl control)
      : control_(std::move(control)), thread_([this] { run(); }) {}
  ~PostWatcher() { stop(); }
  void stop() {
    done_ = true;
    if (thread_.joinable()) thread_.join();
  }
  // Seconds between the first and the last POST seen (resolution: the poll interval).
  double span_seconds() const { return std::chrono::duration<double>(last_ - first_).count(); }
  bool saw_posts() const { return seen_ > 0; }

 private:
  static uint64_t posts(const RequestStats& stats) {
    return stats.count("CreateApiToken") + stats.count("UpdateApiTokenRoles") +
           stats.count("UpdateApiToken") + stats.count("RotateApiToken");
  }
  void run() {
    while (!done_) {
      const auto before = Steady::now();
      RequestStats stats;
      try {
        stats = control_.requests();
      } catch (const std::exception&) {
        continue;
      }
      const auto now = Steady::now();
      const uint64_t count = posts(stats);
      if (count > seen_) {
        // The first POST happened after the previous poll; the newest before this answer.
        if (seen_ == 0) first_ = previous_poll_;
        last_ = now;
        seen_ = count;
      }
      previous_poll_ = before;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  SimControl control_;
  std::atomic<bool> done_{false};
  uint64_t seen_ = 0;
  Steady::time_point previous_poll_ = Steady::now(), first_{}, last_{};
  std::thread thread_;
};

}  // namespace

int main() {
  try {
    TempDir seed_dir;
    const std::string seed = seed_dir.file("seed.json");
    write_file(seed, std::string("{\"workspaces\": [{\"id\": \"") + kSimWorkspaceId +
                         "\", \"name\": \"bench\"}],\n \"deployments\": [{\"id\": \"" +
                         kSimDeploymentId + "\", \"name\": \"one\", \"workspaceId\": \"" +
                         kSimWorkspaceId + "\"}, {\"id\": \"" + kSecondDeployment +
                         "\", \"name\": \"two\", \"workspaceId\": \"" + kSimWorkspaceId +
                         "\"}]}\n");
    ApplyWorkspaceOptions options;
    options.sim.rate_limits = true;
    options.sim.rate_limits_spec = "get=25,post=100,delete=5";
    options.sim.seed_file = seed;
    options.client_rate_limits = "get = 25\npost = 100\ndelete = 5\n";
    ApplyWorkspace ws(options);
    ws.write_spec("bench.toml", specs());

    std::cout << "machine: " << std::thread::hardware_concurrency() << " cpus (nproc "
              << sysconf(_SC_NPROCESSORS_ONLN) << "), " << cpu_model() << ", " << kernel() << "\n";
    std::cout
        << "apply: " << kTokens
        << " tokens with 3 roles each; simulator and config limits get=25,post=100,delete=5\n";

    PostWatcher watcher(ws.control());
    const auto started = Steady::now();
    ProcessResult result = ws.apply();
    const double seconds = std::chrono::duration<double>(Steady::now() - started).count();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    watcher.stop();
    if (result.exit_code != 0) {
      std::cerr << "bench_apply: the apply failed (exit " << result.exit_code << ")\n"
                << result.err;
      return 1;
    }

    const RequestStats stats = ws.control().requests();
    const uint64_t created = stats.count("CreateApiToken", 200);
    const uint64_t create_and_roles =
        stats.count("CreateApiToken") + stats.count("UpdateApiTokenRoles");
    uint64_t posts = 0, rate_limited = 0;
    for (const auto& request : stats.requests) {
      if (request.method == "POST") ++posts;
      if (request.status == 429) ++rate_limited;
    }
    const double calls_per_token =
        created ? static_cast<double>(create_and_roles) / static_cast<double>(created) : 0;
    const double span = watcher.span_seconds();
    const double post_rate = span > 0 ? static_cast<double>(posts) / span : 0;
    const double rate_share = post_rate / kPostLimit;
    const double share_429 =
        stats.total ? static_cast<double>(rate_limited) / static_cast<double>(stats.total) : 0;

    std::printf("apply took %.2f s, %llu API requests in all\n", seconds,
                static_cast<unsigned long long>(stats.total));
    std::printf("tokens created:              %llu of %d\n",
                static_cast<unsigned long long>(created), kTokens);
    std::printf(
        "calls per created token:     %.2f (target 2.0; Terraform provider 5, %.1fx as many)  %s\n",
        calls_per_token, calls_per_token > 0 ? 5.0 / calls_per_token : 0.0,
        verdict(created == kTokens && calls_per_token <= 2.0 + 1e-9));
    std::printf(
        "POST rate:                   %.1f/s over %.2f s = %.2f of the limit %.0f/s (target >= "
        "0.90)  %s\n",
        post_rate, span, rate_share, kPostLimit, verdict(rate_share >= 0.9));
    std::printf("429 answers:                 %llu of %llu = %.2f%% (target <= 2%%)  %s\n",
                static_cast<unsigned long long>(rate_limited),
                static_cast<unsigned long long>(stats.total), share_429 * 100,
                verdict(share_429 <= 0.02));
    return 0;
  } catch (const std::exception& error) {
    std::cerr << "bench_apply: " << error.what() << "\n";
    return 1;
  }
}
