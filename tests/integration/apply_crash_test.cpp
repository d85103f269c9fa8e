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
  // The moment of each crash is random within the creating part of a run: once
  // a random number of creates were answered (the simulator's request log), so
  // that it falls there however fast the machine is at the time.
  std::mt19937 random(20261128);
  std::uniform_int_distribution<uint64_t> answered_creates(1, kTokens * 3 / 4);
  int interrupted_mid_creation = 0;
  for (int trial = 0; trial < kTrials; ++trial) {
    const uint64_t creates = answered_creates(random);
    INFO("trial " << trial << ": SIGKILL once " << creates << " creates were answered");
    ApplyWorkspace ws;
    ws.write_spec("many.toml", many_token_specs("crash", kTokens, ws.sim().org_id()));
    slow_down(ws);
    {
      BackgroundProcess victim(ws.argv({"apply", "--auto-approve"}), ws.run_options(),
                               ws.dir().file("victim.out"), ws.dir().file("victim.err"));
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      while (ws.control().requests().count("CreateApiToken") < creates && victim.running() &&
             std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
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
