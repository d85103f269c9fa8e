#include "util/log.h"

#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <sstream>
#include <streambuf>

#include "util/json_text.h"

namespace tokend {

namespace {

std::string_view level_name(LogLevel level) {
  switch (level) {
    case LogLevel::Debug:
      return "debug";
    case LogLevel::Info:
      return "info";
    case LogLevel::Warn:
      return "warn";
    case LogLevel::Error:
      return "error";
  }
  return "info";
}

std::string now_text() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms % 1000));
  return out;
}

void append_logfmt_value(std::string& out, std::string_view s) {
  bool needs_quotes = s.empty();
  for (char c : s) {
    if (c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20) {
      needs_quotes = true;
      break;
    }
  }
  if (!needs_quotes) {
    out += s;
    return;
  }
  append_json_string(out, s);
}

// "<N>": the syslog priority journald reads at the start of a line.
std::string_view priority_prefix(LogLevel level) {
  switch (level) {
    case LogLevel::Debug:
      return "<7>";
    case LogLevel::Info:
      return "<6>";
    case LogLevel::Warn:
      return "<4>";
    case LogLevel::Error:
      return "<3>";
  }
  return "<6>";
}

std::string_view human_prefix(LogLevel level) {
  switch (level) {
    case LogLevel::Debug:
      return "Debug: ";
    case LogLevel::Info:
      return "";
    case LogLevel::Warn:
      return "Warning: ";
    case LogLevel::Error:
      return "Error: ";
  }
  return "";
}

void append_json_value(std::string& out, const LogValue& value) {
  if (value.is_text()) {
    append_json_string(out, value.text());
    return;
  }
  if (const double* number = std::get_if<double>(&value.get()); number && !std::isfinite(*number)) {
    append_json_string(out, value.text());  // JSON has no NaN or infinity
    return;
  }
  out += value.text();
}

// `s` with control characters (line breaks, escape sequences) as '?', so a
// value cannot break a human line or drive a terminal.
void append_printable(std::string& out, std::string_view s) {
  for (char c : s) {
    const auto byte = static_cast<unsigned char>(c);
    out += byte < 0x20 || byte == 0x7f ? '?' : c;
  }
}

// Reads an unsigned decimal number from the whole of `text`.
bool parse_unsigned(std::string_view text, unsigned long long& out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

class NullBuffer : public std::streambuf {
 protected:
  int overflow(int c) override { return c; }
};

}  // namespace

std::string LogValue::text() const {
  struct Text {
    std::string operator()(const std::string& s) const { return s; }
    std::string operator()(int64_t n) const { return std::to_string(n); }
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(double d) const {
      if (std::isnan(d)) return "NaN";
      if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
      char buffer[64];
      auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, d);
      if (ec != std::errc()) return "NaN";
      return std::string(buffer, end);
    }
  };
  return std::visit(Text{}, value_);
}

bool stderr_is_journal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (stream == nullptr) return false;
  const std::string_view text(stream);
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos) return false;
  unsigned long long device = 0;
  unsigned long long inode = 0;
  if (!parse_unsigned(text.substr(0, colon), device) ||
      !parse_unsigned(text.substr(colon + 1), inode))
    return false;
  struct stat st {};
  if (fstat(STDERR_FILENO, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == device &&
         static_cast<unsigned long long>(st.st_ino) == inode;
}

std::optional<LogLevel> parse_log_level(std::string_view text) {
  if (text == "debug") return LogLevel::Debug;
  if (text == "info") return LogLevel::Info;
  if (text == "warn") return LogLevel::Warn;
  if (text == "error") return LogLevel::Error;
  return std::nullopt;
}

std::optional<LogFormat> parse_log_format(std::string_view text) {
  if (text == "text") return LogFormat::Text;
  if (text == "json") return LogFormat::Json;
  return std::nullopt;
}

Logger::Logger(std::ostream& out, LogLevel level, LogFormat format, LogStyle style)
    : out_(out), level_(level), format_(format), style_(style) {}

void Logger::log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields) {
  log(level, message, std::vector<LogField>(fields), std::string_view());
}

void Logger::log(LogLevel level, std::string_view message, const std::vector<LogField>& fields) {
  log(level, message, fields, std::string_view());
}

void Logger::log(LogLevel level, std::string_view message, const std::vector<LogField>& fields,
                 std::string_view human) {
  if (!enabled(level)) return;
  std::string line;
  if (style_.journal) line += priority_prefix(level);
  switch (format_) {
    case LogFormat::Json:
      line += '{';
      if (!style_.journal) {
        line += "\"ts\":";
        append_json_string(line, now_text());
        line += ',';
      }
      line += "\"level\":";
      append_json_string(line, level_name(level));
      line += ",\"msg\":";
      append_json_string(line, message);
      for (const auto& [key, value] : fields) {
        line += ',';
        append_json_string(line, key);
        line += ':';
        append_json_value(line, value);
      }
      line += '}';
      break;
    case LogFormat::Text:
      if (!style_.journal) line += "ts=" + now_text() + " ";
      line += "level=";
      line += level_name(level);
      line += " msg=";
      append_logfmt_value(line, message);
      for (const auto& [key, value] : fields) {
        line += ' ';
        line += key;
        line += '=';
        if (value.is_text())
          append_logfmt_value(line, value.text());
        else
          line += value.text();
      }
      break;
    case LogFormat::Human:
      if (!human.empty()) {
        append_printable(line, human);
        break;
      }
      line += human_prefix(level);
      append_printable(line, message);
      for (size_t i = 0; i < fields.size(); ++i) {
        line += i == 0 ? " (" : ", ";
        append_printable(line, fields[i].first);
        line += ": ";
        append_printable(line, fields[i].second.text());
      }
      if (!fields.empty()) line += ')';
      break;
  }
  line += '\n';
  std::lock_guard<std::mutex> lock(mutex_);
  out_ << line << std::flush;
}

Logger& null_logger() {
  static NullBuffer buffer;
  static std::ostream stream(&buffer);
  static Logger logger(stream, LogLevel::Error, LogFormat::Text);
  return logger;
}

}  // namespace tokend
