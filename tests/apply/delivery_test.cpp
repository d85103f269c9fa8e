// The pure parts of delivery hooks: their environment and the scrubbing of
// their output.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <optional>
#include <string>

#include "apply/delivery.h"

using namespace tokend;
using apply::scrub_hook_output;

TEST_CASE("a hook's environment is PATH - LANG - and the four ASTRO_TOKEND variables",
          "[apply][delivery]") {
  const char* had = std::getenv("LANG");
  const std::optional<std::string> lang = had ? std::optional<std::string>(had) : std::nullopt;
  setenv("LANG", "C.UTF-8", 1);
  setenv("ASTRO_API_TOKEN", "the-bearer-token", 1);
  auto env =
      apply::hook_environment("ci", "clm1", "/tokens/ci.token", apply::DeliveryAction::Rotate);
  std::vector<std::pair<std::string, std::string>> expected{
      {"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
      {"LANG", "C.UTF-8"},
      {"ASTRO_TOKEND_ADDRESS", "astro_api_token.ci"},
      {"ASTRO_TOKEND_TOKEN_ID", "clm1"},
      {"ASTRO_TOKEND_SINK", "/tokens/ci.token"},
      {"ASTRO_TOKEND_ACTION", "rotate"}};
  CHECK(env == expected);
  unsetenv("LANG");
  env = apply::hook_environment("ci", "clm1", "/tokens/ci.token", apply::DeliveryAction::Deliver);
  CHECK(env.size() == 5);
  CHECK(env.back() == std::pair<std::string, std::string>{"ASTRO_TOKEND_ACTION", "deliver"});
  unsetenv("ASTRO_API_TOKEN");
  if (lang) setenv("LANG", lang->c_str(), 1);
}

TEST_CASE("hook output never carries the value - even cut at the capture limit",
          "[apply][delivery]") {
  const std::string secret = "tok-SECRET-0123456789";
  struct Case {
    std::string output;
    bool truncated;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"", false, ""},
      {"reloaded\n", false, "reloaded\n"},
      {"got " + secret + "\n", false, "got (sensitive value)\n"},
      {secret + secret, false, "(sensitive value)(sensitive value)"},
      {"partial tok-SEC", false, "partial tok-SEC"},   // whole output: not a cut value
      {"cut here tok-SECRET-01", true, "cut here …"},  // the capture stopped inside it
      {"cut here xyz", true, "cut here xyz…"},
      {"bell\a and tab\t and\r\n", false, "bell? and tab\t and?\n"},
      {"bad \xff utf-8", false, "bad ? utf-8"},
  };
  for (const Case& c : cases) {
    INFO(c.output);
    CHECK(scrub_hook_output(c.output, secret, c.truncated) == c.expected);
  }
  // Longer than the limit: cut there, never inside a UTF-8 sequence.
  std::string long_output(apply::kMaxHookOutputBytes - 1, 'a');
  long_output += "é and more";
  const std::string cut = scrub_hook_output(long_output, secret, false);
  CHECK(cut == std::string(apply::kMaxHookOutputBytes - 1, 'a') + "…");
}
