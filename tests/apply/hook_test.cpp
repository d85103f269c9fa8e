// ProcessHookRunner against real programs (/bin/sh scripts): the value on
// stdin only, exactly the given environment, exit statuses, output capture,
// and the timeout that kills the hook's whole process group.
#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "apply/hook.h"
#include "support/process.h"

using namespace tokend;
using apply::HookCommand;
using apply::HookResult;
using std::chrono::milliseconds;

namespace {

HookCommand shell(const std::string& script, milliseconds timeout = milliseconds(60000)) {
  HookCommand command;
  command.argv = {"/bin/sh", "-c", script, "hook"};
  command.environment = {{"PATH", "/usr/bin:/bin"}, {"ONLY_THIS", "yes"}};
  command.timeout = timeout;
  return command;
}

// NUL-separated /proc text as lines.
std::string lines_of(std::string text) {
  for (char& c : text)
    if (c == '\0') c = '\n';
  return text;
}

// Whether `pid` is gone (or a zombie nobody reaped yet).
bool dead(int pid) {
  const std::string stat = "/proc/" + std::to_string(pid) + "/stat";
  std::error_code ec;
  if (!std::filesystem::exists(stat, ec)) return true;
  std::string text;
  try {
    text = testing::read_file(stat);
  } catch (...) {
    return true;
  }
  const size_t paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() &&
         (text[paren + 2] == 'Z' || text[paren + 2] == 'X');
}

}  // namespace

TEST_CASE("a hook gets the value on stdin - its argv and exactly the given environment",
          "[apply][hook]") {
  testing::TempDir dir;
  const std::string secret = "astro-secret-value-123";
  apply::ProcessHookRunner runner;
  HookResult result = runner.run(
      shell("cat > '" + dir.file("stdin") + "'; cat /proc/$$/cmdline > '" + dir.file("cmdline") +
            "'; cat /proc/$$/environ > '" + dir.file("environ") + "'; pwd > '" + dir.file("cwd") +
            "'; ls /proc/$$/fd > '" + dir.file("fds") + "'; echo done"),
      SecretValue(secret));
  INFO(result.describe() << "\n" << result.output);
  REQUIRE(result.ok());
  CHECK(result.describe() == "exited with status 0");
  CHECK(result.output == "done\n");
  CHECK_FALSE(result.truncated);
  CHECK(testing::read_file(dir.file("stdin")) == secret);
  const std::string argv = lines_of(testing::read_file(dir.file("cmdline")));
  CHECK(argv.find("/bin/sh\n-c\n") == 0);
  CHECK(argv.find(secret) == std::string::npos);
  const std::string env = lines_of(testing::read_file(dir.file("environ")));
  CHECK(env.find(secret) == std::string::npos);
  CHECK(env.find("ONLY_THIS=yes\n") != std::string::npos);
  CHECK(env.find("PATH=/usr/bin:/bin\n") != std::string::npos);
  // sh adds PWD (and may add SHLVL or _); nothing of this process's own.
  for (const std::string& line :
       {std::string("HOME="), std::string("TOKEND_"), std::string("CATCH"), std::string("USER=")})
    CHECK(env.find("\n" + line) == std::string::npos);
  CHECK(testing::read_file(dir.file("cwd")) == "/\n");
  // stdin, stdout, stderr, and the descriptor ls itself opens to list them.
  const std::string fds = testing::read_file(dir.file("fds"));
  for (const char* fd : {"0\n", "1\n", "2\n"}) CHECK(fds.find(fd) != std::string::npos);
  CHECK(std::count(fds.begin(), fds.end(), '\n') <= 4);
}

TEST_CASE("a hook's exit status - signal - and unstartable programs are reported",
          "[apply][hook]") {
  apply::ProcessHookRunner runner;
  HookResult failed =
      runner.run(shell("echo on stdout; echo on stderr >&2; exit 3"), SecretValue("v"));
  CHECK(failed.ending == HookResult::Ending::Exited);
  CHECK(failed.code == 3);
  CHECK_FALSE(failed.ok());
  CHECK(failed.describe() == "exited with status 3");
  CHECK(failed.output == "on stdout\non stderr\n");

  HookResult killed = runner.run(shell("kill -TERM $$"), SecretValue("v"));
  CHECK(killed.ending == HookResult::Ending::Signaled);
  CHECK(killed.code == SIGTERM);
  CHECK(killed.describe().rfind("was killed by signal 15 (", 0) == 0);

  HookCommand missing;
  missing.argv = {"/nonexistent/astro-tokend-hook"};
  HookResult not_started = runner.run(missing, SecretValue("v"));
  CHECK(not_started.ending == HookResult::Ending::NotStarted);
  CHECK(not_started.describe() ==
        "cannot run /nonexistent/astro-tokend-hook: No such file or directory");
}

