// The command line's habits, through the real binary: an unknown command is
// named with a suggestion, --version, and every subcommand's --help lists the
// global options.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "support/process.h"
#include "version.h"

using tokend::testing::ProcessResult;
using tokend::testing::run_tokend;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("an unknown command is named - with a suggestion when one is close", "[cli]") {
  struct Case {
    std::vector<std::string> args;
    std::string error;
  };
  const std::vector<Case> cases = {
      {{"plna"}, "Error: unknown command \"plna\" (did you mean \"plan\"?)\n"},
      {{"-c", "/nonexistent.toml", "aply", "--auto-approve"},
       "Error: unknown command \"aply\" (did you mean \"apply\"?)\n"},
      {{"--no-color", "histroy"},
       "Error: unknown command \"histroy\" (did you mean \"history\"?)\n"},
      {{"--config=/x.toml", "frobnicate"}, "Error: unknown command \"frobnicate\"\n"},
  };
  for (const Case& c : cases) {
    INFO(c.args[0]);
    ProcessResult result = run_tokend(c.args);
    CHECK(result.exit_code == 1);
    CHECK(result.out.empty());
    CHECK(result.err == c.error + "Run \"astro-tokend --help\" to see the commands.\n");
  }
}

TEST_CASE("the --version flag prints what the version command prints", "[cli]") {
  ProcessResult flag = run_tokend({"--version"});
  ProcessResult command = run_tokend({"version"});
  CHECK(flag.exit_code == 0);
  CHECK(command.exit_code == 0);
  CHECK(flag.out == "astro-tokend " + std::string(tokend::kVersion) + "\n");
  CHECK(flag.out == command.out);
}

TEST_CASE("every subcommand's --help lists the global options", "[cli]") {
  for (const auto& args : std::vector<std::vector<std::string>>{{"version", "--help"},
                                                                {"validate", "--help"},
                                                                {"plan", "--help"},
                                                                {"show", "--help"},
                                                                {"apply", "--help"},
                                                                {"run", "--help"},
                                                                {"state", "--help"},
                                                                {"state", "list", "--help"},
                                                                {"state", "show", "--help"},
                                                                {"state", "rm", "--help"},
                                                                {"import", "--help"},
                                                                {"adopt", "--help"},
                                                                {"history", "--help"}}) {
    ProcessResult result = run_tokend(args);
    INFO(args[0] << (args.size() > 2 ? " " + args[1] : ""));
    CHECK(result.exit_code == 0);
    CHECK(contains(result.out, "Global options (before or after the command):\n"));
    CHECK(contains(result.out, "  -c,--config FILE "));
    CHECK(contains(result.out, "  --no-color "));
  }
}

TEST_CASE("global options are accepted after the command too", "[cli]") {
  tokend::testing::TempDir dir;
  ProcessResult result = run_tokend({"validate", "-c", dir.file("missing.toml"), "--no-color"});
  CHECK(result.exit_code == 1);
  CHECK(contains(result.err, dir.file("missing.toml")));
}
