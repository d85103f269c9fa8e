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
