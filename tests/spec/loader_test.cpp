// Direct tests of spec/loader.h: config keys and defaults, path resolution,
// token attributes, normalized roles, spec hashing.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>

#include "spec/loader.h"
#include "support/process.h"

using namespace tokend;
using namespace tokend::spec;
using std::chrono::milliseconds;
namespace fs = std::filesystem;

namespace {

const std::string kSource = TOKEND_SOURCE_DIR;
const std::string kValid = kSource + "/tests/data/specs/valid";
const std::string kOrganizationId = "clx42kkcm01fo01o06agtmshg";

Config config_for(std::vector<std::string> spec_paths, std::string secrets_dir = "/srv/secrets") {
  Config config;
  config.path = "/etc/astro-tokend/astro-tokend.toml";
  config.organization_id = kOrganizationId;
  config.spec_paths = std::move(spec_paths);
  config.secrets_dir = std::move(secrets_dir);
  return config;
}

std::string messages(const std::vector<Diagnostic>& diagnostics) {
  std::string out;
  for (const Diagnostic& d : diagnostics) out += d.format();
  return out;
}

const TokenSpec& token(const std::vector<TokenSpec>& tokens, const std::string& key) {
  auto it =
      std::find_if(tokens.begin(), tokens.end(), [&](const TokenSpec& t) { return t.key == key; });
  REQUIRE(it != tokens.end());
  return *it;
}

}  // namespace

TEST_CASE("a config with only organization_id takes every default", "[spec]") {
  Loaded<Config> loaded = load_config(kValid + "/config_defaults.toml");
  INFO(messages(loaded.diagnostics));
  REQUIRE(loaded.ok());
  const Config& c = *loaded.value;
  CHECK(c.path == kValid + "/config_defaults.toml");
  CHECK(c.organization_id == kOrganizationId);
  CHECK(c.api_url == "https://api.astronomer.io");
  CHECK(c.api_version == ApiVersion::V1);
  CHECK(c.token_file.empty());
  CHECK(c.token_env == "ASTRO_API_TOKEN");
  CHECK(c.timeout == milliseconds(30000));
  CHECK(c.ca_file.empty());
  CHECK(c.rate_limits == RateLimits{25, 10, 5});
  CHECK(c.spec_paths == std::vector<std::string>{kValid + "/empty"});
  CHECK_FALSE(c.spec_cache_dir.has_value());
  CHECK(c.state_backend == StateBackend::Sqlite);
  CHECK(c.state_path == "/var/lib/astro-tokend/state.db");
  CHECK(c.state_dsn.empty());
  CHECK(c.interval == milliseconds(300000));
  CHECK(c.jitter == milliseconds(30000));
  CHECK(c.mode == ReconcileMode::Apply);
  CHECK(c.parallelism == 4);
  CHECK(c.max_deletes_per_run == 5);
  CHECK(c.secrets_dir == "/var/lib/astro-tokend/tokens");
  CHECK(c.sink_mode == 0600);
  CHECK(c.sink_group.empty());
  CHECK(c.on_delivery.empty());
  CHECK(c.hook_timeout == milliseconds(30000));
  CHECK(c.listen == "127.0.0.1:9464");
  CHECK(c.log_level == "info");
  CHECK(c.log_format == "text");
}

TEST_CASE("every config key is read and relative paths resolve against the config's directory",
          "[spec]") {
  // Given by a relative path, which must not matter.
  const std::string relative =
      fs::path(kValid + "/config_full.toml").lexically_proximate(fs::current_path()).string();
  for (const std::string& path : {kValid + "/config_full.toml", relative}) {
    Loaded<Config> loaded = load_config(path);
    INFO(path << "\n" << messages(loaded.diagnostics));
    REQUIRE(loaded.ok());
    const Config& c = *loaded.value;
    CHECK(c.path == kValid + "/config_full.toml");
    CHECK(c.api_url == "http://127.0.0.1:8787");  // trailing slash dropped
    CHECK(c.token_file == kValid + "/secrets/astro-api-token");
    CHECK(c.token_env == "MY_ASTRO_TOKEN");
    CHECK(c.timeout == milliseconds(90000));
    CHECK(c.ca_file == "/etc/ssl/extra.pem");
    CHECK(c.rate_limits == RateLimits{2.5, 1, 0.5});
    CHECK(c.spec_paths ==
          std::vector<std::string>{kValid + "/empty", kValid + "/array_of_tables.toml"});
    CHECK(c.spec_cache_dir == kValid + "/data/spec-cache");
    CHECK(c.state_path == kValid + "/data/state.db");
    CHECK(c.interval == milliseconds(3600000));
    CHECK(c.jitter == milliseconds(0));
    CHECK(c.mode == ReconcileMode::Plan);
    CHECK(c.parallelism == 64);
    CHECK(c.max_deletes_per_run == 0);
    CHECK(c.secrets_dir == kValid + "/tokens");
    CHECK(c.sink_mode == 0440);
    CHECK(c.sink_group == "daemon");
    CHECK(c.on_delivery == std::vector<std::string>{"/usr/local/bin/reload-consumers", "--all"});
    CHECK(c.hook_timeout == milliseconds(120000));
    CHECK(c.listen.empty());
    CHECK(c.log_level == "debug");
    CHECK(c.log_format == "json");
  }
}

