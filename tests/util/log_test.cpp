// The logger's formats (logfmt, JSON with typed values, human sentences), the
// journal style, and how it recognises that stderr is the journal.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <limits>
#include <optional>
#include <regex>
#include <sstream>
#include <string>

#include "util/log.h"

using tokend::LogFormat;
using tokend::Logger;
using tokend::LogLevel;
using tokend::LogStyle;
using tokend::LogValue;

namespace {

std::string one_line(LogFormat format, LogLevel level, const std::string& message,
                     const std::vector<tokend::LogField>& fields, LogStyle style = {},
                     const std::string& human = "") {
  std::ostringstream out;
  Logger logger(out, LogLevel::Debug, format, style);
  logger.log(level, message, fields, human);
  return out.str();
}

// Sets an environment variable for the lifetime of the object.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::optional<std::string>& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value)
      setenv(name, value->c_str(), 1);
    else
      unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_)
      setenv(name_, old_->c_str(), 1);
    else
      unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

}  // namespace

TEST_CASE("log values keep their type and convert implicitly", "[util][log]") {
  const int attempt = 2;
  const size_t count = 12;
  const std::string text = "abc";
  CHECK(LogValue(attempt).text() == "2");
  CHECK(LogValue(count).text() == "12");
  CHECK(LogValue(int64_t{-7}).text() == "-7");
  CHECK(LogValue(0.25).text() == "0.25");
  CHECK(LogValue(true).text() == "true");
  CHECK(LogValue(false).text() == "false");
  CHECK(LogValue("lit").text() == "lit");
  CHECK(LogValue(text).text() == "abc");
  CHECK(LogValue(std::string_view("view")).text() == "view");
  CHECK(LogValue(std::numeric_limits<double>::infinity()).text() == "Infinity");
  CHECK(LogValue(attempt).get().index() == 1);
  CHECK(LogValue(0.5).get().index() == 2);
  CHECK(LogValue(true).get().index() == 3);
  CHECK(LogValue("x").is_text());
}

TEST_CASE("JSON lines carry typed numbers and booleans", "[util][log]") {
  const std::string line = one_line(LogFormat::Json, LogLevel::Info, "cycle finished",
                                    {{"result", "success"},
                                     {"changes", 3},
                                     {"seconds", 0.25},
                                     {"refreshed", true},
                                     {"quoted", "a \"b\"\n"},
                                     {"huge", std::numeric_limits<double>::quiet_NaN()}});
  const std::regex shape(
      R"(^\{"ts":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","level":"info","msg":"cycle finished",)"
      R"("result":"success","changes":3,"seconds":0\.25,"refreshed":true,"quoted":"a \\"b\\"\\n",)"
      R"("huge":"NaN"\}\n$)");
  INFO(line);
  CHECK(std::regex_match(line, shape));
}

TEST_CASE("logfmt lines write numbers and booleans bare", "[util][log]") {
  const std::string line =
      one_line(LogFormat::Text, LogLevel::Warn, "retrying",
               {{"op", "ListApiTokens"}, {"attempt", 2}, {"ok", false}, {"reason", "HTTP 503"}});
  const std::regex shape(
      R"(^ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=warn msg=retrying op=ListApiTokens )"
      R"(attempt=2 ok=false reason="HTTP 503"\n$)");
  INFO(line);
  CHECK(std::regex_match(line, shape));
}

TEST_CASE("journal style: syslog priority first and no time", "[util][log]") {
  LogStyle journal;
  journal.journal = true;
  struct Case {
    LogLevel level;
    std::string text;
    std::string json;
  };
  for (const Case& c : std::vector<Case>{
           {LogLevel::Debug, "<7>level=debug msg=m n=1\n",
            "<7>{\"level\":\"debug\",\"msg\":\"m\",\"n\":1}\n"},
           {LogLevel::Info, "<6>level=info msg=m n=1\n",
            "<6>{\"level\":\"info\",\"msg\":\"m\",\"n\":1}\n"},
           {LogLevel::Warn, "<4>level=warn msg=m n=1\n",
            "<4>{\"level\":\"warn\",\"msg\":\"m\",\"n\":1}\n"},
           {LogLevel::Error, "<3>level=error msg=m n=1\n",
            "<3>{\"level\":\"error\",\"msg\":\"m\",\"n\":1}\n"},
       }) {
    CHECK(one_line(LogFormat::Text, c.level, "m", {{"n", 1}}, journal) == c.text);
    CHECK(one_line(LogFormat::Json, c.level, "m", {{"n", 1}}, journal) == c.json);
  }
  CHECK(one_line(LogFormat::Human, LogLevel::Warn, "m", {}, journal, "Retrying X") ==
        "<4>Retrying X\n");
}

TEST_CASE("human lines: the sentence when there is one, else level, message and fields",
          "[util][log]") {
  CHECK(one_line(LogFormat::Human, LogLevel::Warn, "astro api request failed, retrying",
                 {{"op", "ListApiTokens"}, {"attempt", 1}}, {},
                 "Retrying ListApiTokens in 2s after HTTP 503 (attempt 2 of 5)") ==
        "Retrying ListApiTokens in 2s after HTTP 503 (attempt 2 of 5)\n");
  CHECK(one_line(LogFormat::Human, LogLevel::Warn, "cannot record the run in history",
                 {{"error", "database is locked"}, {"run", 4}}) ==
        "Warning: cannot record the run in history (error: database is locked, run: 4)\n");
  CHECK(one_line(LogFormat::Human, LogLevel::Error, "failed", {}) == "Error: failed\n");
  CHECK(one_line(LogFormat::Human, LogLevel::Info, "done", {}) == "done\n");
  // Nothing from a field can break the line or reach the terminal as a control sequence.
  CHECK(one_line(LogFormat::Human, LogLevel::Warn, "bad", {{"error", "a\nb\033[31m"}}) ==
        "Warning: bad (error: a?b?[31m)\n");
  // The other formats ignore the sentence.
  CHECK(one_line(LogFormat::Text, LogLevel::Warn, "m", {}, {}, "sentence").find("sentence") ==
        std::string::npos);
}

TEST_CASE("the logger drops what is below its level", "[util][log]") {
  std::ostringstream out;
  Logger logger(out, LogLevel::Warn, LogFormat::Text);
  logger.info("quiet", {{"n", 1}});
  logger.debug("quieter");
  CHECK(out.str().empty());
  logger.warn("loud");
  CHECK(out.str().find("msg=loud") != std::string::npos);
}

TEST_CASE("stderr is the journal only when JOURNAL_STREAM names its device and inode",
          "[util][log]") {
  struct stat st {};
  REQUIRE(fstat(STDERR_FILENO, &st) == 0);
  const std::string device = std::to_string(static_cast<unsigned long long>(st.st_dev));
  const std::string inode = std::to_string(static_cast<unsigned long long>(st.st_ino));
  {
    ScopedEnv env("JOURNAL_STREAM", device + ":" + inode);
    CHECK(tokend::stderr_is_journal());
  }
  for (const std::optional<std::string>& value : std::vector<std::optional<std::string>>{
           std::nullopt, "", device + ":" + std::to_string(st.st_ino + 1),
           std::to_string(st.st_dev + 1) + ":" + inode, device, device + ":", ":" + inode,
           device + ":" + inode + "x", "-1:" + inode, device + ":" + inode + ":1"}) {
    INFO((value ? "JOURNAL_STREAM=" + *value : "JOURNAL_STREAM unset"));
    ScopedEnv env("JOURNAL_STREAM", value);
    CHECK_FALSE(tokend::stderr_is_journal());
  }
}
