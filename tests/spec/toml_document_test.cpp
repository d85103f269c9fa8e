// spec/toml_document.h: positions of values and keys, toml11 errors as diagnostics.
#include <catch2/catch.hpp>

#include "spec/toml_document.h"
#include "support/process.h"

using namespace tokend::spec;

namespace {

struct Parsed {
  tokend::testing::TempDir dir;
  std::vector<Diagnostic> diagnostics;
  std::optional<TomlDocument> document;
  explicit Parsed(const std::string& text) {
    tokend::testing::write_file(dir.file("t.toml"), text);
    document = TomlDocument::load(dir.file("t.toml"), "t.toml", diagnostics);
  }
};

}  // namespace

TEST_CASE("keys are located where they are written", "[spec]") {
  Parsed parsed(
      "[api_token.ci]\n"                                           // 1
      "  name = \"x\"\n"                                           // 2
      "roles = [{ role = \"R\", entity_type = \"WORKSPACE\" }]\n"  // 3
      "lifecycle.ignore_changes = []\n"                            // 4
      "[[api_token.d.roles]]\n"                                    // 5
      "\"quoted key\" = 1\n");                                     // 6
  REQUIRE(parsed.document);
  const TomlDocument& doc = *parsed.document;
  const toml::value& tokens = doc.root().at("api_token");
  const toml::value& ci = tokens.at("ci");
  const auto at = [](int line, int column) { return SourcePos{"t.toml", line, column}; };
  const auto same = [](const SourcePos& a, const SourcePos& b) {
    return a.file == b.file && a.line == b.line && a.column == b.column;
  };
  CHECK(same(doc.position_of_key(ci, "ci"), at(1, 12)));
  CHECK(same(doc.position_of_key(tokens, "api_token"), at(1, 2)));
  CHECK(same(doc.position_of_key(ci.at("name"), "name"), at(2, 3)));
  CHECK(same(doc.position_of(ci.at("name")), at(2, 10)));
  const toml::value& entry = ci.at("roles").at(0);
  CHECK(same(doc.position_of(entry), at(3, 10)));
  CHECK(same(doc.position_of_key(entry.at("entity_type"), "entity_type"), at(3, 24)));
  CHECK(same(doc.position_of_key(ci.at("lifecycle"), "lifecycle"), at(4, 1)));
  CHECK(same(doc.position_of_key(ci.at("lifecycle").at("ignore_changes"), "ignore_changes"),
             at(4, 11)));
  CHECK(same(doc.position_of_key(tokens.at("d"), "d"), at(5, 13)));
  CHECK(same(doc.position_of_key(tokens.at("d").at("roles").at(0).at("quoted key"), "quoted key"),
             at(6, 1)));
}

TEST_CASE("toml11 syntax errors become diagnostics at the offending line", "[spec]") {
  struct Case {
    std::string text;
    int line;
    int column;
    std::string part;
  };
  const std::vector<Case> cases = {
      {"a = 1\nb = \n", 2, 5, "missing value"},
      {"a = 1\na = 2\n", 2, 5, "already exists"},
      {"[t]\n[t]\n", 2, 1, "already exists"},
      {"x = { b = 1, }\n", 1, 14, "trailing comma"},
      {"when = 1979-05-27T25:00:00Z\n", 1, 27, "invalid time"},
  };
  for (const Case& c : cases) {
    DYNAMIC_SECTION(c.text) {
      Parsed parsed(c.text);
      CHECK_FALSE(parsed.document);
      REQUIRE(parsed.diagnostics.size() == 1);
      const Diagnostic& d = parsed.diagnostics[0];
      CHECK(d.pos.file == "t.toml");
      CHECK(d.pos.line == c.line);
      CHECK(d.pos.column == c.column);
      CHECK(d.message.rfind("invalid TOML: ", 0) == 0);
      CHECK(d.message.find(c.part) != std::string::npos);
      CHECK(d.message.find("\n") == std::string::npos);
      CHECK_FALSE(d.source_line.empty());
    }
  }
}