TEST_CASE("a postgres state takes a dsn - only one without a password", "[spec]") {
  struct Case {
    std::string dsn;
    bool has_password;
  };
  const std::vector<Case> cases = {
      {"host=/run/postgresql dbname=tokend", false},
      {"host=db dbname=tokend passfile=/etc/astro-tokend/pgpass user=password", false},
      {"host=db application_name='password=x' dbname=tokend", false},
      {"postgresql://tokend@db.example.com:5432/tokend?sslmode=verify-full", false},
      {"postgres:///tokend?host=/run/postgresql", false},
      {"host=db password=x", true},
      {"host=db  PASSWORD = 'a \\' b'", true},
      {"postgresql://tokend:x@db/tokend", true},
      {"postgresql://db/tokend?user=tokend&password=x", true},
  };
  for (const Case& c : cases) {
    testing::TempDir dir;
    fs::create_directory(dir.file("specs"));
    std::string quoted;
    for (char ch : c.dsn) {
      if (ch == '"' || ch == '\\') quoted += '\\';
      quoted += ch;
    }
    testing::write_file(dir.file("config.toml"),
                        "[astro]\norganization_id = \"" + kOrganizationId +
                            "\"\n[specs]\npaths = [\"specs\"]\n[state]\nbackend = \"postgres\"\n"
                            "dsn = \"" +
                            quoted + "\"\n");
    Loaded<Config> loaded = load_config(dir.file("config.toml"));
    INFO(c.dsn << "\n" << messages(loaded.diagnostics));
    if (c.has_password) {
      REQUIRE(loaded.diagnostics.size() == 1);
      CHECK(loaded.diagnostics[0].pos.line == 7);
      CHECK(loaded.diagnostics[0].pos.column == 7);
      CHECK(loaded.diagnostics[0].message ==
            "dsn must not contain a password: use a passfile (PGPASSFILE) or the credential "
            "astro-tokend-postgres");
    } else {
      REQUIRE(loaded.ok());
      CHECK(loaded.value->state_backend == StateBackend::Postgres);
      CHECK(loaded.value->state_dsn == c.dsn);
    }
  }
}

TEST_CASE("api_version is v1 or v1beta1 and nothing else", "[spec]") {
  struct Case {
    std::string value;
    std::optional<ApiVersion> version;  // nullopt: an error at the value
  };
  for (const Case& c : std::vector<Case>{{"\"v1\"", ApiVersion::V1},
                                         {"\"v1beta1\"", ApiVersion::V1Beta1},
                                         {"\"V1\"", std::nullopt},
                                         {"\"\"", std::nullopt},
                                         {"1", std::nullopt}}) {
    testing::TempDir dir;
    fs::create_directory(dir.file("specs"));
    testing::write_file(dir.file("config.toml"), "[astro]\norganization_id = \"" + kOrganizationId +
                                                     "\"\napi_version = " + c.value +
                                                     "\n[specs]\npaths = [\"specs\"]\n");
    Loaded<Config> loaded = load_config(dir.file("config.toml"));
    INFO(c.value << "\n" << messages(loaded.diagnostics));
    if (c.version) {
      REQUIRE(loaded.ok());
      CHECK(loaded.value->api_version == *c.version);
    } else {
      REQUIRE(loaded.diagnostics.size() == 1);
      CHECK(loaded.diagnostics[0].pos.line == 3);
      CHECK(loaded.diagnostics[0].pos.column == 15);
      CHECK(loaded.diagnostics[0].message.find("api_version must be") != std::string::npos);
    }
  }
}

