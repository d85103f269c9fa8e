// `adopt --generate-config-out` against astro-api-sim: a mixed organization
// adopted in one listing with no API write, after which validate passes and
// plan shows no changes; filters; bad input writes nothing.
#include <catch2/catch.hpp>

#include <filesystem>
#include <set>

#include "integration/apply_fixture.h"

using namespace tokend;
using namespace tokend::testing;

namespace {

sim::NewToken new_token(std::string name, std::string description, EntityType type,
                        std::string role, std::string entity, RoleSet roles,
                        std::optional<int> expiry = std::nullopt,
                        TokenKind kind = TokenKind::Standard) {
  sim::NewToken token;
  token.request.name = std::move(name);
  token.request.description = std::move(description);
  token.request.type = type;
  token.request.role = std::move(role);
  token.request.entity_id = type == EntityType::Organization ? "" : std::move(entity);
  token.request.expiry_period_in_days = expiry;
  token.request.kind = kind;
  if (!roles.empty()) token.roles = std::move(roles);
  return token;
}

// A mixed organization: every token type, several roles, expiry, a
// deployment token, names that collide once lowercased,
// quotes, backslashes and non-ASCII text. Returns the ids in this order.
std::vector<std::string> seed_mixed(ApplyWorkspace& ws) {
  const std::string org = ws.sim().org_id();
  sim::BulkCreate request;
  request.tokens.push_back(
      new_token("Org \"root\" token", "naïve – ünïcode \\ back\\slash \"quoted\"",
                EntityType::Organization, "ORGANIZATION_MEMBER", "",
                {{"ORGANIZATION_MEMBER", org, EntityType::Organization},
                 {"WORKSPACE_MEMBER", kSimWorkspaceId, EntityType::Workspace},
                 {"DEPLOYMENT_ADMIN", kSimDeploymentId, EntityType::Deployment}},
                90));
  request.tokens.push_back(
      new_token("ci deployer", "", EntityType::Workspace, "WORKSPACE_OPERATOR", kSimWorkspaceId,
                {{"WORKSPACE_OPERATOR", kSimWorkspaceId, EntityType::Workspace},
                 {"DEPLOYMENT_ADMIN", kSimDeploymentId, EntityType::Deployment}}));
  request.tokens.push_back(new_token("CI Deployer", "second of the name", EntityType::Workspace,
                                     "WORKSPACE_MEMBER", kSimWorkspaceId, {}, 30));
  request.tokens.push_back(
      new_token("ci deployer", "東京 dag author", EntityType::Deployment, "DEPLOYMENT_ADMIN",
                kSimDeploymentId,
                {{"DEPLOYMENT_ADMIN", kSimDeploymentId, EntityType::Deployment},
                 {"DAG_AUTHOR", "etl_daily", EntityType::Dag, kSimDeploymentId},
                 {"DAG_VIEWER", "finance", EntityType::DagTag, kSimDeploymentId}},
                std::nullopt, TokenKind::DirectAccess));
  return ws.control().create_tokens(request).ids;
}

}  // namespace

