#include "spec/toml_document.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <system_error>
#include <tuple>

#include "spec/loading.h"
#include "spec/text.h"
#include "util/duration.h"
#include "util/suggest.h"

namespace tokend::spec {

namespace {

// Reads the whole file; on failure returns the reason.
std::optional<std::string> read_all(const std::string& path, std::string& bytes) {
  const auto reason = [](int error) {
    return std::error_code(error, std::generic_category()).message();
  };
  // Non-blocking, so that a FIFO is refused instead of waited on.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return reason(errno);
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    const bool directory = S_ISDIR(info.st_mode);
    ::close(fd);
    return directory ? reason(EISDIR) : std::string("not a regular file");
  }
  char buffer[65536];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      int error = errno;
      ::close(fd);
      return reason(error);
    }
    bytes.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return std::nullopt;
}

// The text of line `line` (1-based) of `bytes`, without its line break.
std::string_view line_of(std::string_view bytes, int line) {
  std::size_t start = 0;
  for (int current = 1; current < line; ++current) {
    std::size_t newline = bytes.find('\n', start);
    if (newline == std::string_view::npos) return {};
    start = newline + 1;
  }
  std::size_t end = bytes.find('\n', start);
  if (end == std::string_view::npos) end = bytes.size();
  std::string_view text = bytes.substr(start, end - start);
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  return text;
}

bool is_bare_key_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

// The source name toml11 is given. toml11 copies it into each of the many
// regions it makes while parsing; a name this short needs no allocation.
// Diagnostics name the file by its display name instead.
constexpr const char* kTomlSourceName = "spec";

struct MessageLocation {
  int line = 0;
  int column = 0;
  std::string line_text;
  std::string comment;
};

// toml11 v3 puts the position into the text of its error: after the first
// line come " N | source" lines, each followed by a marker line whose '^' or
// '~' sits under the offending column. The last location is the one that
// broke the rule ("defined twice" errors show the first definition first).
std::optional<MessageLocation> location_in_message(const std::vector<std::string>& lines) {
  std::optional<MessageLocation> found;
  for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
    const std::string& text = lines[i];
    std::size_t k = 0;
    while (k < text.size() && text[k] == ' ') ++k;
    std::size_t digits_start = k;
    while (k < text.size() && text[k] >= '0' && text[k] <= '9') ++k;
    if (k == digits_start || k - digits_start > 9 || text.compare(k, 3, " | ") != 0) continue;
    const std::size_t prefix = k + 3;
    const std::string& marker = lines[i + 1];
    if (marker.size() <= prefix || marker.compare(prefix - 3, 3, " | ") != 0) continue;
    std::size_t caret = marker.find_first_of("^~", prefix);
    if (caret == std::string::npos) continue;
    MessageLocation location;
    location.line = std::stoi(text.substr(digits_start, k - digits_start));
    location.column = static_cast<int>(caret - prefix) + 1;
    location.line_text = text.substr(prefix);
    if (!location.line_text.empty() && location.line_text.back() == '\r')
      location.line_text.pop_back();
    std::size_t comment = marker.find(' ', caret);
    if (comment != std::string::npos) location.comment = marker.substr(comment + 1);
    found = location;
    ++i;
  }
  return found;
}

// "invalid TOML: <what toml11 says>" positioned where toml11 points.
Diagnostic syntax_diagnostic(std::string_view bytes, const std::string& name,
                             const std::string& what, const toml::source_location& thrown_at) {
  std::vector<std::string> lines;
  std::istringstream stream(what);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);

  std::string summary = lines.empty() ? std::string("syntax error") : lines.front();
  if (summary.rfind("[error]", 0) == 0) summary.erase(0, 7);
  while (!summary.empty() && summary.front() == ' ') summary.erase(0, 1);
  if (summary.rfind("toml::", 0) == 0) {
    std::size_t colon = summary.find(": ");
    if (colon != std::string::npos) summary.erase(0, colon + 2);
  }

  SourcePos pos{name, 0, 0};
  std::optional<MessageLocation> location = location_in_message(lines);
  if (location) {
    if (!location->comment.empty() && location->comment != "here")
      summary += " (" + location->comment + ")";
    if (line_of(bytes, location->line) == location->line_text) {
      pos.line = location->line;
      pos.column = location->column;
    } else if (!location->line_text.empty()) {
      // Some toml11 errors (dates, times) show a re-lexed fragment numbered
      // from 1; find the fragment in the file instead.
      const int line_count = 1 + static_cast<int>(std::count(bytes.begin(), bytes.end(), '\n'));
      for (int line = 1; line <= line_count; ++line) {
        std::size_t at = line_of(bytes, line).find(location->line_text);
        if (at != std::string_view::npos) {
          pos.line = line;
          pos.column = static_cast<int>(at) + location->column;
          break;
        }
      }
    }
  }
  if (pos.line == 0 && thrown_at.file_name() == kTomlSourceName) {
    pos.line = static_cast<int>(thrown_at.line());
    pos.column = static_cast<int>(thrown_at.column());
  }
  return diagnostic_in(bytes, pos, "invalid TOML: " + summary);
}

