// Test support: run programs, capture their output, manage temporary
// directories and background processes. Every wait here is bounded.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tokend::testing {

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal or timed out
  int signal = 0;      // the terminating signal, 0 when it exited
  bool timed_out = false;
  long max_rss_kb = 0;  // the child's peak resident set size (the kernel's, from wait4)
  std::string out;
  std::string err;
};

struct RunOptions {
  std::map<std::string, std::string> env;  // added to (or overriding) the inherited environment
  std::vector<std::string> unset_env;
  std::string cwd;
  std::string stdin_data;
  std::chrono::milliseconds timeout{60000};
};

// Runs argv[0] (a path) with argv, waits at most options.timeout (then SIGKILL).
ProcessResult run_process(const std::vector<std::string>& argv, const RunOptions& options = {});

// Runs the astro-tokend binary under test with `args`.
ProcessResult run_tokend(const std::vector<std::string>& args, const RunOptions& options = {});

// A child running in the background; killed (SIGKILL) and reaped on destruction.
// stdout and stderr go to files in `log_dir` (or /dev/null when empty).
class BackgroundProcess {
 public:
  BackgroundProcess(const std::vector<std::string>& argv, const RunOptions& options,
                    const std::string& stdout_path, const std::string& stderr_path);
  ~BackgroundProcess();
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;

  int pid() const { return pid_; }
  bool running();
  void signal(int sig);
  // Waits up to `timeout` for exit; returns the exit status like ProcessResult
  // (exit_code, signal), or nullopt on timeout.
  std::optional<ProcessResult> wait_for_exit(std::chrono::milliseconds timeout);

 private:
  int pid_ = -1;
  bool reaped_ = false;
};

// A fresh directory under $TMPDIR removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& content);

// Polls (every 10 ms) until `path` exists with non-empty content that ends in a
// newline, or `timeout` passes; returns the content without trailing whitespace.
std::optional<std::string> wait_for_file(const std::string& path,
                                         std::chrono::milliseconds timeout);

}  // namespace tokend::testing