TEST_CASE("adopt writes a spec per unmanaged token, records them, and plan is then empty",
          "[integration][adopt]") {
  ApplyWorkspace ws;
  ws.write_spec("managed.toml",
                "[api_token.managed]\nname = \"managed\"\ntype = \"WORKSPACE\"\nrole = "
                "\"WORKSPACE_MEMBER\"\nroles = [{ role = \"WORKSPACE_MEMBER\", entity_id = \"" +
                    std::string(kSimWorkspaceId) + "\", entity_type = \"WORKSPACE\" }]\n");
  REQUIRE_EXIT(ws.apply(), 0);
  const std::string managed_id = ws.row("managed").id;
  const std::vector<std::string> ids = seed_mixed(ws);
  REQUIRE(ids.size() == 4);
  const size_t tokens_before = ws.control().tokens().size();
  ws.control().reset_requests();

  const std::string out = ws.spec_dir() + "/adopted.toml";
  ProcessResult adopted = ws.tokend({"adopt", "--generate-config-out", out});
  REQUIRE_EXIT(adopted, 0);
  const RequestStats stats = ws.control().requests();
  CHECK(writes(stats).empty());
  CHECK(stats.count("ListApiTokens") >= 1);
  CHECK(stats.count("GetApiToken") == 0);
  CHECK(ws.control().tokens().size() == tokens_before);

  const std::string text = read_file(out);
  INFO(text);
  // Keys from names, unique; the id in a comment above each table.
  CHECK(text.find("# id: " + ids[0] + "\n[api_token.org_root_token]\n") != std::string::npos);
  CHECK(text.find("[api_token.ci_deployer]\n") != std::string::npos);
  CHECK(text.find("[api_token.ci_deployer_2]\n") != std::string::npos);
  CHECK(text.find("[api_token.ci_deployer_3]\n") != std::string::npos);
  CHECK(text.find("[api_token.managed") == std::string::npos);
  CHECK(text.find(managed_id) == std::string::npos);
  CHECK(text.find("name = \"Org \\\"root\\\" token\"\n") != std::string::npos);
  CHECK(text.find("description = \"naïve – ünïcode \\\\ back\\\\slash \\\"quoted\\\"\"\n") !=
        std::string::npos);
  CHECK(text.find("東京 dag author") != std::string::npos);
  CHECK(text.find("expiry_period_in_days = 90\n") != std::string::npos);
  CHECK(text.find("expiry_period_in_days = 30\n") != std::string::npos);

  // Every adopted token is in the state under its key, with its sink and no
  // delivered value.
  const auto rows = ws.rows();
  CHECK(rows.size() == 5);
  std::set<std::string> row_ids;
  for (const auto& row : rows) {
    row_ids.insert(row.id);
    if (row.key != "managed") {
      CHECK(row.sink_sha256.empty());
      CHECK(row.sink_path == ws.sink_for(row.key));
    }
  }
  for (const std::string& id : ids) CHECK(row_ids.count(id) == 1);
  for (const auto& row : rows)
    if (row.key != "managed") CHECK(!std::filesystem::exists(row.sink_path));

  REQUIRE_EXIT(ws.tokend({"validate"}), 0);
  ProcessResult plan = ws.tokend({"plan", "--detailed-exitcode"});
  REQUIRE_EXIT(plan, 0);
  CHECK(plan.out.find("No changes.") != std::string::npos);

  // Nothing is left to adopt: no file written.
  ProcessResult again = ws.tokend({"adopt", "--generate-config-out", ws.spec_dir() + "/more.toml"});
  REQUIRE_EXIT(again, 0);
  CHECK(!std::filesystem::exists(ws.spec_dir() + "/more.toml"));
  CHECK(ws.rows().size() == 5);
}

TEST_CASE("adopt --name and --type take only the matching tokens", "[integration][adopt]") {
  ApplyWorkspace ws;
  const std::vector<std::string> ids = seed_mixed(ws);
  REQUIRE(ids.size() == 4);
  REQUIRE_EXIT(ws.tokend({"adopt", "--generate-config-out", ws.spec_dir() + "/ws.toml", "--name",
                          "^ci", "--type", "WORKSPACE"}),
               0);
  auto rows = ws.rows();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].id == ids[1]);
  CHECK(rows[0].key == "ci_deployer");
  REQUIRE_EXIT(ws.tokend({"adopt", "--generate-config-out", ws.spec_dir() + "/dep.toml", "--type",
                          "DEPLOYMENT"}),
               0);
  rows = ws.rows();
  REQUIRE(rows.size() == 2);
  CHECK(ws.row("ci_deployer_2").id == ids[3]);
  ProcessResult plan = ws.tokend({"plan", "--detailed-exitcode"});
  REQUIRE_EXIT(plan, 0);
}