std::string_view type_name(const toml::value& value) {
  switch (value.type()) {
    case toml::value_t::boolean:
      return "boolean";
    case toml::value_t::integer:
      return "integer";
    case toml::value_t::floating:
      return "float";
    case toml::value_t::string:
      return "string";
    case toml::value_t::offset_datetime:
    case toml::value_t::local_datetime:
      return "datetime";
    case toml::value_t::local_date:
      return "date";
    case toml::value_t::local_time:
      return "time";
    case toml::value_t::array:
      return "array";
    case toml::value_t::table:
      return "table";
    case toml::value_t::empty:
      return "nothing";
  }
  return "value";
}

}  // namespace

std::string display_path(const std::string& path) {
  std::error_code error;
  std::filesystem::path cwd = std::filesystem::current_path(error);
  if (error) return path;
  std::filesystem::path absolute =
      std::filesystem::path(path).is_absolute() ? std::filesystem::path(path) : cwd / path;
  std::filesystem::path relative = absolute.lexically_normal().lexically_relative(cwd);
  if (relative.empty() || *relative.begin() == "..") return absolute.lexically_normal().string();
  return relative.string();
}

Diagnostic internal_error(const std::string& file, const std::exception& error) {
  return Diagnostic{SourcePos{display_path(file), 0, 0},
                    std::string("internal error while loading: ") + error.what(),
                    {}};
}

Diagnostic diagnostic_in(std::string_view bytes, const SourcePos& pos, std::string message) {
  Diagnostic diagnostic{pos, std::move(message), {}};
  if (pos.line > 0) diagnostic.source_line = std::string(line_of(bytes, pos.line));
  return diagnostic;
}

std::string literal(const toml::value& value) {
  switch (value.type()) {
    case toml::value_t::boolean:
      return value.as_boolean() ? "true" : "false";
    case toml::value_t::integer:
      return std::to_string(value.as_integer());
    case toml::value_t::string:
      return in_quotes(value.as_string().str);
    case toml::value_t::floating: {
      std::ostringstream text;
      text << value.as_floating();
      return text.str();
    }
    default:
      return std::string(type_name(value));
  }
}

std::string describe(const toml::value& value) {
  switch (value.type()) {
    case toml::value_t::boolean:
    case toml::value_t::integer:
    case toml::value_t::string:
    case toml::value_t::floating:
      return std::string(type_name(value)) + " " + literal(value);
    default:
      return std::string(type_name(value));
  }
}

void sort_by_position(std::vector<Diagnostic>::iterator first,
                      std::vector<Diagnostic>::iterator last) {
  std::stable_sort(first, last, [](const Diagnostic& a, const Diagnostic& b) {
    return std::tie(a.pos.line, a.pos.column, a.message) <
           std::tie(b.pos.line, b.pos.column, b.message);
  });
}

TomlDocument::TomlDocument(std::string name, std::string bytes, toml::value root)
    : name_(std::move(name)), bytes_(std::move(bytes)), root_(std::move(root)) {
  line_starts_.push_back(0);
  for (std::size_t at = bytes_.find('\n'); at != std::string::npos; at = bytes_.find('\n', at + 1))
    line_starts_.push_back(at + 1);
}