TEST_CASE("a hook starts with no blocked or ignored signals - whatever this process has",
          "[apply][hook]") {
  sigset_t term, previous;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  REQUIRE(pthread_sigmask(SIG_BLOCK, &term, &previous) == 0);
  struct sigaction ignore {
  }, old_pipe{};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ignore, &old_pipe);
  apply::ProcessHookRunner runner;
  HookResult result = runner.run(shell("kill -TERM $$; exit 0"), SecretValue("v"));
  HookResult pipe = runner.run(shell("kill -PIPE $$; exit 0"), SecretValue("v"));
  sigaction(SIGPIPE, &old_pipe, nullptr);
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  CHECK(result.ending == HookResult::Ending::Signaled);
  CHECK(result.code == SIGTERM);
  CHECK(pipe.ending == HookResult::Ending::Signaled);
  CHECK(pipe.code == SIGPIPE);
}

TEST_CASE("a hook that ignores stdin - or gets a large value - does not disturb this process",
          "[apply][hook]") {
  apply::ProcessHookRunner runner;
  HookResult ignores = runner.run(shell("exit 0"), SecretValue(std::string(100000, 'x')));
  CHECK(ignores.ok());
  HookResult counts = runner.run(shell("wc -c"), SecretValue(std::string(100000, 'x')));
  CHECK(counts.ok());
  CHECK(counts.output.find("100000") != std::string::npos);
}

TEST_CASE("hook output is kept up to its limit plus the value's size - the rest is dropped",
          "[apply][hook]") {
  apply::ProcessHookRunner runner;
  const std::string value(100, 'v');
  HookResult result = runner.run(
      shell("head -c 20000 /dev/zero | tr '\\0' 'a'; echo; echo after >&2"), SecretValue(value));
  REQUIRE(result.ok());
  CHECK(result.truncated);
  CHECK(result.output.size() == apply::kMaxHookOutputBytes + value.size());
  CHECK(result.output.find_first_not_of('a') == std::string::npos);
}

TEST_CASE("a hook that outlives its timeout is killed with its whole process group",
          "[apply][hook]") {
  testing::TempDir dir;
  apply::ProcessHookRunner runner;
  const auto started = std::chrono::steady_clock::now();
  HookResult result =
      runner.run(shell("sleep 600 & echo $! > '" + dir.file("child") + "'; echo started; wait",
                       milliseconds(1500)),
                 SecretValue("v"));
  const auto took = std::chrono::steady_clock::now() - started;
  CHECK(result.ending == HookResult::Ending::TimedOut);
  CHECK(result.describe() == "timed out after 1.5s and was killed");
  CHECK(result.output == "started\n");
  CHECK(took >= milliseconds(1500));
  CHECK(took < std::chrono::seconds(60));  // generous: the machine may be loaded
  const int child = std::stoi(testing::read_file(dir.file("child")));
  // SIGKILL is sent to the group before run() returns; the kernel finishes
  // the grandchild off asynchronously. Bounded wait.
  bool gone = dead(child);
  for (int i = 0; i < 500 && !gone; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
    gone = dead(child);
  }
  CHECK(gone);
  if (!gone) kill(child, SIGKILL);
}

TEST_CASE("a hook that ends while its child keeps the output open returns at its exit",
          "[apply][hook]") {
  testing::TempDir dir;
  apply::ProcessHookRunner runner;
  HookResult result = runner.run(
      shell("sleep 600 & echo $! > '" + dir.file("child") + "'; echo bye", milliseconds(60000)),
      SecretValue("v"));
  const int child = std::stoi(testing::read_file(dir.file("child")));
  kill(child, SIGKILL);
  CHECK(result.ok());
  CHECK(result.output == "bye\n");
  CHECK(result.seconds < 30);
}

TEST_CASE("FakeHookRunner records each call and answers as told", "[apply][hook]") {
  apply::FakeHookRunner fake;
  HookCommand command = shell("true");
  CHECK(fake.run(command, SecretValue("one")).ok());
  fake.respond([](const HookCommand&, const std::string& input) {
    return apply::exited(input == "two" ? 4 : 0, "said " + input);
  });
  HookResult second = fake.run(command, SecretValue("two"));
  CHECK(second.code == 4);
  CHECK(second.output == "said two");
  auto calls = fake.calls();
  REQUIRE(calls.size() == 2);
  CHECK(calls[0].input == "one");
  CHECK(calls[1].command.argv == command.argv);
}
