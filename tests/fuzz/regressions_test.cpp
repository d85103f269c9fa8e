// The inputs kept in fuzz/regressions/ (hostile cases and anything the
// fuzzers found) and fuzz/seeds/, replayed through the fuzz targets' bodies
// in the normal suite: each must be handled without a crash, and the
// regressions must be refused by the readers they target.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "astro/json.h"
#include "fuzz/targets.h"
#include "plan/plan_file.h"
#include "sim/bodies.h"
#include "spec/loader.h"
#include "support/process.h"

namespace fs = std::filesystem;
using tokend::testing::read_file;

namespace {

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> files;
  if (!fs::is_directory(dir)) return files;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.is_regular_file()) files.push_back(entry.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

std::string regressions(const std::string& target) {
  return std::string(TOKEND_FUZZ_DIR) + "/regressions/" + target;
}

}  // namespace

TEST_CASE("fuzz regressions: TOML inputs that crashed the loaders are refused", "[fuzz]") {
  const auto files = files_in(regressions("toml_loaders"));
  REQUIRE(files.size() >= 2);
  for (const std::string& file : files) {
    INFO(file);
    tokend::fuzz::toml_loaders(read_file(file));
    tokend::spec::Config config;
    config.organization_id = "clx42kkcm01fo01o06agtmshg";
    config.spec_paths = {file};
    auto loaded = tokend::spec::load_specs(config);
    CHECK_FALSE(loaded.ok());
    REQUIRE(loaded.diagnostics.size() == 1);
    CHECK(loaded.diagnostics[0].message.find("nesting deeper than 64 levels") != std::string::npos);
  }
}

TEST_CASE("fuzz regressions: API answers, plan files and sim bodies are refused", "[fuzz]") {
  const auto api = files_in(regressions("api_json"));
  REQUIRE(api.size() >= 2);
  for (const std::string& file : api) {
    INFO(file);
    const std::string body = read_file(file);
    tokend::fuzz::api_json(body);
    auto page = tokend::astro::json::decode_token_page(body);
    REQUIRE_FALSE(page.ok());
    CHECK(page.error().message.rfind("body is not valid JSON: ", 0) == 0);
  }
  const auto plans = files_in(regressions("plan_file"));
  REQUIRE_FALSE(plans.empty());
  for (const std::string& file : plans) {
    INFO(file);
    tokend::fuzz::plan_file(read_file(file));
    CHECK_FALSE(tokend::plan::load_plan(read_file(file)).ok());
  }
  const auto bodies = files_in(regressions("sim_bodies"));
  REQUIRE_FALSE(bodies.empty());
  for (const std::string& file : bodies) {
    INFO(file);
    tokend::fuzz::sim_bodies(read_file(file));
    CHECK_FALSE(tokend::sim::decode_bulk_create(read_file(file)).ok());
  }
}

TEST_CASE("fuzz seeds: every seed is read without a finding", "[fuzz]") {
  const auto api = files_in(std::string(TOKEND_FUZZ_DIR) + "/seeds/api_json");
  REQUIRE(api.size() >= 8);
  int decoded_pages = 0;
  for (const std::string& file : api) {
    tokend::fuzz::api_json(read_file(file));
    if (tokend::astro::json::decode_token_page(read_file(file)).ok()) ++decoded_pages;
  }
  CHECK(decoded_pages == 1);
  // The v1 seeds are v1 answers: what the client reads of them.
  auto v1_page = tokend::astro::json::decode_token_page(
      read_file(std::string(TOKEND_FUZZ_DIR) + "/seeds/api_json/v1_token_page.json"),
      tokend::astro::ApiVersion::V1);
  REQUIRE(v1_page.ok());
  REQUIRE(v1_page->tokens.size() == 1);
  CHECK(v1_page->tokens[0].kind == tokend::TokenKind::DirectAccess);
  CHECK(v1_page->tokens[0].roles.size() == 3);
  CHECK(tokend::astro::json::decode_error(
            read_file(std::string(TOKEND_FUZZ_DIR) + "/seeds/api_json/v1_error.json"))
            ->field_errors.size() == 1);
  const auto bodies = files_in(std::string(TOKEND_FUZZ_DIR) + "/seeds/sim_bodies");
  REQUIRE(bodies.size() >= 4);
  for (const std::string& file : bodies) tokend::fuzz::sim_bodies(read_file(file));
  tokend::fuzz::plan_file(
      read_file(std::string(TOKEND_SOURCE_DIR) + "/tests/data/plan/all_actions.plan.json"));
  CHECK(tokend::plan::load_plan(
            read_file(std::string(TOKEND_SOURCE_DIR) + "/tests/data/plan/all_actions.plan.json"))
            .ok());
}