std::optional<TomlDocument> TomlDocument::load(const std::string& path,
                                               const std::string& display_name,
                                               std::vector<Diagnostic>& out,
                                               std::string* bytes_out) {
  std::string bytes;
  if (std::optional<std::string> reason = read_all(path, bytes)) {
    if (bytes_out) *bytes_out = bytes;
    out.push_back(Diagnostic{SourcePos{display_name, 0, 0}, "cannot read file: " + *reason, {}});
    return std::nullopt;
  }
  if (bytes_out) *bytes_out = bytes;
  return parse(std::move(bytes), display_name, out);
}

std::optional<std::string> TomlDocument::read(const std::string& path, std::string& bytes) {
  return read_all(path, bytes);
}

std::optional<TomlDocument> TomlDocument::parse(std::string bytes, const std::string& display_name,
                                                std::vector<Diagnostic>& out) {
  if (std::optional<std::size_t> bad = first_invalid_utf8(bytes)) {
    std::size_t line_start = bytes.rfind('\n', *bad == 0 ? std::string::npos : *bad - 1);
    line_start = (line_start == std::string::npos || *bad == 0) ? 0 : line_start + 1;
    int line =
        1 + static_cast<int>(std::count(
                bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(line_start), '\n'));
    int column = static_cast<int>(*bad - line_start) + 1;
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02X",
                  static_cast<unsigned>(static_cast<unsigned char>(bytes[*bad])));
    out.push_back(diagnostic_in(bytes, SourcePos{display_name, line, column},
                                std::string("file is not valid UTF-8 (byte ") + hex + ")"));
    return std::nullopt;
  }
  if (std::optional<TextLocation> deep = find_deep_toml_nesting(bytes)) {
    out.push_back(diagnostic_in(bytes, SourcePos{display_name, deep->line, deep->column},
                                "nesting deeper than " + std::to_string(kMaxTomlDepth) +
                                    " levels of arrays, inline tables or dotted keys"));
    return std::nullopt;
  }
  try {
    std::istringstream stream(bytes);
    toml::value root = toml::parse(stream, kTomlSourceName);
    return TomlDocument(display_name, std::move(bytes), std::move(root));
  } catch (const toml::syntax_error& error) {
    out.push_back(syntax_diagnostic(bytes, display_name, error.what(), error.location()));
  } catch (const toml::exception& error) {
    out.push_back(syntax_diagnostic(bytes, display_name, error.what(), error.location()));
  } catch (const std::exception& error) {
    out.push_back(Diagnostic{
        SourcePos{display_name, 0, 0}, std::string("cannot parse file: ") + error.what(), {}});
  }
  return std::nullopt;
}

std::optional<TextLocation> find_deep_toml_nesting(std::string_view text, int max_depth) {
  const std::size_t n = text.size();
  int depth = 0;     // open arrays, inline tables and header brackets
  int key_dots = 0;  // dots since the last bracket, '=', ',' or line break
  int line = 1;
  std::size_t line_start = 0;
  std::size_t i = 0;
  const auto here = [&](std::size_t at) {
    return TextLocation{line, static_cast<int>(at - line_start) + 1};
  };
  const auto newline = [&](std::size_t at) {
    ++line;
    line_start = at + 1;
  };
  // Skips a string opened by `quote` at i (one or three quotes); basic
  // strings (") honour backslash escapes, literal strings (') do not. A
  // single-line string also ends at a line break (toml11 reports it).
  const auto skip_string = [&](char quote) {
    const bool escapes = quote == '"';
    const bool multiline = i + 2 < n && text[i + 1] == quote && text[i + 2] == quote;
    i += multiline ? 3 : 1;
    while (i < n) {
      const char c = text[i];
      if (escapes && c == '\\') {
        if (i + 1 < n && text[i + 1] == '\n') newline(i + 1);
        i += 2;
        continue;
      }
      if (c == '\n') {
        if (!multiline) return;
        newline(i);
      } else if (c == quote) {
        if (!multiline) {
          ++i;
          return;
        }
        if (i + 2 < n && text[i + 1] == quote && text[i + 2] == quote) {
          i += 3;
          // Up to two more quotes belong to the content ("""a"""").
          for (int extra = 0; extra < 2 && i < n && text[i] == quote; ++extra) ++i;
          return;
        }
      }
      ++i;
    }
  };
  while (i < n) {
    const char c = text[i];
    switch (c) {
      case '\n':
        newline(i);
        key_dots = 0;
        ++i;
        break;
      case '#':
        while (i < n && text[i] != '\n') ++i;
        break;
      case '"':
      case '\'':
        skip_string(c);
        break;
      case '[':
      case '{':
        key_dots = 0;
        if (++depth > max_depth) return here(i);
        ++i;
        break;
      case ']':
      case '}':
        key_dots = 0;
        if (depth > 0) --depth;
        ++i;
        break;
      case '=':
      case ',':
        key_dots = 0;
        ++i;
        break;
      case '.':
        // A dotted key nests a table per dot; a number or time has one dot
        // at most, which is not counted.
        if (++key_dots > 1 && depth + key_dots - 1 > max_depth) return here(i);
        ++i;
        break;
      default:
        ++i;
        break;
    }
  }
  return std::nullopt;
}