TEST_CASE("load_config turns unreadable and malformed files into diagnostics", "[spec]") {
  testing::TempDir dir;
  testing::write_file(dir.file("empty.toml"), "");
  testing::write_file(dir.file("binary.toml"), std::string("\x00\x01\xff\xfe[", 5));
  testing::write_file(dir.file("deep.toml"), "a = " + std::string(200, '[') + "\n");
  fs::create_directory(dir.file("dir.toml"));
  for (const std::string name :
       {"empty.toml", "binary.toml", "deep.toml", "dir.toml", "absent.toml"}) {
    Loaded<Config> loaded;
    REQUIRE_NOTHROW(loaded = load_config(dir.file(name)));
    INFO(name << "\n" << messages(loaded.diagnostics));
    CHECK_FALSE(loaded.ok());
    CHECK_FALSE(loaded.value.has_value());
    REQUIRE_FALSE(loaded.diagnostics.empty());
    CHECK(loaded.diagnostics[0].pos.file == dir.file(name));
  }
  Loaded<Config> empty = load_config(dir.file("empty.toml"));
  REQUIRE(empty.diagnostics.size() == 1);
  CHECK(empty.diagnostics[0].message == "missing required key \"organization_id\" in [astro]");
}

TEST_CASE("token specs carry every attribute - defaults and resolved sinks", "[spec]") {
  Loaded<std::vector<TokenSpec>> loaded = load_specs(config_for({kValid + "/inline_roles.toml"}));
  INFO(messages(loaded.diagnostics));
  REQUIRE(loaded.ok());
  const std::vector<TokenSpec>& tokens = *loaded.value;
  REQUIRE(tokens.size() == 2);
  CHECK(tokens[0].key == "ci_deployer");  // sorted by key
  CHECK(tokens[1].key == "org_owner");

  const TokenSpec& ci = tokens[0];
  CHECK(ci.attrs.name == "ci deployer");
  CHECK(ci.attrs.description == "used by the CI pipeline");
  CHECK(ci.attrs.type == EntityType::Workspace);
  CHECK(ci.attrs.role == "WORKSPACE_OWNER");
  // Written WORKSPACE first; stored normalized.
  CHECK(ci.attrs.roles ==
        RoleSet{{"DEPLOYMENT_ADMIN", "clyn6kxud003x01mtxmccegnh", EntityType::Deployment},
                {"WORKSPACE_OWNER", "clx42sxw501gl01o0gjenthnh", EntityType::Workspace}});
  CHECK(ci.attrs.expiry_period_in_days == 30);
  CHECK(ci.rotate_before_expiry_days == 7);
  CHECK(ci.rotate_every_days == 0);
  CHECK(ci.sink == "/srv/secrets/ci/deployer.token");
  CHECK(ci.import_id == "clm8q7f6q000008lcgyougpsk");
  CHECK(ci.lifecycle == Lifecycle{true, true, {"description"}});
  CHECK(ci.pos.line == 3);
  CHECK(ci.pos.file.ends_with("tests/data/specs/valid/inline_roles.toml"));

  const TokenSpec& org = tokens[1];
  CHECK(org.attrs.description.empty());
  CHECK(org.attrs.expiry_period_in_days == std::nullopt);
  CHECK(org.rotate_before_expiry_days == 0);
  CHECK(org.rotate_every_days == 0);
  CHECK(org.sink == "/srv/secrets/org_owner.token");
  CHECK(org.import_id == std::nullopt);
  CHECK(org.lifecycle == Lifecycle{});
}

TEST_CASE("inline roles and arrays of tables load to the same token", "[spec]") {
  Loaded<std::vector<TokenSpec>> loaded =
      load_specs(config_for({kValid + "/inline_roles.toml", kValid + "/array_of_tables.toml"}));
  INFO(messages(loaded.diagnostics));
  REQUIRE(loaded.ok());
  const TokenSpec& inline_form = token(*loaded.value, "ci_deployer");
  const TokenSpec& tables_form = token(*loaded.value, "ci_deployer_tables");
  CHECK(inline_form.attrs == tables_form.attrs);
  CHECK(inline_form.lifecycle == tables_form.lifecycle);
  CHECK(std::is_sorted(tables_form.attrs.roles.begin(), tables_form.attrs.roles.end()));
  CHECK(token(*loaded.value, "dag_runner").attrs.roles ==
        RoleSet{{"DAG_RUNNER", "clyn6kxud003x01mtxmccegnh", EntityType::Deployment}});
}

