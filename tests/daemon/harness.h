// Test harness for the daemon's integration tests: a config and specs in a
// temporary directory pointing at an astro-api-sim, the real astro-tokend
// binary running `run` in the background, its log, its HTTP endpoints and a
// test-owned NOTIFY_SOCKET. Every wait polls with a deadline.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/http.h"
#include "support/process.h"
#include "support/sim.h"

namespace tokend::testing {

struct DaemonConfig {
  std::string api_url;                      // the simulator's base URL
  std::string organization_id = kSimOrgId;  // [astro] organization_id
  std::string mode = "apply";
  std::string interval = "1s";
  std::string jitter = "0s";
  std::string listen = "127.0.0.1:0";
  std::string log_format = "text";
  std::string timeout = "5s";
  int parallelism = 4;
  std::string state = "path = \"state/state.db\"";  // the [state] table's keys
  std::string secrets_dir = "secrets";
  std::string extra;  // appended verbatim
};

// A WORKSPACE token on the simulator's default workspace, as TOML.
std::string workspace_token_toml(const std::string& key, const std::string& name,
                                 const std::string& description = "");

// Receives sd_notify datagrams on a unix socket of its own.
class NotifyListener {
 public:
  explicit NotifyListener(const std::string& path);
  ~NotifyListener();
  NotifyListener(const NotifyListener&) = delete;
  NotifyListener& operator=(const NotifyListener&) = delete;

  const std::string& path() const { return path_; }
  // Waits until a message containing `needle` arrives after the `from`-th
  // message; returns its index, or nullopt at the deadline.
  std::optional<size_t> wait_for(const std::string& needle, size_t from,
                                 std::chrono::milliseconds timeout);
  const std::vector<std::string>& messages() const { return messages_; }

 private:
  void drain(std::chrono::milliseconds timeout);
  std::string path_;
  int fd_ = -1;
  std::vector<std::string> messages_;
};

class DaemonUnderTest {
 public:
  // Writes the config (state, secrets and specs inside the temp dir).
  explicit DaemonUnderTest(const SimProcess& sim, DaemonConfig config = {});
  ~DaemonUnderTest();

  const std::string& dir() const { return dir_.path(); }
  std::string config_path() const { return dir_.file("astro-tokend.toml"); }
  std::string state_path() const { return dir_.file("state/state.db"); }
  std::string spec_path(const std::string& file) const { return dir_.file("tokens.d/" + file); }
  std::string sink_path(const std::string& key) const {
    return dir_.file("secrets/" + key + ".token");
  }

  void write_config(const DaemonConfig& config);
  // Written atomically (temporary file renamed over it), as editors do.
  void write_spec(const std::string& file, const std::string& toml);
  // The environment the daemon runs with: the bearer token in an env var.
  RunOptions run_options() const;

  // Starts `astro-tokend run -c CONFIG` (plus `notify_socket` as
  // NOTIFY_SOCKET when given) and waits for its "serving metrics" line when
  // the server is on, or its "daemon started" line.
  void start(const std::string& notify_socket = "");
  BackgroundProcess& process() { return *process_; }
  int pid() const { return process_->pid(); }

  std::string log() const;
  // Waits until `needle` appears in the log at or after byte `from`;
  // returns the offset just past it, or nullopt at the deadline.
  std::optional<size_t> wait_for_log(
      const std::string& needle, size_t from = 0,
      std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
  // How often `needle` appears in the log.
  size_t count_in_log(const std::string& needle) const;

  // http://127.0.0.1:PORT of the health server (from its log line).
  const std::string& origin() const { return origin_; }
  HttpResponse get(const std::string& path) const;
  // The value of the sample `series` (e.g. `x_total{result="success"}`) in
  // /metrics, or nullopt when absent.
  std::optional<double> metric(const std::string& series) const;

 private:
  std::string bearer_env_ = "TOKEND_TEST_API_TOKEN";
  std::string bearer_token_;
  TempDir dir_;
  std::unique_ptr<BackgroundProcess> process_;
  std::string origin_;
  bool serving_ = true;
};

// Polls `condition` every 20 ms until it holds or `timeout` passes.
template <typename Condition>
bool eventually(Condition condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace tokend::testing