std::string_view TomlDocument::line_view(int line) const {
  if (line < 1 || static_cast<std::size_t>(line) > line_starts_.size()) return {};
  const std::size_t start = line_starts_[static_cast<std::size_t>(line) - 1];
  std::size_t end = static_cast<std::size_t>(line) < line_starts_.size()
                        ? line_starts_[static_cast<std::size_t>(line)] - 1
                        : bytes_.size();
  if (end > start && bytes_[end - 1] == '\r') --end;
  return std::string_view(bytes_).substr(start, end - start);
}

namespace {

// The parsed region of `value` (toml11 keeps one per value it read from a
// file), or nullptr for a value that was not read from a file.
const toml::detail::region* region_of(const toml::value& value) {
  return dynamic_cast<const toml::detail::region*>(toml::detail::get_region(value));
}

}  // namespace

SourcePos TomlDocument::position_of(const toml::value& value) const {
  const toml::detail::region* region = region_of(value);
  if (region == nullptr || region->name() != kTomlSourceName) return start();
  // toml11 parses a copy of bytes_ (plus, at most, a final line feed): the
  // region's offset is an offset into bytes_.
  const auto offset = static_cast<std::size_t>(region->first() - region->begin());
  const auto after = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
  const auto line = static_cast<std::size_t>(after - line_starts_.begin());
  return SourcePos{name_, static_cast<int>(line),
                   static_cast<int>(offset - line_starts_[line - 1]) + 1};
}

SourcePos TomlDocument::position_of_key(const toml::value& value, std::string_view key) const {
  SourcePos pos = position_of(value);
  if (key.empty()) return pos;
  std::string_view text = line_view(pos.line);
  const std::size_t value_start = std::min(text.size(), static_cast<std::size_t>(pos.column - 1));
  // The key precedes its value on the same line, except for a table made by a
  // [header] or a dotted key, whose region is the header or dotted key itself.
  std::size_t search_end = value_start;
  if (value.is_table() && (value_start >= text.size() || text[value_start] != '{'))
    search_end =
        std::min(text.size(), value_start + (region_of(value) ? region_of(value)->size() : 1));
  std::string_view searched = text.substr(0, search_end);
  std::size_t at = searched.rfind(key);
  while (at != std::string_view::npos) {
    const bool bounded_before = at == 0 || !is_bare_key_char(searched[at - 1]);
    const bool bounded_after =
        at + key.size() >= searched.size() || !is_bare_key_char(searched[at + key.size()]);
    if (bounded_before && bounded_after) {
      if (at > 0 && (searched[at - 1] == '"' || searched[at - 1] == '\'')) --at;
      pos.column = static_cast<int>(at) + 1;
      return pos;
    }
    if (at == 0) break;
    at = searched.rfind(key, at - 1);
  }
  return pos;
}

Diagnostic TomlDocument::error_at(const SourcePos& pos, std::string message) const {
  return Diagnostic{pos, std::move(message), std::string(line_view(pos.line))};
}

TableReader::TableReader(const TomlDocument& document, const toml::value& table,
                         std::string context, std::vector<Diagnostic>& out)
    : document_(document), table_(table), context_(std::move(context)), out_(out) {}

const toml::value* TableReader::find(std::string_view key) const {
  if (!table_.is_table()) return nullptr;
  const auto& entries = table_.as_table();
  auto it = entries.find(std::string(key));
  return it == entries.end() ? nullptr : &it->second;
}

