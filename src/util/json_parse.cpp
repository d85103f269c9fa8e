#include "util/json_parse.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Parser.h>

namespace tokend {

namespace {

// The largest magnitudes Poco stores exactly: UINT64_MAX, and -INT64_MIN.
constexpr std::string_view kMaxUnsigned = "18446744073709551615";
constexpr std::string_view kMaxNegative = "9223372036854775808";

// True when the digits (no leading zeros) exceed `limit` (same form).
bool exceeds(std::string_view digits, std::string_view limit) {
  if (digits.size() != limit.size()) return digits.size() > limit.size();
  return digits > limit;
}

std::string where(int line, std::size_t column) {
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

}  // namespace

std::optional<std::string> json_limit_problem(std::string_view text, int max_depth) {
  int depth = 0;
  int line = 1;
  std::size_t line_start = 0;
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (i < n) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      line_start = i + 1;
      ++i;
    } else if (c == '"') {
      // A string: skip to its closing quote (a backslash escapes the next byte).
      ++i;
      while (i < n && text[i] != '"') {
        if (text[i] == '\\') ++i;
        if (i < n && text[i] == '\n') {
          ++line;
          line_start = i + 1;
        }
        ++i;
      }
      ++i;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth)
        return "nesting deeper than " + std::to_string(max_depth) + " levels at " +
               where(line, i - line_start + 1);
      ++i;
    } else if (c == ']' || c == '}') {
      if (depth > 0) --depth;
      ++i;
    } else if ((c >= '0' && c <= '9') || c == '-') {
      // A number: count the digits of its integer part, leading zeros aside.
      const std::size_t start = i;
      const bool negative = text[i] == '-';
      if (negative) ++i;
      while (i < n && text[i] == '0') ++i;
      const std::size_t first_digit = i;
      while (i < n && text[i] >= '0' && text[i] <= '9') ++i;
      const std::string_view digits = text.substr(first_digit, i - first_digit);
      const bool fraction_or_exponent =
          i < n && (text[i] == '.' || text[i] == 'e' || text[i] == 'E');
      if (!fraction_or_exponent && exceeds(digits, negative ? kMaxNegative : kMaxUnsigned)) {
        const std::string_view literal = text.substr(start, i - start);
        return "integer " + std::string(literal.substr(0, 24)) +
               (literal.size() > 24 ? "..." : "") + " out of range at " +
               where(line, start - line_start + 1);
      }
      while (i < n && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.' || text[i] == 'e' ||
                       text[i] == 'E' || text[i] == '+' || text[i] == '-'))
        ++i;
    } else {
      ++i;
    }
  }
  return std::nullopt;
}

Result<Poco::Dynamic::Var> parse_json(std::string_view text) {
  if (std::optional<std::string> problem = json_limit_problem(text))
    return Error::invalid(std::move(*problem));
  try {
    Poco::JSON::Parser parser;
    parser.setDepth(static_cast<std::size_t>(kMaxJsonDepth) + 1);
    return parser.parse(std::string(text));
  } catch (const Poco::Exception& e) {
    return Error::invalid(e.message().empty() ? e.displayText() : e.message());
  } catch (const std::exception& e) {
    return Error::invalid(e.what());
  }
}

}  // namespace tokend