TEST_CASE("adopt refuses bad input with exit 1 and writes nothing", "[integration][adopt]") {
  ApplyWorkspace ws;
  seed_mixed(ws);
  const std::string existing = ws.spec_dir() + "/existing.toml";
  write_file(existing, "# nothing yet\n");
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--generate-config-out", existing}, "already exists"},
      {{"--generate-config-out", ws.dir().file("outside.toml")}, "spec directory"},
      {{"--generate-config-out", ws.spec_dir() + "/sub/deeper.toml"}, "spec directory"},
      {{"--generate-config-out", ws.spec_dir() + "/adopted.txt"}, ".toml"},
      {{"--generate-config-out", ws.spec_dir() + "/adopted.toml", "--name", "(unclosed"},
       "not a valid regular expression"},
      {{"--generate-config-out", ws.spec_dir() + "/adopted.toml", "--type", "DAG"},
       "--type must be"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args{"adopt"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    ProcessResult result = ws.tokend(args);
    INFO(process_output(result));
    CHECK(result.exit_code == 1);
    CHECK(result.err.find(c.message) != std::string::npos);
  }
  CHECK(read_file(existing) == "# nothing yet\n");
  CHECK(!std::filesystem::exists(ws.spec_dir() + "/adopted.toml"));
  CHECK(!std::filesystem::exists(ws.dir().file("outside.toml")));
  CHECK((!std::filesystem::exists(ws.state_path()) || ws.rows().empty()));
}

namespace {

std::string instance(const std::string& index_key, const std::string& extra,
                     const std::string& attributes) {
  std::string text = "{";
  if (!index_key.empty()) text.append("\"index_key\": ").append(index_key).append(", ");
  text.append(extra).append("\"schema_version\": 0, \"attributes\": {").append(attributes);
  text.append("}, \"sensitive_attributes\": [[{\"type\": \"get_attr\", \"value\": \"token\"}]]}");
  return text;
}

std::string resource(const std::string& module, const std::string& mode, const std::string& type,
                     const std::string& name, const std::vector<std::string>& instances) {
  std::string text = "{";
  if (!module.empty()) text.append("\"module\": \"").append(module).append("\", ");
  text.append("\"mode\": \"").append(mode).append("\", \"type\": \"").append(type);
  text.append("\", \"name\": \"").append(name);
  text.append(
      "\", \"provider\": \"provider[\\\"registry.terraform.io/astronomer/astro\\\"]\", "
      "\"instances\": [");
  for (size_t i = 0; i < instances.size(); ++i) {
    if (i > 0) text.append(", ");
    text.append(instances[i]);
  }
  text.append("]}");
  return text;
}

std::string tf_state(const std::vector<std::string>& resources) {
  std::string text =
      "{\"version\": 4, \"terraform_version\": \"1.9.5\", \"serial\": 7, \"lineage\": "
      "\"0b9d5c1e-3f1a-4c55-9d7e-2a7f0c1d2e3f\", \"outputs\": {}, \"resources\": [";
  for (size_t i = 0; i < resources.size(); ++i) text += (i ? ", " : "") + resources[i];
  return text + "], \"check_results\": null}";
}

std::string attrs_of(const astro::ApiToken& token, const std::string& value,
                     const std::string& name_override = "") {
  return "\"id\": \"" + token.id + "\", \"name\": \"" +
         (name_override.empty() ? token.name : name_override) + "\", \"description\": \"" +
         token.description + "\", \"type\": \"" + std::string(to_string(token.type)) + "\"" +
         (value.empty() ? "" : ", \"token\": \"" + value + "\"") + ", \"short_token\": \"" +
         token.short_token + "\"";
}

}  // namespace

TEST_CASE("adopt --from-terraform-state takes the state's tokens, values into their sinks",
          "[integration][adopt][terraform]") {
  ApplyWorkspace ws;
  sim::BulkCreate request;
  request.include_values = true;
  request.tokens.push_back(new_token("ci", "ci token", EntityType::Workspace, "WORKSPACE_MEMBER",
                                     kSimWorkspaceId, {}, 30));
  request.tokens.push_back(
      new_token("worker", "", EntityType::Deployment, "DEPLOYMENT_ADMIN", kSimDeploymentId, {}));
  request.tokens.push_back(new_token("worker", "second", EntityType::Deployment, "DEPLOYMENT_ADMIN",
                                     kSimDeploymentId, {}));
  request.tokens.push_back(
      new_token("team a prod", "", EntityType::Organization, "ORGANIZATION_MEMBER", "", {}));
  request.tokens.push_back(
      new_token("broken", "", EntityType::Workspace, "WORKSPACE_MEMBER", kSimWorkspaceId, {}));
  const sim::BulkCreated created = ws.control().create_tokens(request);
  REQUIRE(created.ids.size() == 5);
  REQUIRE(created.values.size() == 5);
  std::vector<astro::ApiToken> tokens;
  for (const std::string& id : created.ids) tokens.push_back(*ws.control().token(id));
  const std::string gone_id = "clgone0000000000000000000";

  const std::string state = tf_state({
      resource("", "managed", "astro_api_token", "ci",
               {instance("", "", attrs_of(tokens[0], created.values[0]))}),
      resource("", "managed", "astro_api_token", "workers",
               {instance("0", "", attrs_of(tokens[1], created.values[1])),
                instance("1", "", attrs_of(tokens[2], ""))}),
      resource("module.team_a", "managed", "astro_api_token", "deployer",
               {instance("\"prod\"", "", attrs_of(tokens[3], created.values[3], "old name"))}),
      resource("", "managed", "astro_api_token", "old",
               {instance("", "", "\"id\": \"" + gone_id + "\", \"name\": \"old\"")}),
      resource("", "managed", "astro_api_token", "broken",
               {instance("", "\"status\": \"tainted\", ", attrs_of(tokens[4], created.values[4]))}),
      resource("", "data", "astro_organization", "org",
               {instance("", "", "\"id\": \"" + ws.sim().org_id() + "\"")}),
      resource("", "managed", "astro_workspace", "ws",
               {instance("", "", "\"id\": \"" + std::string(kSimWorkspaceId) + "\"")}),
  });
  const std::string state_file = ws.dir().file("terraform.tfstate");
  write_file(state_file, state);
  ws.control().reset_requests();

  const std::string out = ws.spec_dir() + "/terraform.toml";
  ProcessResult adopted =
      ws.tokend({"adopt", "--from-terraform-state", state_file, "--generate-config-out", out});
  REQUIRE_EXIT(adopted, 0);
  CHECK(writes(ws.control().requests()).empty());
  CHECK(adopted.out.find("astro_api_token.old (id " + gone_id + "): the token no longer exists") !=
        std::string::npos);
  CHECK(adopted.out.find("astro_api_token.broken (id " + tokens[4].id + "): tainted") !=
        std::string::npos);
  CHECK(adopted.out.find("module.team_a.astro_api_token.deployer[\"prod\"] (id " + tokens[3].id +
                         "): name differ") != std::string::npos);
  CHECK(adopted.out.find("1 data source instance and 1 instance of other resource types") !=
        std::string::npos);

  const std::string text = read_file(out);
  INFO(text);
  CHECK(text.find("# astro_api_token.ci\n# id: " + tokens[0].id + "\n[api_token.ci]\n") !=
        std::string::npos);
  CHECK(text.find("[api_token.workers_0]\n") != std::string::npos);
  CHECK(text.find("[api_token.workers_1]\n") != std::string::npos);
  CHECK(text.find("# module.team_a.astro_api_token.deployer[\"prod\"]\n# id: " + tokens[3].id +
                  "\n[api_token.team_a_deployer_prod]\nname = \"team a prod\"\n") !=
        std::string::npos);
  CHECK(text.find("old name") == std::string::npos);
  CHECK(text.find(gone_id) == std::string::npos);
  CHECK(text.find(tokens[4].id) == std::string::npos);

  // Values reach their sinks (0600) and are fingerprinted; one without a value has none.
  const std::map<std::string, std::string> values = {{"ci", created.values[0]},
                                                     {"workers_0", created.values[1]},
                                                     {"team_a_deployer_prod", created.values[3]}};
  for (const auto& [key, value] : values) {
    INFO(key);
    CHECK(read_file(ws.sink_for(key)) == value);
    CHECK(file_mode(ws.sink_for(key)) == 0600);
    CHECK(ws.row(key).sink_sha256 == sha256_hex(value));
  }
  CHECK(ws.row("workers_1").sink_sha256.empty());
  CHECK(!std::filesystem::exists(ws.sink_for("workers_1")));
  CHECK(ws.rows().size() == 4);

  REQUIRE_EXIT(ws.tokend({"validate"}), 0);
  ProcessResult plan = ws.tokend({"plan", "--detailed-exitcode"});
  REQUIRE_EXIT(plan, 0);

  // --rotate: exactly one rotate call, the new value in the sink.
  ws.control().reset_requests();
  REQUIRE_EXIT(ws.apply({"--rotate", "astro_api_token.ci"}), 0);
  CHECK(writes(ws.control().requests()) ==
        std::vector<std::string>{"RotateApiToken " + tokens[0].id});
  CHECK(read_file(ws.sink_for("ci")) != created.values[0]);
  CHECK(ws.row("ci").sink_sha256 == sha256_hex(read_file(ws.sink_for("ci"))));

  // No secret value in any output, log, spec or database file: once the
  // Terraform state is gone, only the sinks hold one.
  std::filesystem::remove(state_file);
  for (const std::string& value : created.values) {
    CHECK(ws.transcript().find(value) == std::string::npos);
    CHECK(find_in_files(ws.dir().path(), value, ws.secrets_dir()).empty());
  }
}

TEST_CASE("adopt --from-terraform-state refuses bad state files and writes nothing",
          "[integration][adopt][terraform]") {
  ApplyWorkspace ws;
  const sim::BulkCreated created = ws.control().create_tokens(
      new_token("t", "", EntityType::Workspace, "WORKSPACE_MEMBER", kSimWorkspaceId, {}), 1, true);
  const astro::ApiToken token = *ws.control().token(created.ids[0]);
  const std::string secret = created.values[0];
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{ not json", "not JSON"},
      {"{\"version\": 3, \"resources\": []}", "format version 3"},
      {tf_state(
           {resource("", "managed", "astro_workspace", "w", {instance("", "", "\"id\": \"x\"")})}),
       "no managed astro_api_token"},
      {tf_state({resource("", "managed", "astro_api_token", "ok",
                          {instance("", "", attrs_of(token, secret))}),
                 resource("", "managed", "astro_api_token", "noid",
                          {instance("", "", "\"name\": \"x\", \"token\": \"" + secret + "\"")})}),
       "astro_api_token.noid has no \"id\""},
  };
  const std::string file = ws.dir().file("bad.tfstate");
  const std::string out = ws.spec_dir() + "/terraform.toml";
  for (const auto& [text, message] : cases) {
    write_file(file, text);
    ProcessResult result =
        ws.tokend({"adopt", "--from-terraform-state", file, "--generate-config-out", out});
    INFO(process_output(result));
    CHECK(result.exit_code == 1);
    CHECK(result.err.find(file) != std::string::npos);
    CHECK(result.err.find(message) != std::string::npos);
  }
  ProcessResult missing = ws.tokend(
      {"adopt", "--from-terraform-state", ws.dir().file("none"), "--generate-config-out", out});
  CHECK(missing.exit_code == 1);
  CHECK(missing.err.find(ws.dir().file("none")) != std::string::npos);
  CHECK(!std::filesystem::exists(out));
  CHECK(!std::filesystem::exists(ws.sink_for("ok")));
  CHECK((!std::filesystem::exists(ws.state_path()) || ws.rows().empty()));
  CHECK(ws.transcript().find(secret) == std::string::npos);
}
