// The toml11 adapter of spec/: reads one TOML file, checks that it is UTF-8,
// parses it, and maps values and keys back to file:line:col. Every I/O,
// encoding and toml11 failure becomes a Diagnostic; nothing here throws.
//
// Columns are 1-based byte offsets within the line.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <toml.hpp>

#include "spec/model.h"

namespace tokend::spec {

// `path` relative to the working directory when it lies below it, otherwise
// unchanged: the name a file is shown under in diagnostics.
std::string display_path(const std::string& path);

// One parsed TOML file together with its bytes (for source lines).
class TomlDocument {
 public:
  // Reads and parses `path`; diagnostics name it `display_name`. Returns
  // nullopt after appending at least one diagnostic to `out` when the file
  // cannot be read, is not valid UTF-8, nests deeper than kMaxTomlDepth, or
  // is not valid TOML. When `bytes` is
  // given it receives whatever was read, even on failure.
  static std::optional<TomlDocument> load(const std::string& path, const std::string& display_name,
                                          std::vector<Diagnostic>& out,
                                          std::string* bytes = nullptr);
  // The two steps of load: reading `path` into `bytes` (nullopt, or why it
  // cannot be read: "No such file or directory", "not a regular file"), and
  // checking and parsing bytes read from a file shown as `display_name`.
  static std::optional<std::string> read(const std::string& path, std::string& bytes);
  static std::optional<TomlDocument> parse(std::string bytes, const std::string& display_name,
                                           std::vector<Diagnostic>& out);

  const toml::value& root() const { return root_; }
  const std::string& name() const { return name_; }

  // Where `value` starts; a table defined by a `[header]` is at its header.
  SourcePos position_of(const toml::value& value) const;
  // Where `key` is written in the key/value pair (or header) that defines
  // `value`; falls back to the value's position when the key is not found.
  SourcePos position_of_key(const toml::value& value, std::string_view key) const;
  // The position of the first line of the file.
  SourcePos start() const { return SourcePos{name_, 1, 1}; }

  // A diagnostic at `pos` carrying the source line it points at.
  Diagnostic error_at(const SourcePos& pos, std::string message) const;

 private:
  TomlDocument(std::string name, std::string bytes, toml::value root);
  // The text of line `line` (1-based), without its line break; "" past the end.
  std::string_view line_view(int line) const;

  std::string name_;
  std::string bytes_;
  toml::value root_;
  // Byte offset of the start of each line: positions cost a binary search,
  // not a count of the newlines before them (toml11's source_location).
  std::vector<std::size_t> line_starts_;
};

// How deep arrays, inline tables, table headers and dotted keys may nest,
// all together, in a file astro-tokend reads.
inline constexpr int kMaxTomlDepth = 64;

// Where TOML `text` first nests deeper than `max_depth` levels (arrays,
// inline tables, table headers and the parts of a dotted key, counted
// together), as a 1-based line and byte column; nullopt when it never does.
// toml11 recurses once per level, so this runs before it does: linear, no
// recursion. Strings and comments are skipped; anything else that is not
// TOML is left for toml11 to report.
struct TextLocation {
  int line = 0;
  int column = 0;
};
std::optional<TextLocation> find_deep_toml_nesting(std::string_view text,
                                                   int max_depth = kMaxTomlDepth);

// A diagnostic at `pos` with the source line read from `bytes` (the whole file).
Diagnostic diagnostic_in(std::string_view bytes, const SourcePos& pos, std::string message);

// Short description of a value for messages: `integer 42`, `string "x"`, `array`.
std::string describe(const toml::value& value);
// A scalar as written, for messages: `42`, `0.5`, `true`, `"x"`; the type name otherwise.
std::string literal(const toml::value& value);

// Orders diagnostics of one file by line, then column, then message.
void sort_by_position(std::vector<Diagnostic>::iterator first,
                      std::vector<Diagnostic>::iterator last);

// Typed, diagnosed access to the keys of one TOML table. Every accessor
// reports a wrong type as a diagnostic and then returns nullopt/nullptr, as
// for an absent key. Holds references: `document`, `table` and `out` must
// outlive the reader.
class TableReader {
 public:
  // `context` names the table in messages: "astro_api_token.ci", "[astro]";
  // "" for the top level of a file.
  TableReader(const TomlDocument& document, const toml::value& table, std::string context,
              std::vector<Diagnostic>& out);

  bool has(std::string_view key) const;
  const toml::value* find(std::string_view key) const;

  std::optional<std::string> string(std::string_view key);
  std::optional<std::int64_t> integer(std::string_view key);
  std::optional<double> number(std::string_view key);  // integer or float
  std::optional<bool> boolean(std::string_view key);
  const toml::value* table(std::string_view key);
  const toml::value* array(std::string_view key);
  // A duration string such as "90s"; anything else is an error at the value.
  std::optional<std::chrono::milliseconds> duration(std::string_view key);

  // Reports each key of the table not in `known`, at the key, suggesting the
  // closest known key: `unknown key "x" in CONTEXT (did you mean "y"?)`, or at
  // the top level `unknown table [x] (did you mean [y]?)`.
  void report_unknown_keys(const std::vector<std::string_view>& known);

  // Diagnostics at a key's value, at the key itself, or at the table.
  void error_at_value(std::string_view key, std::string message);
  void error_at_key(std::string_view key, std::string message);
  void error_at_table(std::string message);
  // A diagnostic at `value`, a value nested in this table (an array entry).
  void error_at(const toml::value& value, std::string message);

  SourcePos position_of_value(std::string_view key) const;
  SourcePos position_of_key(std::string_view key) const;
  SourcePos position() const { return document_.position_of(table_); }
  const std::string& context() const { return context_; }

 private:
  void type_error(std::string_view key, std::string_view expected);

  const TomlDocument& document_;
  const toml::value& table_;
  std::string context_;
  std::vector<Diagnostic>& out_;
};

}  // namespace tokend::spec