TEST_CASE("limits: lengths count characters - edge values are accepted", "[spec]") {
  Loaded<std::vector<TokenSpec>> loaded = load_specs(config_for({kValid + "/limits.toml"}));
  INFO(messages(loaded.diagnostics));
  REQUIRE(loaded.ok());
  const TokenSpec& longest = token(*loaded.value, "longest");
  CHECK(longest.attrs.name.size() == 512);  // 256 two-byte characters
  CHECK(longest.attrs.expiry_period_in_days == 3650);
  CHECK(longest.rotate_before_expiry_days == 3649);
  CHECK(longest.rotate_every_days == 3650);
  CHECK(longest.lifecycle.ignore_changes == std::vector<std::string>{"all"});
  CHECK(token(*loaded.value, "shortest-lived").sink ==
        "/var/lib/astro-tokend/custom/shortest.token");
}

TEST_CASE("a missing spec path is reported by load_specs", "[spec]") {
  Loaded<std::vector<TokenSpec>> loaded =
      load_specs(config_for({"/nonexistent/astro-tokend/tokens.d"}));
  REQUIRE(loaded.diagnostics.size() == 1);
  CHECK(loaded.diagnostics[0].pos.file == "/nonexistent/astro-tokend/tokens.d");
  CHECK(loaded.diagnostics[0].message == "spec path does not exist");
  CHECK_FALSE(loaded.value.has_value());
}

TEST_CASE("the spec hash follows the spec files' bytes", "[spec]") {
  testing::TempDir dir;
  const std::string spec =
      "[api_token.ci]\nname = \"ci\"\ntype = \"DEPLOYMENT\"\nrole = \"DEPLOYMENT_ADMIN\"\n"
      "roles = [{ role = \"DEPLOYMENT_ADMIN\", entity_id = \"d1\", entity_type = \"DEPLOYMENT\" "
      "}]\n";
  testing::write_file(dir.file("a.toml"), spec);
  const Config config = config_for({dir.path()});
  std::string first, again, changed;
  REQUIRE(load_specs(config, &first).ok());
  REQUIRE(load_specs(config, &again).ok());
  CHECK(first.size() == 64);
  CHECK(first == again);
  testing::write_file(dir.file("a.toml"), spec + "# a comment\n");
  REQUIRE(load_specs(config, &changed).ok());
  CHECK(changed != first);
}

TEST_CASE("the example config loads as the desired state", "[spec]") {
  Loaded<DesiredState> loaded = load_desired_state(kSource + "/config/astro-tokend.toml");
  INFO(messages(loaded.diagnostics));
  REQUIRE(loaded.ok());
  const DesiredState& state = *loaded.value;
  CHECK(state.config.organization_id == kOrganizationId);
  CHECK(state.config.api_url == "http://127.0.0.1:8787");
  CHECK(state.config.spec_paths == std::vector<std::string>{kSource + "/config/tokens.d"});
  CHECK(state.config.state_path == kSource + "/.tokend/state.db");
  CHECK(state.config.secrets_dir == kSource + "/.tokend/tokens");
  std::vector<std::string> keys;
  for (const TokenSpec& t : state.tokens) keys.push_back(t.key);
  CHECK(keys == std::vector<std::string>{"deployment_token_with_dag_roles", "organization_token",
                                         "organization_token_with_multiple_roles",
                                         "workspace_token",
                                         "workspace_token_with_deployment_role"});
  CHECK(token(state.tokens, "workspace_token").sink ==
        kSource + "/.tokend/tokens/workspace_token.token");
  CHECK(token(state.tokens, "organization_token").attrs.expiry_period_in_days == 30);
  CHECK(token(state.tokens, "organization_token_with_multiple_roles").attrs.roles.size() == 3);
  CHECK(state.spec_hash.size() == 64);
}

