// Loading spec sets of many and of large files: files parse concurrently but
// are validated in load order, so diagnostics, "first definition wins" and
// positions are exactly those of a file-by-file load.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "spec/loader.h"
#include "support/process.h"

using tokend::spec::Config;
using tokend::spec::Diagnostic;
using tokend::testing::TempDir;
using tokend::testing::write_file;

namespace {

const std::string kOrganizationId = "clx42kkcm01fo01o06agtmshg";

std::string workspace_token(const std::string& key, const std::string& name) {
  return "[api_token." + key + "]\nname = \"" + name +
         "\"\ntype = \"WORKSPACE\"\nrole = \"WORKSPACE_OWNER\"\nroles = [\n  { role = "
         "\"WORKSPACE_OWNER\", entity_id = \"clx42sxw501gl01o0gjenthnh\", entity_type = "
         "\"WORKSPACE\" },\n]\n\n";
}

Config config_for(const std::string& dir) {
  Config config;
  config.path = dir + "/astro-tokend.toml";
  config.organization_id = kOrganizationId;
  config.spec_paths = {dir + "/specs"};
  config.secrets_dir = dir + "/tokens";
  return config;
}

std::string file_name(int index) {
  char name[32];
  std::snprintf(name, sizeof name, "%02d.toml", index);
  return name;
}

}  // namespace

TEST_CASE("a spec set of many files reports its problems in file and line order", "[spec]") {
  TempDir dir;
  std::filesystem::create_directories(dir.file("specs"));
  // Twelve files of 40 tokens: more files than are ever parsed at once.
  // Files 3, 7 and 11 hold an error in their last token; file 9 redefines a
  // key of file 2.
  for (int f = 0; f < 12; ++f) {
    std::string text;
    for (int t = 0; t < 40; ++t)
      text += workspace_token("f" + std::to_string(f) + "_t" + std::to_string(t), "token");
    if (f == 3 || f == 7 || f == 11)
      text += "[api_token.bad" + std::to_string(f) + "]\nname = \"\"\n";
    if (f == 9) text += workspace_token("f2_t5", "again");
    write_file(dir.file("specs/" + file_name(f)), text);
  }
  std::string hash_first, hash_second;
  const auto first = tokend::spec::load_specs(config_for(dir.path()), &hash_first);
  const auto second = tokend::spec::load_specs(config_for(dir.path()), &hash_second);
  CHECK(hash_first == hash_second);
  REQUIRE_FALSE(first.ok());

  // Each bad token has an empty name and misses type, role and roles; the
  // duplicate comes in file 9, after the errors of file 7 and before file 11's.
  std::vector<std::string> files;
  for (const Diagnostic& d : first.diagnostics)
    files.push_back(d.pos.file.substr(d.pos.file.size() - 7));
  REQUIRE(first.diagnostics.size() == second.diagnostics.size());
  for (size_t i = 0; i < first.diagnostics.size(); ++i)
    CHECK(first.diagnostics[i].format() == second.diagnostics[i].format());
  CHECK(std::is_sorted(files.begin(), files.end()));
  const int bad_line = 40 * 8 + 1;  // 8 lines per token, then the bad table
  int duplicates = 0;
  for (const Diagnostic& d : first.diagnostics) {
    INFO(d.format());
    if (d.message.find("duplicate token key \"f2_t5\"") != std::string::npos) {
      ++duplicates;
      CHECK(d.pos.file.substr(d.pos.file.size() - 7) == "09.toml");
      CHECK(d.pos.line == bad_line);
      CHECK(d.message.find("02.toml:41") != std::string::npos);  // token 5 of file 2
    } else {
      CHECK(d.pos.line >= bad_line);  // within the bad table
    }
  }
  CHECK(duplicates == 1);
}

TEST_CASE("positions deep in a large spec file are exact", "[spec]") {
  TempDir dir;
  std::filesystem::create_directories(dir.file("specs"));
  std::string text;
  for (int t = 0; t < 3000; ++t) text += workspace_token("t" + std::to_string(t), "token");
  text +=
      "[api_token.last]\nname = \"last\"\ntype = \"WORKSPACE\"\nrole = \"WORKSPACE_OWNER\"\n"
      "roles = []\nexpiry_period_in_days = 0\n";
  write_file(dir.file("specs/big.toml"), text);
  const auto loaded = tokend::spec::load_specs(config_for(dir.path()));
  REQUIRE_FALSE(loaded.ok());
  const int table_line = 3000 * 8 + 1;
  bool expiry_reported = false;
  for (const Diagnostic& d : loaded.diagnostics) {
    INFO(d.format());
    CHECK(d.pos.line >= table_line);
    if (d.message.find("expiry_period_in_days must be between 1 and 3650") == std::string::npos)
      continue;
    expiry_reported = true;
    CHECK(d.pos.line == table_line + 5);
    CHECK(d.pos.column == 25);
    CHECK(d.source_line == "expiry_period_in_days = 0");
  }
  CHECK(expiry_reported);
}
