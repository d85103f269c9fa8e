#pragma once

#include <initializer_list>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tokend {

enum class LogLevel { Debug, Info, Warn, Error };
enum class LogFormat { Text, Json };

std::optional<LogLevel> parse_log_level(std::string_view text);
std::optional<LogFormat> parse_log_format(std::string_view text);

using LogField = std::pair<std::string, std::string>;

// One line per event. Text is logfmt (`level=info msg="apply finished" key=value`),
// JSON is one object per line; both are journald-friendly. Thread-safe: lines
// from concurrent callers never interleave. Callers must not pass secrets.
class Logger {
 public:
  Logger(std::ostream& out, LogLevel level, LogFormat format);

  void log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields = {});
  void log(LogLevel level, std::string_view message, const std::vector<LogField>& fields);
  void debug(std::string_view m, std::initializer_list<LogField> f = {}) {
    log(LogLevel::Debug, m, f);
  }
  void info(std::string_view m, std::initializer_list<LogField> f = {}) {
    log(LogLevel::Info, m, f);
  }
  void warn(std::string_view m, std::initializer_list<LogField> f = {}) {
    log(LogLevel::Warn, m, f);
  }
  void error(std::string_view m, std::initializer_list<LogField> f = {}) {
    log(LogLevel::Error, m, f);
  }

  bool enabled(LogLevel level) const { return level >= level_; }

 private:
  std::mutex mutex_;
  std::ostream& out_;
  LogLevel level_;
  LogFormat format_;
};

// A logger that drops everything; for tests and commands that print their own output.
Logger& null_logger();

}  // namespace tokend