TEST_CASE("load_desired_state reports config and spec problems together", "[spec]") {
  testing::TempDir dir;
  testing::write_file(dir.file("config.toml"),
                      "[astro]\norganization_id = \"" + kOrganizationId +
                          "\"\ntimout = \"1s\"\n[specs]\npaths = [\"specs\"]\n");
  fs::create_directory(dir.file("specs"));
  testing::write_file(dir.file("specs/a.toml"), "[api_token.a]\nname = \"a\"\n");
  Loaded<DesiredState> loaded = load_desired_state(dir.file("config.toml"));
  CHECK_FALSE(loaded.value.has_value());
  REQUIRE(loaded.diagnostics.size() == 4);
  CHECK(loaded.diagnostics[0].pos.file == dir.file("config.toml"));
  CHECK(loaded.diagnostics[0].pos.line == 3);
  for (std::size_t i = 1; i < 4; ++i)
    CHECK(loaded.diagnostics[i].pos.file == dir.file("specs/a.toml"));
}

TEST_CASE("delivery keys default to [secrets] and a token's own value wins", "[spec]") {
  testing::TempDir dir;
  const std::string roles =
      "type = \"WORKSPACE\"\nrole = \"WORKSPACE_OWNER\"\nroles = [{ role = \"WORKSPACE_OWNER\", "
      "entity_id = \"clx42sxw501gl01o0gjenthnh\", entity_type = \"WORKSPACE\" }]\n";
  testing::write_file(dir.file("specs.toml"), "[api_token.inherits]\nname = \"a\"\n" + roles +
                                                  "[api_token.own]\nname = \"b\"\n" + roles +
                                                  "sink_mode = \"0640\"\nsink_group = \"daemon\"\n"
                                                  "on_delivery = [\"/bin/own\", \"--flag\", \"\"]\n"
                                                  "[api_token.none]\nname = \"c\"\n" +
                                                  roles +
                                                  "on_delivery = []\n"
                                                  "sink = \"sub/../c.token\"\n");
  Config config = config_for({dir.file("specs.toml")});
  config.sink_mode = 0400;
  config.on_delivery = {"/usr/bin/default-hook"};
  Loaded<std::vector<TokenSpec>> loaded = load_specs(config);
  INFO(messages(loaded.diagnostics));
  REQUIRE(loaded.ok());
  const TokenSpec& inherits = token(*loaded.value, "inherits");
  CHECK(inherits.sink_mode == 0400);
  CHECK(inherits.sink_group.empty());
  CHECK(inherits.on_delivery == std::vector<std::string>{"/usr/bin/default-hook"});
  const TokenSpec& own = token(*loaded.value, "own");
  CHECK(own.sink_mode == 0640);
  CHECK(own.sink_group == "daemon");
  CHECK(own.on_delivery == std::vector<std::string>{"/bin/own", "--flag", ""});
  const TokenSpec& none = token(*loaded.value, "none");
  CHECK(none.on_delivery.empty());
  CHECK(none.sink == "/srv/secrets/c.token");
}

TEST_CASE("a relative sink may not climb out of the secrets dir - an absolute one may be anywhere",
          "[spec]") {
  testing::TempDir dir;
  const std::string token =
      "type = \"WORKSPACE\"\nrole = \"WORKSPACE_OWNER\"\nroles = [{ role = \"WORKSPACE_OWNER\", "
      "entity_id = \"clx42sxw501gl01o0gjenthnh\", entity_type = \"WORKSPACE\" }]\n";
  struct Case {
    std::string sink;
    bool ok;
  };
  for (const Case& c : std::vector<Case>{{"../x.token", false},
                                         {"a/../../x.token", false},
                                         {"../secrets-other/x.token", false},
                                         {"../secrets/x.token", true},
                                         {"a/../x.token", true},
                                         {"/elsewhere/x.token", true},
                                         {"/srv/secrets/../x.token", true}}) {
    testing::write_file(dir.file("specs.toml"),
                        "[api_token.k]\nname = \"k\"\n" + token + "sink = \"" + c.sink + "\"\n");
    Loaded<std::vector<TokenSpec>> loaded = load_specs(config_for({dir.file("specs.toml")}));
    INFO(c.sink << "\n" << messages(loaded.diagnostics));
    if (c.ok) {
      CHECK(loaded.ok());
      continue;
    }
    REQUIRE(loaded.diagnostics.size() == 1);
    CHECK(loaded.diagnostics[0].pos.line == 6);
    CHECK(loaded.diagnostics[0].pos.column == 8);
    CHECK(loaded.diagnostics[0].message ==
          "sink \"" + c.sink +
              "\" climbs out of [secrets] dir \"/srv/secrets\" with \"..\"; write an absolute path "
              "for a sink elsewhere");
  }
}