bool TableReader::has(std::string_view key) const { return find(key) != nullptr; }

void TableReader::type_error(std::string_view key, std::string_view expected) {
  const toml::value* value = find(key);
  error_at_value(
      key, std::string(key) + " must be " + std::string(expected) + ", got " + describe(*value));
}

std::optional<std::string> TableReader::string(std::string_view key) {
  const toml::value* value = find(key);
  if (!value) return std::nullopt;
  if (!value->is_string()) {
    type_error(key, "a string");
    return std::nullopt;
  }
  return value->as_string().str;
}

std::optional<std::int64_t> TableReader::integer(std::string_view key) {
  const toml::value* value = find(key);
  if (!value) return std::nullopt;
  if (!value->is_integer()) {
    type_error(key, "an integer");
    return std::nullopt;
  }
  return value->as_integer();
}

std::optional<double> TableReader::number(std::string_view key) {
  const toml::value* value = find(key);
  if (!value) return std::nullopt;
  if (value->is_integer()) return static_cast<double>(value->as_integer());
  if (value->is_floating()) return value->as_floating();
  type_error(key, "a number");
  return std::nullopt;
}

std::optional<bool> TableReader::boolean(std::string_view key) {
  const toml::value* value = find(key);
  if (!value) return std::nullopt;
  if (!value->is_boolean()) {
    type_error(key, "a boolean");
    return std::nullopt;
  }
  return value->as_boolean();
}

const toml::value* TableReader::table(std::string_view key) {
  const toml::value* value = find(key);
  if (!value) return nullptr;
  if (!value->is_table()) {
    type_error(key, "a table");
    return nullptr;
  }
  return value;
}

const toml::value* TableReader::array(std::string_view key) {
  const toml::value* value = find(key);
  if (!value) return nullptr;
  if (!value->is_array()) {
    type_error(key, "an array");
    return nullptr;
  }
  return value;
}

std::optional<std::chrono::milliseconds> TableReader::duration(std::string_view key) {
  const toml::value* value = find(key);
  if (!value) return std::nullopt;
  if (!value->is_string()) {
    type_error(key, "a duration string such as \"90s\", \"5m\" or \"1h\"");
    return std::nullopt;
  }
  std::optional<std::chrono::milliseconds> parsed = parse_duration(value->as_string().str);
  if (!parsed) {
    error_at_value(key, std::string(key) +
                            " must be a duration such as \"90s\", \"5m\" or \"1h\", got " +
                            in_quotes(value->as_string().str));
  }
  return parsed;
}

void TableReader::report_unknown_keys(const std::vector<std::string_view>& known) {
  if (!table_.is_table()) return;
  for (const auto& [key, value] : table_.as_table()) {
    bool is_known = false;
    for (std::string_view name : known) is_known = is_known || name == key;
    if (is_known) continue;
    std::string message;
    if (context_.empty() && value.is_table()) {
      message = "unknown table [" + key + "]" + did_you_mean(key, known, "[", "]");
    } else {
      message = "unknown key " + in_quotes(key) +
                (context_.empty() ? " at the top level" : " in " + context_);
      message += did_you_mean(key, known);
    }
    error_at_key(key, std::move(message));
  }
}

SourcePos TableReader::position_of_value(std::string_view key) const {
  const toml::value* value = find(key);
  return value ? document_.position_of(*value) : position();
}

SourcePos TableReader::position_of_key(std::string_view key) const {
  const toml::value* value = find(key);
  return value ? document_.position_of_key(*value, key) : position();
}

void TableReader::error_at_value(std::string_view key, std::string message) {
  out_.push_back(document_.error_at(position_of_value(key), std::move(message)));
}

void TableReader::error_at_key(std::string_view key, std::string message) {
  out_.push_back(document_.error_at(position_of_key(key), std::move(message)));
}

void TableReader::error_at_table(std::string message) {
  out_.push_back(document_.error_at(position(), std::move(message)));
}

void TableReader::error_at(const toml::value& value, std::string message) {
  out_.push_back(document_.error_at(document_.position_of(value), std::move(message)));
}

}  // namespace tokend::spec