TEST_CASE("values describe themselves for messages", "[spec]") {
  Parsed parsed("i = 42\ns = \"x\"\nb = true\na = [1]\nf = 0.5\n");
  REQUIRE(parsed.document);
  const toml::value& root = parsed.document->root();
  CHECK(describe(root.at("i")) == "integer 42");
  CHECK(describe(root.at("s")) == "string \"x\"");
  CHECK(describe(root.at("b")) == "boolean true");
  CHECK(describe(root.at("a")) == "array");
  CHECK(literal(root.at("f")) == "0.5");
}

namespace {

std::string repeated(const std::string& piece, int count) {
  std::string out;
  for (int i = 0; i < count; ++i) out += piece;
  return out;
}

}  // namespace

TEST_CASE("deep TOML nesting is found before toml11 recurses", "[spec]") {
  struct Case {
    std::string text;
    std::optional<TextLocation> expected;
  };
  const std::vector<Case> cases = {
      {"a = " + repeated("[", 64) + repeated("]", 64) + "\n", std::nullopt},
      {"a = " + repeated("[", 65) + repeated("]", 65) + "\n", TextLocation{1, 69}},
      {"a = " + repeated("{b=", 64) + "1" + repeated("}", 64) + "\n", std::nullopt},
      {"a = " + repeated("{b=", 65) + "1" + repeated("}", 65) + "\n", TextLocation{1, 197}},
      // A dotted key nests a level per dot but the first (which a number may have).
      {"a" + repeated(".b", 65) + " = 1\n", std::nullopt},
      {"a" + repeated(".b", 66) + " = 1\n", TextLocation{1, 132}},
      {"[a" + repeated(".b", 64) + "]\nx = 1\n", std::nullopt},
      {"[a" + repeated(".b", 65) + "]\nx = 1\n", TextLocation{1, 131}},
      // Levels of different kinds add up.
      {"x = [\n" + repeated("[", 31) + "{ a" + repeated(".b", 33) + " = 1 }" + repeated("]", 32) +
           "\n",
       TextLocation{2, 99}},
      // Brackets and dots in strings and comments are text; numbers have one dot.
      {"a = \"" + repeated("[", 100) + "\"\nb = '" + repeated("{", 100) + "'\n# " +
           repeated("[", 100) + "\nc = \"\"\"\n" + repeated("[.", 100) + "\"\"\"\nd = '''" +
           repeated("[", 100) + "'''\ne = \"\\\"" + repeated("[", 100) + "\"\nf = [1.5, 2.5]\n",
       std::nullopt},
      {"a = \"\"\"x\"\"\"\" \nb = " + repeated("[", 65), TextLocation{2, 69}},
      {"a = '''x'''' \nb = " + repeated("[", 65), TextLocation{2, 69}},
      // A basic string ends at a line break (toml11 reports that); what follows counts.
      {"a = \"open\nb = " + repeated("[", 65), TextLocation{2, 69}},
      {"a = " + repeated("]", 10) + repeated("[", 64), std::nullopt},
  };
  for (const Case& c : cases) {
    INFO(c.text.substr(0, 200));
    const std::optional<TextLocation> found = find_deep_toml_nesting(c.text);
    REQUIRE(found.has_value() == c.expected.has_value());
    if (found) {
      CHECK(found->line == c.expected->line);
      CHECK(found->column == c.expected->column);
    }
  }
}

TEST_CASE("a deeply nested TOML file is a diagnostic at the level too many, never a crash",
          "[spec]") {
  for (const std::string& text :
       {"[api_token.x]\nroles = " + repeated("[", 10000) + repeated("]", 10000) + "\n",
        "[api_token.x]\nroles = " + repeated("{ a = ", 5000) + "1" + repeated("}", 5000) + "\n",
        "[api_token.x]\n" + repeated("a.", 100000) + "b = 1\n"}) {
    Parsed parsed(text);
    CHECK_FALSE(parsed.document);
    REQUIRE(parsed.diagnostics.size() == 1);
    const Diagnostic& d = parsed.diagnostics[0];
    CHECK(d.pos.file == "t.toml");
    CHECK(d.pos.line == 2);
    CHECK(d.pos.column > 0);
    CHECK(d.message == "nesting deeper than 64 levels of arrays, inline tables or dotted keys");
  }
}
