#include "util/duration.h"

#include <cctype>
#include <cstdint>
#include <limits>

namespace tokend {

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  if (text == "0") return std::chrono::milliseconds{0};
  if (text.empty()) return std::nullopt;
  int64_t total_ms = 0;
  size_t i = 0;
  while (i < text.size()) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return std::nullopt;
    int64_t number = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      number = number * 10 + (text[i] - '0');
      if (number > std::numeric_limits<int32_t>::max()) return std::nullopt;
      ++i;
    }
    size_t unit_start = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    std::string_view unit = text.substr(unit_start, i - unit_start);
    int64_t scale;
    if (unit == "ms")
      scale = 1;
    else if (unit == "s")
      scale = 1000;
    else if (unit == "m")
      scale = 60 * 1000;
    else if (unit == "h")
      scale = 3600 * 1000;
    else if (unit == "d")
      scale = 24 * 3600 * 1000;
    else
      return std::nullopt;
    total_ms += number * scale;
  }
  return std::chrono::milliseconds{total_ms};
}

std::string format_duration(std::chrono::milliseconds d) {
  int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  int64_t hours = ms / 3600000;
  ms %= 3600000;
  int64_t minutes = ms / 60000;
  ms %= 60000;
  if (hours) out += std::to_string(hours) + "h";
  if (minutes) out += std::to_string(minutes) + "m";
  if (ms) {
    if (ms % 1000 == 0) {
      out += std::to_string(ms / 1000) + "s";
    } else if (ms >= 1000) {
      std::string frac = std::to_string(ms % 1000);
      frac.insert(0, 3 - frac.size(), '0');
      while (frac.back() == '0') frac.pop_back();
      out += std::to_string(ms / 1000) + "." + frac + "s";
    } else {
      out += std::to_string(ms) + "ms";
    }
  }
  return out;
}

}  // namespace tokend
