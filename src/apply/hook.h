// The process seam of delivery hooks (product.md §4): after a value reaches
// its sink, the token's `on_delivery` program runs with the value on its
// stdin. Implementations: ProcessHookRunner (real child processes) and
// FakeHookRunner (tests of the engine).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "model/token.h"

namespace tokend::apply {

// Output kept of one run of a hook (stdout and stderr together); the rest is
// read and dropped.
inline constexpr std::size_t kMaxHookOutputBytes = 4096;

struct HookCommand {
  std::vector<std::string> argv;  // argv[0]: the absolute path of the program
  // The child's whole environment: nothing else is inherited.
  std::vector<std::pair<std::string, std::string>> environment;
  std::chrono::milliseconds timeout{30000};
};

struct HookResult {
  enum class Ending { Exited, Signaled, TimedOut, NotStarted };
  Ending ending = Ending::Exited;
  int code = 0;  // Exited: the exit status; Signaled: the signal number
  // What the hook wrote to stdout and stderr, as written (not scrubbed): at
  // most kMaxHookOutputBytes plus the input's size, so that a value that
  // straddles the limit is still whole; `truncated` when there was more.
  std::string output;
  bool truncated = false;
  std::string error;   // NotStarted: why ("cannot run /x: No such file or directory")
  double seconds = 0;  // from start to end (or to the kill)
  std::chrono::milliseconds timeout{0};  // TimedOut: the timeout that was hit

  bool ok() const { return ending == Ending::Exited && code == 0; }
  // "exited with status 3", "was killed by signal 9", "timed out after 2s and
  // was killed", or the NotStarted error.
  std::string describe() const;
};

class HookRunner {
 public:
  virtual ~HookRunner() = default;
  // Runs command.argv without a shell, with exactly command.environment, the
  // working directory "/", `input` as the whole of its stdin and its stdout
  // and stderr captured. Once command.timeout has passed the hook and
  // everything in its process group are killed (SIGKILL). Never throws; a
  // program that cannot be started is a NotStarted result. Thread-safe.
  virtual HookResult run(const HookCommand& command, const SecretValue& input) = 0;
};

// fork + execve of real programs. The child leads a new process group, gets
// the default signal mask and dispositions, and inherits no file descriptor
// but its stdin (a pipe already holding the input, then closed), stdout and
// stderr (one pipe back to this process).
class ProcessHookRunner final : public HookRunner {
 public:
  HookResult run(const HookCommand& command, const SecretValue& input) override;
};

// Records every call and answers with `respond` (default: exit 0, no
// output). Thread-safe.
class FakeHookRunner final : public HookRunner {
 public:
  struct Call {
    HookCommand command;
    std::string input;
  };
  using Responder = std::function<HookResult(const HookCommand&, const std::string& input)>;

  HookResult run(const HookCommand& command, const SecretValue& input) override;

  void respond(Responder responder);
  std::vector<Call> calls() const;

 private:
  mutable std::mutex mutex_;
  Responder responder_;
  std::vector<Call> calls_;
};

// A HookResult that exited with `code` after writing `output`.
HookResult exited(int code, std::string output = "");

}  // namespace tokend::apply
