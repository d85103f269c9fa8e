// spec/writer.h: TOML quoting, generated spec text, key derivation, and the
// round trip write -> load giving the same attributes.
#include <catch2/catch.hpp>

#include <toml.hpp>

#include <sstream>

#include "spec/loader.h"
#include "spec/writer.h"
#include "support/process.h"

using namespace tokend;
using namespace tokend::spec;

namespace {

const std::string kOrg = "clx42kkcm01fo01o06agtmshg";
const std::string kWorkspace = "clx42sxw501gl01o0gjenthnh";
const std::string kDeployment = "clyn6kxud003x01mtxmccegnh";

TokenAttrs attrs(std::string name, std::string description, EntityType type, std::string role,
                 RoleSet roles) {
  TokenAttrs a;
  a.name = std::move(name);
  a.description = std::move(description);
  a.type = type;
  a.role = std::move(role);
  a.roles = normalize_roles(std::move(roles));
  return a;
}

}  // namespace

TEST_CASE("toml_quote escapes quotes, backslashes and control characters, keeps UTF-8",
          "[spec][writer]") {
  CHECK(toml_quote("plain") == "\"plain\"");
  CHECK(toml_quote("a \"b\" \\c") == "\"a \\\"b\\\" \\\\c\"");
  CHECK(toml_quote("t\tn\nr\rb\bf\f") == "\"t\\tn\\nr\\rb\\bf\\f\"");
  CHECK(toml_quote(std::string("nul\0x", 5)) == "\"nul\\u0000x\"");
  CHECK(toml_quote("\x1b[31m\x7f") == "\"\\u001B[31m\\u007F\"");
  CHECK(toml_quote("Zürich – 東京") == "\"Zürich – 東京\"");
  for (const std::string& text : {std::string("q\"\\\n\t\x01\x7f é"), std::string("'''\"\"\"")}) {
    std::istringstream stream("v = " + toml_quote(text) + "\n");
    const toml::value parsed = toml::parse(stream, "quoted.toml");
    CHECK(toml::find<std::string>(parsed, "v") == text);
  }
}

TEST_CASE("derive_key lowercases, joins runs with _, prefixes and suffixes on collision",
          "[spec][writer]") {
  std::set<std::string> taken{"taken"};
  CHECK(derive_key("CI Deployer", taken) == "ci_deployer");
  CHECK(derive_key("ci-deployer", taken) == "ci_deployer_2");
  CHECK(derive_key("  ci   deployer!! ", taken) == "ci_deployer_3");
  CHECK(derive_key("Taken", taken) == "taken_2");
  CHECK(derive_key("42 things", taken) == "token_42_things");
  CHECK(derive_key("東京", taken) == "token");
  CHECK(derive_key("", taken) == "token_2");
  CHECK(derive_key("module.team_a.astro_api_token.deployer[\"prod\"]", taken) ==
        "module_team_a_astro_api_token_deployer_prod");
  CHECK(taken.count("ci_deployer_3") == 1);
}

TEST_CASE("written specs load back with the same attributes", "[spec][writer]") {
  TokenAttrs org = attrs("Org \"root\" \\ token", "line one\nline two\ttab – ünï",
                         EntityType::Organization, "ORGANIZATION_MEMBER",
                         {{"WORKSPACE_MEMBER", kWorkspace, EntityType::Workspace},
                          {"ORGANIZATION_MEMBER", kOrg, EntityType::Organization},
                          {"DEPLOYMENT_ADMIN", kDeployment, EntityType::Deployment}});
  org.expiry_period_in_days = 30;
  TokenAttrs dag = attrs("dag author", "", EntityType::Deployment, "DEPLOYMENT_ADMIN",
                         {{"DEPLOYMENT_ADMIN", kDeployment, EntityType::Deployment},
                          {"DAG_AUTHOR", "etl_daily", EntityType::Dag, kDeployment},
                          {"DAG_VIEWER", "finance", EntityType::DagTag, kDeployment}});
  dag.kind = TokenKind::DirectAccess;
  std::vector<WrittenSpec> specs{{"org_root", org, {"id: clorg", "bad\ncomment"}},
                                 {"dag_author", dag, {"id: cldag"}}};
  const std::string text = write_specs(specs);
  CHECK(text.find("# id: clorg\n# bad?comment\n[api_token.org_root]\n") == 0);
  CHECK(text.find("expiry_period_in_days = 30\n") != std::string::npos);
  CHECK(text.find("kind = \"DIRECT_ACCESS\"\n") != std::string::npos);
  CHECK(text.find("kind = \"STANDARD\"") == std::string::npos);
  CHECK(text.find("description = \"\"") == std::string::npos);
  CHECK(text.find("deployment_id = \"" + kDeployment + "\" },\n") != std::string::npos);
  // Roles are written in one stable order whatever order they came in.
  WrittenSpec reversed = specs[0];
  reversed.attrs.roles.assign(org.roles.rbegin(), org.roles.rend());
  CHECK(write_specs({reversed}) == write_specs({specs[0]}));

  // The round trip, DAG roles with their deployment and the kind included.
  testing::TempDir dir;
  testing::write_file(dir.file("adopted.toml"), text);
  Config config;
  config.path = dir.file("astro-tokend.toml");
  config.organization_id = kOrg;
  config.spec_paths = {dir.path()};
  config.secrets_dir = dir.file("secrets");
  Loaded<std::vector<TokenSpec>> loaded = load_specs(config);
  std::string problems;
  for (const Diagnostic& d : loaded.diagnostics) problems += d.format();
  INFO(text << problems);
  REQUIRE(loaded.ok());
  REQUIRE(loaded.value->size() == 2);
  for (const TokenSpec& spec : *loaded.value) {
    if (spec.key == "org_root") {
      CHECK(spec.attrs == org);
    } else {
      CHECK(spec.key == "dag_author");
      CHECK(spec.attrs == dag);
    }
  }
}
