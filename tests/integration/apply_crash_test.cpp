// Crash safety: apply is killed with SIGKILL at a random moment while it
// creates 100 tokens, then run again. Nothing may be created twice, lost, or
// left unrecorded; every value must reach its sink.
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <random>
#include <thread>

#include "integration/apply_fixture.h"

using namespace tokend;
using namespace tokend::testing;

namespace {

constexpr int kTokens = 100;
constexpr int kTrials = 10;

// Answers take a moment, so that a run lasts long enough to be interrupted anywhere.
void slow_down(const ApplyWorkspace& ws) { ws.control().set_faults({add_latency("*", 10)}); }

}  // namespace

TEST_CASE("apply killed at a random moment while creating 100 tokens recovers on the next run",
          "[integration][apply]") {
  // When an uninterrupted run starts creating, and when it ends.
  std::chrono::milliseconds first_create{0}, typical{0};
  {
    ApplyWorkspace ws;
    ws.write_spec("many.toml", many_token_specs("crash", kTokens, ws.sim().org_id()));
    slow_down(ws);
    const auto started = std::chrono::steady_clock::now();
    BackgroundProcess run(ws.argv({"apply", "--auto-approve"}), ws.run_options(),
                          ws.dir().file("run.out"), ws.dir().file("run.err"));
    const auto deadline = started + std::chrono::seconds(60);
    while (ws.control().requests().count("CreateApiToken") == 0 && run.running() &&
           std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    first_create = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    auto finished = run.wait_for_exit(std::chrono::seconds(60));
    typical = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    INFO(read_file(ws.dir().file("run.err")));
    REQUIRE(finished);
    REQUIRE(finished->exit_code == 0);
    CHECK(convergence_problems(ws, "crash", kTokens) == "");
  }
  INFO("an uninterrupted run starts creating after "
       << first_create.count() << " ms and ends after " << typical.count() << " ms");
  REQUIRE(first_create < typical);

  // The moment of each crash: anywhere in the creating part of a run.
  std::mt19937 random(20261128);
  std::uniform_int_distribution<long> moment(first_create.count(), typical.count());
  int interrupted_mid_creation = 0;
  for (int trial = 0; trial < kTrials; ++trial) {
    const std::chrono::milliseconds delay{moment(random)};
    INFO("trial " << trial << ": SIGKILL after " << delay.count() << " ms");
    ApplyWorkspace ws;
    ws.write_spec("many.toml", many_token_specs("crash", kTokens, ws.sim().org_id()));
    slow_down(ws);
    {
      BackgroundProcess victim(ws.argv({"apply", "--auto-approve"}), ws.run_options(),
                               ws.dir().file("victim.out"), ws.dir().file("victim.err"));
      std::this_thread::sleep_for(delay);  // the random moment of the crash, not a synchronisation
      victim.signal(SIGKILL);
      REQUIRE(victim.wait_for_exit(std::chrono::seconds(10)));
    }
    const size_t created_before_crash = ws.control().tokens().size();
    if (created_before_crash > 0 && created_before_crash < kTokens) ++interrupted_mid_creation;
    ws.keep_output(read_file(ws.dir().file("victim.out")) + read_file(ws.dir().file("victim.err")));
    ProcessResult recovered = ws.apply();
    INFO(recovered.out << recovered.err);
    REQUIRE(recovered.exit_code == 0);
    CHECK(convergence_problems(ws, "crash", kTokens) == "");
    ProcessResult settled = ws.apply();
    REQUIRE(settled.exit_code == 0);
    CHECK_THAT(settled.out, Catch::Contains("No changes."));
    for (const std::string& value : ws.control().issued_values())
      CHECK(ws.transcript().find(value) == std::string::npos);
  }
  // The crashes did hit the creates, not only the planning before them.
  CHECK(interrupted_mid_creation >= kTrials / 2);
}
