// Log lines when stderr is the systemd journal: the real binary started with
// JOURNAL_STREAM naming the file its stderr is (as systemd does for a service
// whose StandardError is the journal) prefixes each line with its syslog
// priority and leaves the time to journald; with JOURNAL_STREAM naming
// another file it logs as usual.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "cli/fixture.h"

using tokend::testing::CliWorkspace;
using tokend::testing::ProcessResult;
using tokend::testing::workspace_spec;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Runs `run --once` once with the simulator answering the first listing
// with a 503 (so the client logs a warning), stderr appended to a file whose
// device and inode JOURNAL_STREAM names (or, when `journal` is false, names
// with an inode off by one). Returns what was logged.
std::string logged_run(CliWorkspace& ws, bool journal) {
  const std::string err_path = ws.dir().file(journal ? "journal.err" : "plain.err");
  tokend::testing::write_file(err_path, "");
  struct stat st {};
  REQUIRE(stat(err_path.c_str(), &st) == 0);
  const std::string stream =
      std::to_string(static_cast<unsigned long long>(st.st_dev)) + ":" +
      std::to_string(static_cast<unsigned long long>(st.st_ino) + (journal ? 0 : 1));
  ws.control().set_faults({tokend::testing::fail_next("ListApiTokens", 503, 1)});
  tokend::testing::RunOptions options;
  options.env["JOURNAL_STREAM"] = stream;
  options.env[tokend::testing::kBearerEnv] = ws.sim().bearer_token();
  ProcessResult result =
      tokend::testing::run_process({"/bin/sh", "-c", "exec \"$0\" -c \"$1\" run --once 2>>\"$2\"",
                                    TOKEND_BIN, ws.config_path(), err_path},
                                   options);
  INFO(tokend::testing::read_file(err_path));
  REQUIRE(result.exit_code == 0);
  return tokend::testing::read_file(err_path);
}

}  // namespace

TEST_CASE("with stderr on the journal each log line starts with its syslog priority",
          "[cli][log]") {
  CliWorkspace ws;
  ws.write_spec("a.toml", workspace_spec("alpha", "alpha token"));

  SECTION("logfmt") {
    const std::string logged = logged_run(ws, true);
    const std::vector<std::string> lines = lines_of(logged);
    REQUIRE_FALSE(lines.empty());
    const std::regex line(R"(<[3467]>level=(debug|info|warn|error) msg=.*)");
    for (const std::string& text : lines) {
      INFO(text);
      CHECK(std::regex_match(text, line));
      CHECK(text.find("ts=") == std::string::npos);
    }
    CHECK(logged.find("<4>level=warn msg=\"astro api request failed, retrying\" "
                      "op=ListApiTokens reason=\"HTTP 503\" attempt=1 wait_ms=") !=
          std::string::npos);
  }
  SECTION("JSON, with typed values") {
    ws.write_config({ws.dir().file("specs")}, "format = \"json\"\n");
    const std::string logged = logged_run(ws, true);
    REQUIRE_FALSE(lines_of(logged).empty());
    for (const std::string& text : lines_of(logged)) {
      INFO(text);
      CHECK(std::regex_match(text, std::regex(R"(<[3467]>\{"level":.*\})")));
      CHECK(text.find("\"ts\"") == std::string::npos);
    }
    CHECK(std::regex_search(
        logged,
        std::regex(R"(<4>\{"level":"warn","msg":"astro api request failed, retrying",)"
                   R"("op":"ListApiTokens","reason":"HTTP 503","attempt":1,"wait_ms":\d+\})")));
  }
  SECTION("JOURNAL_STREAM naming another file changes nothing") {
    const std::vector<std::string> lines = lines_of(logged_run(ws, false));
    REQUIRE_FALSE(lines.empty());
    for (const std::string& text : lines) {
      INFO(text);
      CHECK(text.rfind("ts=", 0) == 0);
    }
  }
}
