#pragma once

#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace tokend {

enum class LogLevel { Debug, Info, Warn, Error };

// Text: logfmt; Json: one object per line; Human: sentences for a person at
// a terminal (what CLI commands print; not a config value).
enum class LogFormat { Text, Json, Human };

// "debug", "info", "warn", "error" (the config's values).
std::optional<LogLevel> parse_log_level(std::string_view text);
// "text", "json" (the config's values; Human is chosen by the program).
std::optional<LogFormat> parse_log_format(std::string_view text);

// A log field's value: text, a whole number, a real number or a boolean. It
// converts implicitly from each, so call sites write {"attempt", attempt}.
// JSON lines keep the type (2, 0.25, true); logfmt and human lines write
// numbers and booleans bare.
class LogValue {
 public:
  using Variant = std::variant<std::string, int64_t, double, bool>;

  LogValue(std::string text) : value_(std::move(text)) {}         // NOLINT: implicit by design
  LogValue(std::string_view text) : value_(std::string(text)) {}  // NOLINT
  LogValue(const char* text) : value_(std::string(text)) {}       // NOLINT
  LogValue(bool flag) : value_(flag) {}                           // NOLINT
  LogValue(double number) : value_(number) {}                     // NOLINT
  template <typename T>
  requires(std::is_integral_v<T> && !std::is_same_v<T, bool>) LogValue(T number)
      : value_(static_cast<int64_t>(number)) {}  // NOLINT

  const Variant& get() const { return value_; }
  bool is_text() const { return value_.index() == 0; }
  // The string itself; digits; the shortest decimal that reads back as the
  // same double ("0.25"; "NaN", "Infinity" and "-Infinity" where JSON has no
  // number); "true" / "false".
  std::string text() const;

  bool operator==(const LogValue&) const = default;

 private:
  Variant value_;
};

using LogField = std::pair<std::string, LogValue>;

// Where the lines go and how they look beyond the format.
struct LogStyle {
  // stderr is connected to the systemd journal (see stderr_is_journal): each
  // line starts with its syslog priority, "<7>" debug, "<6>" info,
  // "<4>" warn, "<3>" error, and leaves out the time (journald stamps it).
  bool journal = false;
};

// True when $JOURNAL_STREAM names the file that fd 2 is (its "DEVICE:INODE"
// equals fstat(2)'s st_dev and st_ino), as systemd documents for services
// whose stderr goes to the journal. False when unset, malformed or another file.
bool stderr_is_journal();

// One line per event. Text is logfmt (`ts=… level=info msg="apply finished"
// key=value`), JSON is one object per line (`{"ts":…,"level":…,"msg":…,
// "key":value}`), Human is "Warning: message (key: value, …)" (no prefix for
// info) or the event's human sentence when it has one. Thread-safe: lines
// from concurrent callers never interleave. Callers must not pass secrets.
class Logger {
 public:
  Logger(std::ostream& out, LogLevel level, LogFormat format, LogStyle style = {});

  void log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields = {});
  void log(LogLevel level, std::string_view message, const std::vector<LogField>& fields);
  // An event that also has a sentence for people: LogFormat::Human prints
  // `human` alone; the other formats print the message and fields.
  void log(LogLevel level, std::string_view message, const std::vector<LogField>& fields,
           std::string_view human);
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
  LogFormat format() const { return format_; }

 private:
  std::mutex mutex_;
  std::ostream& out_;
  LogLevel level_;
  LogFormat format_;
  LogStyle style_;
};

// A logger that drops everything; for tests and commands that print their own output.
Logger& null_logger();

}  // namespace tokend
