#include "util/log.h"

#include "util/json_text.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <sstream>
#include <streambuf>

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

class NullBuffer : public std::streambuf {
 protected:
  int overflow(int c) override { return c; }
};

}  // namespace

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

Logger::Logger(std::ostream& out, LogLevel level, LogFormat format)
    : out_(out), level_(level), format_(format) {}

void Logger::log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields) {
  log(level, message, std::vector<LogField>(fields));
}

void Logger::log(LogLevel level, std::string_view message, const std::vector<LogField>& fields) {
  if (!enabled(level)) return;
  std::string line;
  if (format_ == LogFormat::Json) {
    line += "{\"ts\":";
    append_json_string(line, now_text());
    line += ",\"level\":";
    append_json_string(line, level_name(level));
    line += ",\"msg\":";
    append_json_string(line, message);
    for (const auto& [key, value] : fields) {
      line += ',';
      append_json_string(line, key);
      line += ':';
      append_json_string(line, value);
    }
    line += "}\n";
  } else {
    line += "ts=" + now_text() + " level=";
    line += level_name(level);
    line += " msg=";
    append_logfmt_value(line, message);
    for (const auto& [key, value] : fields) {
      line += ' ';
      line += key;
      line += '=';
      append_logfmt_value(line, value);
    }
    line += '\n';
  }
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
