// docs/config-reference.md and docs/spec-reference.md document every key the
// loaders accept (spec/keys.h, the list their unknown-key checks use), and
// nothing else: a new key fails this test until its row is written, with a
// message that says which key and where.
#include <catch2/catch.hpp>

#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "spec/keys.h"
#include "support/process.h"

namespace {

struct Section {
  std::string heading;
  int line = 0;
  std::map<std::string, std::vector<std::string>> rows;  // key -> its cells after the key
};

std::vector<std::string> cells_of(const std::string& row) {
  std::vector<std::string> cells;
  std::string cell;
  bool in_code = false;
  for (size_t i = 1; i < row.size(); ++i) {  // after the leading '|'
    const char c = row[i];
    if (c == '`') in_code = !in_code;
    if (c == '|' && !in_code) {
      const size_t first = cell.find_first_not_of(' ');
      const size_t last = cell.find_last_not_of(' ');
      cells.push_back(first == std::string::npos ? "" : cell.substr(first, last - first + 1));
      cell.clear();
    } else {
      cell += c;
    }
  }
  return cells;
}

// The "## " sections of a reference document and the key rows of their tables.
std::vector<Section> sections_of(const std::string& text) {
  std::vector<Section> sections;
  std::istringstream lines(text);
  int number = 0;
  for (std::string line; std::getline(lines, line);) {
    ++number;
    if (line.rfind("## ", 0) == 0) {
      sections.push_back(Section{line.substr(3), number, {}});
      continue;
    }
    if (sections.empty() || line.rfind("| `", 0) != 0) continue;
    std::vector<std::string> cells = cells_of(line);
    if (cells.empty() || cells[0].size() < 3) continue;
    const std::string key = cells[0].substr(1, cells[0].size() - 2);
    cells.erase(cells.begin());
    sections.back().rows[key] = cells;
  }
  return sections;
}

// The heading a table's section has: "Top level", "`[astro]`", or for an
// array of tables "`[[api_token.<key>.roles]]`" (either form is accepted).
bool heads(const Section& section, const std::string& table) {
  if (table.empty()) return section.heading == "Top level";
  return section.heading == "`[" + table + "]`" || section.heading == "`[[" + table + "]]`";
}

std::string heading_for(const std::string& table) {
  return table.empty() ? "## Top level" : "## `[" + table + "]`";
}

// Every problem of `document` against `tables`, as messages.
std::vector<std::string> problems(const std::string& document,
                                  const std::vector<tokend::spec::KeyTable>& tables) {
  const std::string path = std::string(TOKEND_SOURCE_DIR) + "/" + document;
  const std::string text = tokend::testing::read_file(path);
  if (text.empty()) return {document + " is missing or empty"};
  const std::vector<Section> sections = sections_of(text);
  std::vector<std::string> found;
  for (const tokend::spec::KeyTable& table : tables) {
    const std::string name(table.table);
    const std::string shown = name.empty() ? "the top level" : "[" + name + "]";
    const Section* section = nullptr;
    for (const Section& candidate : sections)
      if (heads(candidate, name)) section = &candidate;
    if (section == nullptr) {
      found.push_back(document + " has no section for " + shown + ": add a heading \"" +
                      heading_for(name) + "\" with a table row for each of its keys");
      continue;
    }
    for (std::string_view key : table.keys) {
      auto row = section->rows.find(std::string(key));
      const std::string where =
          document + ":" + std::to_string(section->line) + " (\"## " + section->heading + "\")";
      if (row == section->rows.end()) {
        found.push_back(document + " does not document the key \"" + std::string(key) + "\" of " +
                        shown + ": add a row \"| `" + std::string(key) +
                        "` | type | default | allowed values | meaning | example |\" to the "
                        "table under " +
                        where);
        continue;
      }
      if (row->second.size() != 5) {
        found.push_back(document + ": the row of \"" + std::string(key) + "\" under " + where +
                        " has " + std::to_string(row->second.size() + 1) +
                        " cells; it needs 6: key, type, default, allowed values, meaning, example");
        continue;
      }
      for (size_t i = 0; i < row->second.size(); ++i)
        if (row->second[i].empty())
          found.push_back(document + ": the row of \"" + std::string(key) + "\" under " + where +
                          " has an empty cell " + std::to_string(i + 2));
    }
    for (const auto& [key, cells] : section->rows) {
      bool known = false;
      for (std::string_view accepted : table.keys) known = known || accepted == key;
      if (!known)
        found.push_back(document + " documents the key \"" + key + "\" of " + shown +
                        ", which the loader does not accept: remove its row, or add the key to "
                        "src/spec/keys.cpp");
    }
  }
  return found;
}

}  // namespace

TEST_CASE("the config reference documents every config key the loader accepts", "[spec][docs]") {
  for (const std::string& problem :
       problems("docs/config-reference.md", tokend::spec::config_key_tables()))
    FAIL_CHECK(problem);
}

TEST_CASE("the spec reference documents every token spec key the loader accepts", "[spec][docs]") {
  for (const std::string& problem :
       problems("docs/spec-reference.md", tokend::spec::spec_key_tables()))
    FAIL_CHECK(problem);
}

TEST_CASE("the reference check names the key that lacks a row and where it goes", "[spec][docs]") {
  std::vector<tokend::spec::KeyTable> tables = tokend::spec::config_key_tables();
  for (tokend::spec::KeyTable& table : tables)
    if (table.table == "reconcile") table.keys.push_back("max_widgets_per_run");
  tables.push_back({"cluster", {"size"}});
  const std::vector<std::string> found = problems("docs/config-reference.md", tables);
  REQUIRE(found.size() == 2);
  CHECK(found[0].rfind("docs/config-reference.md does not document the key "
                       "\"max_widgets_per_run\" of [reconcile]: add a row \"| "
                       "`max_widgets_per_run` | type | default | allowed values | meaning | "
                       "example |\" to the table under docs/config-reference.md:",
                       0) == 0);
  CHECK(found[0].find(" (\"## `[reconcile]`\")") != std::string::npos);
  CHECK(found[1] ==
        "docs/config-reference.md has no section for [cluster]: add a heading \"## `[cluster]`\" "
        "with a "
        "table row for each of its keys");

  std::vector<tokend::spec::KeyTable> fewer = tokend::spec::config_key_tables();
  for (tokend::spec::KeyTable& table : fewer)
    if (table.table == "log") table.keys = {"level"};
  const std::vector<std::string> stale = problems("docs/config-reference.md", fewer);
  REQUIRE(stale.size() == 1);
  CHECK(stale[0] ==
        "docs/config-reference.md documents the key \"format\" of [log], which the loader does "
        "not accept: remove its row, or add the key to src/spec/keys.cpp");
}
