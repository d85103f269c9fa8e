// The simulated organization's rules, in process, on a fixed clock.
#include <catch2/catch.hpp>

#include <set>

#include "astro/json.h"
#include "sim/bodies.h"
#include "sim/org.h"

using namespace tokend;
using namespace tokend::sim;

namespace {

constexpr const char* kOrg = "clx42kkcm01fo01o06agtmshg";
constexpr const char* kWs = "clx42sxw501gl01o0gjenthnh";
constexpr const char* kDep = "clyn6kxud003x01mtxmccegnh";

Timestamp at(const char* text) { return *parse_rfc3339(text); }

struct Fixture {
  FixedClock clock{at("2025-03-01T10:00:00Z")};
  Seed seed = default_seed(at("2024-01-01T00:00:00Z"));
  Organization org{kOrg, seed.workspaces, seed.deployments, clock};
};

astro::CreateTokenRequest ws_request(std::string name, std::optional<int> days = std::nullopt) {
  return {std::move(name), "", EntityType::Workspace, "WORKSPACE_OWNER", kWs, days};
}

}  // namespace

TEST_CASE("built-in roles belong to their entity type - other names are Deployment roles",
          "[sim]") {
  CHECK(role_fits_entity_type("ORGANIZATION_OWNER", EntityType::Organization));
  CHECK(role_fits_entity_type("ORGANIZATION_OBSERVE_MEMBER", EntityType::Organization));
  CHECK_FALSE(role_fits_entity_type("WORKSPACE_OWNER", EntityType::Organization));
  CHECK(role_fits_entity_type("WORKSPACE_ACCESSOR", EntityType::Workspace));
  CHECK_FALSE(role_fits_entity_type("DEPLOYMENT_ADMIN", EntityType::Workspace));
  CHECK(role_fits_entity_type("DEPLOYMENT_ADMIN", EntityType::Deployment));
  CHECK(role_fits_entity_type("Deployment_Viewer", EntityType::Deployment));
  CHECK_FALSE(role_fits_entity_type("WORKSPACE_MEMBER", EntityType::Deployment));
  CHECK_FALSE(role_fits_entity_type("", EntityType::Deployment));
  CHECK(count_code_points("h\xc3\xa9llo \xf0\x9f\x9a\x80") == 7);
}

TEST_CASE("created tokens look like the API's and carry a unique value", "[sim]") {
  Fixture f;
  std::set<std::string> ids, values;
  for (int i = 0; i < 200; ++i) {
    auto token = f.org.create_token(ws_request("t", 30));
    REQUIRE(token.ok());
    const std::string& id = token->id;
    CHECK(id.size() == 25);
    CHECK(id[0] == 'c');
    CHECK(std::all_of(id.begin(), id.end(),
                      [](char c) { return std::islower(c) || std::isdigit(c); }));
    ids.insert(id);
    const std::string& value = token->token.reveal();
    CHECK(std::count(value.begin(), value.end(), '.') == 2);
    CHECK(value.find_first_not_of(
              "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") ==
          std::string::npos);
    CHECK(value.find(token->short_token) == std::string::npos);
    values.insert(value);
    CHECK(token->created_at == f.clock.now());
    CHECK(token->end_at == f.clock.now() + std::chrono::days(30));
  }
  CHECK(ids.size() == 200);
  CHECK(values.size() == 200);
  CHECK(f.org.issued_values().size() == 200);
  // Stored tokens never hold their value.
  for (const auto& t : f.org.all_tokens()) CHECK(t.token.empty());
  CHECK(f.org.get_token(*ids.begin())->token.empty());
}

TEST_CASE("an ORGANIZATION token's role is on the organization itself", "[sim]") {
  Fixture f;
  auto token = f.org.create_token(
      {"org", "", EntityType::Organization, "ORGANIZATION_BILLING_ADMIN", "", std::nullopt});
  REQUIRE(token.ok());
  CHECK(token->roles == RoleSet{{"ORGANIZATION_BILLING_ADMIN", kOrg, EntityType::Organization}});
  CHECK_FALSE(token->end_at);
  auto explicit_org =
      f.org.create_token({"org", "", EntityType::Organization, "ORGANIZATION_MEMBER", kOrg, 1});
  CHECK(explicit_org.ok());
  auto other =
      f.org.create_token({"org", "", EntityType::Organization, "ORGANIZATION_MEMBER", kWs, 1});
  REQUIRE_FALSE(other.ok());
  CHECK(other.error().message ==
        "entityId must be empty or the organization id for an ORGANIZATION token");
}

TEST_CASE("role updates follow the API's rules", "[sim]") {
  Fixture f;
  auto ws_token = f.org.create_token(ws_request("ws"));
  auto org_token = f.org.create_token(
      {"org", "", EntityType::Organization, "ORGANIZATION_MEMBER", "", std::nullopt});
  auto dep_token = f.org.create_token(
      {"dep", "", EntityType::Deployment, "DEPLOYMENT_ADMIN", kDep, std::nullopt});
  REQUIRE((ws_token.ok() && org_token.ok() && dep_token.ok()));
  const Role org_member{"ORGANIZATION_MEMBER", kOrg, EntityType::Organization};
  const Role ws_owner{"WORKSPACE_OWNER", kWs, EntityType::Workspace};
  const Role ws_member{"WORKSPACE_MEMBER", kWs, EntityType::Workspace};
  const Role dep_admin{"DEPLOYMENT_ADMIN", kDep, EntityType::Deployment};

  struct Case {
    std::string token_id;
    RoleSet roles;
    std::string error;  // "" = accepted
  };
  const std::vector<Case> cases = {
      {org_token->id, {org_member, ws_owner, dep_admin}, ""},
      {org_token->id,
       {ws_owner},
       "roles must contain exactly one role with entityType ORGANIZATION (the token's type), found "
       "0"},
      {org_token->id,
       {org_member, {"ORGANIZATION_OWNER", kOrg, EntityType::Organization}},
       "roles[1]: more than one role on ORGANIZATION " + std::string(kOrg)},
      {org_token->id,
       {{"ORGANIZATION_MEMBER", "cother", EntityType::Organization}},
       "roles[0].entityId must be the organization id " + std::string(kOrg)},
      {ws_token->id, {ws_owner, dep_admin}, ""},
      {ws_token->id, {ws_owner, ws_owner}, ""},  // an exact repeat changes nothing
      {ws_token->id,
       {ws_owner, ws_member},
       "roles[1]: more than one role on WORKSPACE " + std::string(kWs)},
      {ws_token->id,
       {ws_owner, org_member},
       "roles[1]: a WORKSPACE token cannot have an ORGANIZATION role"},
      {ws_token->id,
       {ws_owner, {"DEPLOYMENT_ADMIN", "cgone", EntityType::Deployment}},
       "roles[1].entityId: deployment cgone not found"},
      {dep_token->id, {dep_admin}, ""},
      {dep_token->id, {{"Deployment_Viewer", kDep, EntityType::Deployment}}, ""},
      {dep_token->id,
       {dep_admin, ws_owner},
       "roles[1]: a DEPLOYMENT token cannot have a WORKSPACE role"},
      {dep_token->id, {}, "roles must contain at least one role"},
      {"cnosuchtoken", {ws_owner}, "API token cnosuchtoken not found"},
  };
  for (const Case& c : cases) {
    INFO(c.error);
    auto held = f.org.update_token_roles(c.token_id, c.roles);
    if (c.error.empty()) {
      REQUIRE(held.ok());
      CHECK(*held == normalize_roles(c.roles));
      CHECK(f.org.get_token(c.token_id)->roles == normalize_roles(c.roles));
    } else {
      REQUIRE_FALSE(held.ok());
      CHECK(held.error().message == c.error);
    }
  }
  CHECK(f.org.update_token_roles("cnosuchtoken", {ws_owner}).error().kind == ErrorKind::NotFound);
}

TEST_CASE("update - rotate and delete", "[sim]") {
  Fixture f;
  auto token = f.org.create_token(ws_request("before", 10));
  REQUIRE(token.ok());
  f.clock.advance(std::chrono::hours(5));

  auto updated = f.org.update_token(token->id, "after", std::nullopt);
  REQUIRE(updated.ok());
  CHECK(updated->name == "after");
  CHECK(updated->updated_at == f.clock.now());
  CHECK(updated->created_at == token->created_at);
  CHECK(f.org.update_token(token->id, std::string(257, 'x'), std::nullopt).error().message ==
        "name must be between 1 and 256 characters long");
  CHECK(f.org.update_token(token->id, "x", std::string(501, 'd')).error().message ==
        "description must be at most 500 characters long");

  f.clock.advance(std::chrono::hours(24));
  auto rotated = f.org.rotate_token(token->id);
  REQUIRE(rotated.ok());
  CHECK(rotated->id == token->id);
  CHECK(rotated->start_at == f.clock.now());
  CHECK(rotated->end_at == f.clock.now() + std::chrono::days(10));
  CHECK(rotated->token.reveal() != token->token.reveal());
  CHECK(f.org.issued_values() ==
        std::vector<std::string>{token->token.reveal(), rotated->token.reveal()});

  CHECK(f.org.delete_token(token->id).ok());
  auto again = f.org.delete_token(token->id);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().kind == ErrorKind::NotFound);
  CHECK(f.org.rotate_token(token->id).error().kind == ErrorKind::NotFound);
}

TEST_CASE("listing filters - sorts and pages", "[sim]") {
  Fixture f;
  Seed seed;
  seed.workspaces = {{kWs, "one", "", {}}, {"cws2", "two", "", {}}};
  seed.deployments = {{kDep, "dep", "", kWs, {}}, {"cdep2", "dep2", "", "cws2", {}}};
  Organization org(kOrg, seed.workspaces, seed.deployments, f.clock);
  auto make = [&](std::string name, EntityType type, std::string role, std::string entity) {
    f.clock.advance(std::chrono::seconds(1));
    auto t = org.create_token(
        {std::move(name), "", type, std::move(role), std::move(entity), std::nullopt});
    REQUIRE(t.ok());
    return t->id;
  };
  std::string b = make("b-org", EntityType::Organization, "ORGANIZATION_MEMBER", "");
  std::string a = make("a-ws", EntityType::Workspace, "WORKSPACE_MEMBER", kWs);
  std::string c = make("c-dep", EntityType::Deployment, "DEPLOYMENT_ADMIN", kDep);
  std::string d = make("d-dep2", EntityType::Deployment, "DEPLOYMENT_ADMIN", "cdep2");

  auto ids = [&](TokenQuery q) {
    auto page = org.list_tokens(q);
    REQUIRE(page.ok());
    std::vector<std::string> out;
    for (const auto& t : page->tokens) out.push_back(t.id);
    return out;
  };
  TokenQuery all;
  CHECK(ids(all) == std::vector<std::string>{b, a, c, d});
  TokenQuery by_name;
  by_name.sorts = {"name:desc"};
  CHECK(ids(by_name) == std::vector<std::string>{d, c, b, a});
  TokenQuery by_start;
  by_start.sorts = {"tokenStartAt:desc", "name:asc"};
  CHECK(ids(by_start) == std::vector<std::string>{d, c, a, b});
  TokenQuery in_ws;
  in_ws.workspace_id = kWs;  // the workspace's tokens and those of its deployments
  CHECK(ids(in_ws) == std::vector<std::string>{a, c});
  TokenQuery on_dep;
  on_dep.deployment_id = "cdep2";
  CHECK(ids(on_dep) == std::vector<std::string>{d});
  TokenQuery orgs;
  orgs.only_organization_tokens = true;
  CHECK(ids(orgs) == std::vector<std::string>{b});
  TokenQuery window;
  window.offset = 1;
  window.limit = 2;
  auto page = org.list_tokens(window);
  REQUIRE(page.ok());
  CHECK(page->total_count == 4);
  CHECK(page->offset == 1);
  CHECK(page->limit == 2);
  CHECK(ids(window) == std::vector<std::string>{a, c});
  TokenQuery past_end;
  past_end.offset = 10;
  CHECK(ids(past_end).empty());
  TokenQuery none;
  none.limit = 0;
  CHECK(org.list_tokens(none)->total_count == 4);
  CHECK(ids(none).empty());

  EntityQuery two;
  two.ids = {"cws2", "cmissing"};
  auto ws = org.list_workspaces(two);
  REQUIRE(ws.ok());
  REQUIRE(ws->items.size() == 1);
  CHECK(ws->items[0].name == "two");
  EntityQuery deps_of;
  deps_of.workspace_ids = {"cws2"};
  CHECK(org.list_deployments(deps_of)->items.at(0).id == "cdep2");
  EntityQuery big;
  big.limit = 5000;
  CHECK(org.list_deployments(big).ok());  // the contract sets no maximum here
  CHECK(org.list_workspaces(big).error().message == "limit must be at most 1000");
}

TEST_CASE("out-of-band patches and data snapshots", "[sim]") {
  Fixture f;
  auto token = f.org.create_token(ws_request("t", 30));
  REQUIRE(token.ok());
  uint64_t revision = f.org.revision();
  TokenPatch patch;
  patch.end_at = std::optional<Timestamp>(at("2020-01-01T00:00:00Z"));
  patch.roles = RoleSet{{"anything goes", "cx", EntityType::Deployment}};
  auto patched = f.org.patch_token(token->id, patch);
  REQUIRE(patched.ok());
  CHECK(patched->end_at == at("2020-01-01T00:00:00Z"));
  CHECK(patched->roles == *patch.roles);
  CHECK(f.org.revision() > revision);

  std::string data = f.org.encode_data();
  CHECK(data.find(token->token.reveal()) == std::string::npos);
  FixedClock clock(at("2030-01-01T00:00:00Z"));
  Organization restored(kOrg, f.seed.workspaces, f.seed.deployments, clock);
  REQUIRE(restored.load_data(data).ok());
  REQUIRE(restored.all_tokens().size() == 1);
  auto back = restored.all_tokens()[0];
  CHECK(back.id == token->id);
  CHECK(back.attrs() == patched->attrs());
  CHECK(back.end_at == patched->end_at);
  CHECK(back.created_at == patched->created_at);
  CHECK(restored.issued_values().empty());

  Organization stranger("cotherorg", f.seed.workspaces, f.seed.deployments, clock);
  auto refused = stranger.load_data(data);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message ==
        "the data belongs to organization " + std::string(kOrg) + ", not cotherorg");
  CHECK_FALSE(restored.load_data("{}").ok());
  CHECK_FALSE(restored.load_data("not json").ok());
  CHECK(restored.all_tokens().size() == 1);  // a failed load changes nothing
}

TEST_CASE("bulk creation is all or nothing and honours fixed ids", "[sim]") {
  Fixture f;
  NewToken fixed{ws_request("fixed"), std::nullopt, "cfixed0000000000000000001"};
  NewToken with_roles{ws_request("roles"),
                      RoleSet{{"WORKSPACE_OWNER", kWs, EntityType::Workspace},
                              {"DEPLOYMENT_ADMIN", kDep, EntityType::Deployment}},
                      ""};
  NewToken bad_id{ws_request("bad"), std::nullopt, "Xnot-an-id"};
  auto rejected = f.org.create_tokens({fixed, bad_id});
  REQUIRE_FALSE(rejected.ok());
  CHECK(rejected.error().message ==
        "tokens[1]: id Xnot-an-id is not 25 lowercase letters and digits starting with c");
  CHECK(f.org.token_count() == 0);
  auto twice = f.org.create_tokens({fixed, fixed});
  REQUIRE_FALSE(twice.ok());
  CHECK(twice.error().message == "tokens[1]: id cfixed0000000000000000001 already exists");
  auto created = f.org.create_tokens({fixed, with_roles});
  REQUIRE(created.ok());
  CHECK(created->at(0).id == "cfixed0000000000000000001");
  CHECK(created->at(1).roles.size() == 2);
  CHECK(f.org.token_count() == 2);
}

TEST_CASE("DAG and DAG_TAG roles need an existing deploymentId - on DEPLOYMENT tokens only",
          "[sim]") {
  Fixture f;
  auto dep_token = f.org.create_token(
      {"dep", "", EntityType::Deployment, "DEPLOYMENT_ADMIN", kDep, std::nullopt});
  auto ws_token = f.org.create_token(ws_request("ws"));
  auto org_token = f.org.create_token(
      {"org", "", EntityType::Organization, "ORGANIZATION_MEMBER", "", std::nullopt});
  REQUIRE((dep_token.ok() && ws_token.ok() && org_token.ok()));
  const Role dep_admin{"DEPLOYMENT_ADMIN", kDep, EntityType::Deployment};
  const Role dag_viewer{"DAG_VIEWER", "etl_daily", EntityType::Dag, kDep};
  const Role tag_author{"DAG_AUTHOR", "finance", EntityType::DagTag, kDep};
  const Role ws_owner{"WORKSPACE_OWNER", kWs, EntityType::Workspace};
  const Role org_member{"ORGANIZATION_MEMBER", kOrg, EntityType::Organization};

  struct Case {
    std::string token_id;
    RoleSet roles;
    std::string error;  // "" = accepted
  };
  const std::vector<Case> cases = {
      {dep_token->id, {dep_admin, dag_viewer, tag_author}, ""},
      {dep_token->id, {dep_admin, {"Custom_Dag_Role", "any.dag-id", EntityType::Dag, kDep}}, ""},
      // The same DAG id in another deployment would be another DAG; here it is a repeat.
      {dep_token->id,
       {dep_admin, dag_viewer, {"DAG_AUTHOR", "etl_daily", EntityType::Dag, kDep}},
       "roles[2]: more than one role on DAG etl_daily in deployment " + std::string(kDep)},
      {dep_token->id,
       {dep_admin, {"DAG_VIEWER", "etl_daily", EntityType::Dag}},
       "roles[1].deploymentId is required for a DAG role"},
      {dep_token->id,
       {dep_admin, {"DAG_VIEWER", "finance", EntityType::DagTag}},
       "roles[1].deploymentId is required for a DAG_TAG role"},
      {dep_token->id,
       {dep_admin, {"DAG_VIEWER", "etl_daily", EntityType::Dag, "cgone"}},
       "roles[1].deploymentId: deployment cgone not found"},
      {dep_token->id,
       {dep_admin, {"DAG_VIEWER", "", EntityType::Dag, kDep}},
       "roles[1].entityId must name the DAG id"},
      {dep_token->id,
       {dep_admin, {"DAG_VIEWER", "", EntityType::DagTag, kDep}},
       "roles[1].entityId must name the tag value"},
      {dep_token->id,
       {dep_admin, {"DEPLOYMENT_ADMIN", "etl_daily", EntityType::Dag, kDep}},
       "roles[1].role DEPLOYMENT_ADMIN is not a valid DAG role"},
      {dep_token->id,
       {{"DAG_VIEWER", kDep, EntityType::Deployment}},
       "roles[0].role DAG_VIEWER is not a valid DEPLOYMENT role"},
      {dep_token->id,
       {dep_admin, {"WORKSPACE_OWNER", "finance", EntityType::DagTag, kDep}},
       "roles[1].role WORKSPACE_OWNER is not a valid DAG_TAG role"},
      {dep_token->id,
       {dag_viewer},
       "roles must contain exactly one role with entityType DEPLOYMENT (the token's type), found "
       "0"},
      {dep_token->id,
       {{"DEPLOYMENT_ADMIN", kDep, EntityType::Deployment, kDep}},
       "roles[0].deploymentId is only allowed on DAG and DAG_TAG roles, not on DEPLOYMENT"},
      {ws_token->id,
       {{"WORKSPACE_OWNER", kWs, EntityType::Workspace, kDep}},
       "roles[0].deploymentId is only allowed on DAG and DAG_TAG roles, not on WORKSPACE"},
      {org_token->id,
       {{"ORGANIZATION_MEMBER", kOrg, EntityType::Organization, kDep}},
       "roles[0].deploymentId is only allowed on DAG and DAG_TAG roles, not on ORGANIZATION"},
      {ws_token->id, {ws_owner, dag_viewer}, "roles[1]: a WORKSPACE token cannot have a DAG role"},
      {org_token->id,
       {org_member, tag_author},
       "roles[1]: an ORGANIZATION token cannot have a DAG_TAG role"},
  };
  for (const Case& c : cases) {
    INFO(c.error);
    auto held = f.org.update_token_roles(c.token_id, c.roles);
    if (c.error.empty()) {
      REQUIRE(held.ok());
      CHECK(*held == normalize_roles(c.roles));
      CHECK(f.org.get_token(c.token_id)->roles == normalize_roles(c.roles));
    } else {
      REQUIRE_FALSE(held.ok());
      CHECK(held.error().kind == ErrorKind::Invalid);
      CHECK(held.error().message == c.error);
    }
  }
  CHECK(role_fits_entity_type("DAG_AUTHOR", EntityType::DagTag));
  CHECK(role_fits_entity_type("Custom_Dag_Role", EntityType::Dag));
  CHECK_FALSE(role_fits_entity_type("ORGANIZATION_OWNER", EntityType::Dag));
  CHECK_FALSE(role_fits_entity_type("", EntityType::DagTag));
}

TEST_CASE("a v1beta1 roles update keeps the DAG roles it cannot name", "[sim]") {
  Fixture f;
  auto token = f.org.create_token(
      {"dep", "", EntityType::Deployment, "DEPLOYMENT_ADMIN", kDep, std::nullopt});
  REQUIRE(token.ok());
  const Role dag_viewer{"DAG_VIEWER", "etl_daily", EntityType::Dag, kDep};
  const Role tag_author{"DAG_AUTHOR", "finance", EntityType::DagTag, kDep};
  REQUIRE(f.org
              .update_token_roles(
                  token->id,
                  {{"DEPLOYMENT_ADMIN", kDep, EntityType::Deployment}, dag_viewer, tag_author})
              .ok());
  const Role custom{"Custom_Role", kDep, EntityType::Deployment};
  auto held = f.org.update_token_roles(token->id, {custom}, /*keep_dag_roles=*/true);
  REQUIRE(held.ok());
  CHECK(*held == normalize_roles({custom, dag_viewer, tag_author}));
  CHECK(without_dag_roles(*held) == RoleSet{custom});
  // A v1 update replaces them all.
  auto replaced = f.org.update_token_roles(token->id, {custom});
  REQUIRE(replaced.ok());
  CHECK(*replaced == RoleSet{custom});
}

TEST_CASE("kind is kept from creation and rotate sets lastRotatedAt", "[sim]") {
  Fixture f;
  astro::CreateTokenRequest request = ws_request("direct", 10);
  request.kind = TokenKind::DirectAccess;
  auto token = f.org.create_token(request);
  REQUIRE(token.ok());
  CHECK(token->kind == TokenKind::DirectAccess);
  CHECK_FALSE(token->last_rotated_at);
  CHECK(f.org.create_token(ws_request("standard"))->kind == TokenKind::Standard);

  f.clock.advance(std::chrono::hours(3));
  auto rotated = f.org.rotate_token(token->id);
  REQUIRE(rotated.ok());
  CHECK(rotated->last_rotated_at == f.clock.now());
  CHECK(rotated->kind == TokenKind::DirectAccess);
  CHECK(f.org.get_token(token->id)->last_rotated_at == f.clock.now());
  // Other changes leave it alone.
  f.clock.advance(std::chrono::hours(1));
  CHECK(f.org.update_token(token->id, "renamed", std::nullopt)->last_rotated_at ==
        rotated->start_at);
}

TEST_CASE("listing filters on DAGs - tags - kind and as v1beta1 sees tokens", "[sim]") {
  Fixture f;
  Seed seed;
  seed.workspaces = {{kWs, "one", "", {}}, {"cws2", "two", "", {}}};
  seed.deployments = {{kDep, "dep", "", kWs, {}}, {"cdep2", "dep2", "", "cws2", {}}};
  Organization org(kOrg, seed.workspaces, seed.deployments, f.clock);
  auto make = [&](std::string name, std::string deployment, RoleSet extra, TokenKind kind) {
    astro::CreateTokenRequest request{
        std::move(name), "",  EntityType::Deployment, "DEPLOYMENT_ADMIN", deployment,
        std::nullopt,    kind};
    NewToken token{request, std::nullopt, ""};
    if (!extra.empty()) {
      extra.push_back({"DEPLOYMENT_ADMIN", deployment, EntityType::Deployment});
      token.roles = extra;
    }
    auto created = org.create_tokens({token});
    REQUIRE(created.ok());
    return created->front().id;
  };
  // a: plain on kDep; b: a DAG role in cdep2 while scoped to kDep; c: tags; d: direct access.
  std::string a = make("a", kDep, {}, TokenKind::Standard);
  std::string b =
      make("b", kDep, {{"DAG_VIEWER", "etl", EntityType::Dag, "cdep2"}}, TokenKind::Standard);
  std::string c = make("c", "cdep2",
                       {{"DAG_VIEWER", "finance", EntityType::DagTag, "cdep2"},
                        {"DAG_VIEWER", "etl", EntityType::DagTag, "cdep2"}},
                       TokenKind::Standard);
  std::string d = make("d", "cdep2", {}, TokenKind::DirectAccess);

  auto ids = [&](TokenQuery q) {
    auto page = org.list_tokens(q);
    REQUIRE(page.ok());
    std::vector<std::string> out;
    for (const auto& t : page->tokens) out.push_back(t.id);
    return out;
  };
  TokenQuery by_dag;
  by_dag.dag_id = "etl";  // a DAG role, not a DAG_TAG role of that value
  CHECK(ids(by_dag) == std::vector<std::string>{b});
  TokenQuery by_tags;
  by_tags.dag_tags = {"finance", "nothing"};
  CHECK(ids(by_tags) == std::vector<std::string>{c});
  TokenQuery direct;
  direct.kind = TokenKind::DirectAccess;
  CHECK(ids(direct) == std::vector<std::string>{d});
  TokenQuery on_dep2;
  on_dep2.deployment_id = "cdep2";  // DAG roles in cdep2 count in v1
  CHECK(ids(on_dep2) == std::vector<std::string>{b, c, d});
  on_dep2.dag_roles = false;  // v1beta1 sees only b's DEPLOYMENT role on kDep
  CHECK(ids(on_dep2) == std::vector<std::string>{c, d});
  TokenQuery in_ws2;
  in_ws2.workspace_id = "cws2";
  CHECK(ids(in_ws2) == std::vector<std::string>{b, c, d});
  in_ws2.dag_roles = false;
  CHECK(ids(in_ws2) == std::vector<std::string>{c, d});
}

TEST_CASE("sorts on createdAt keep the creation order among equal times", "[sim]") {
  Fixture f;
  std::vector<std::string> created;
  for (int i = 0; i < 6; ++i) {
    if (i % 2 == 0) f.clock.advance(std::chrono::seconds(1));  // pairs share a createdAt
    created.push_back(f.org.create_token(ws_request("t" + std::to_string(i)))->id);
  }
  auto ids = [&](std::vector<std::string> sorts, int offset, int limit) {
    TokenQuery q;
    q.sorts = std::move(sorts);
    q.offset = offset;
    q.limit = limit;
    auto page = f.org.list_tokens(q);
    REQUIRE(page.ok());
    std::vector<std::string> out;
    for (const auto& t : page->tokens) out.push_back(t.id);
    return out;
  };
  CHECK(ids({"createdAt:asc"}, 0, 20) == created);
  CHECK(ids({"createdAt:desc"}, 0, 20) == std::vector<std::string>{created[4], created[5],
                                                                   created[2], created[3],
                                                                   created[0], created[1]});
  // Pages of one concatenate to the whole listing.
  std::vector<std::string> paged;
  for (int offset = 0; offset < 6; ++offset) {
    auto page = ids({"createdAt:asc"}, offset, 1);
    paged.insert(paged.end(), page.begin(), page.end());
  }
  CHECK(paged == created);
}

TEST_CASE("data snapshots keep kind - lastRotatedAt and DAG roles - and old ones still load",
          "[sim]") {
  Fixture f;
  astro::CreateTokenRequest request{"dep", "", EntityType::Deployment, "DEPLOYMENT_ADMIN",
                                    kDep,  30, TokenKind::DirectAccess};
  auto token = f.org.create_token(request);
  REQUIRE(token.ok());
  REQUIRE(f.org
              .update_token_roles(token->id, {{"DEPLOYMENT_ADMIN", kDep, EntityType::Deployment},
                                              {"DAG_VIEWER", "etl", EntityType::Dag, kDep}})
              .ok());
  f.clock.advance(std::chrono::hours(1));
  auto rotated = f.org.rotate_token(token->id);
  REQUIRE(rotated.ok());

  std::string data = f.org.encode_data();
  CHECK(data.find(rotated->token.reveal()) == std::string::npos);
  Organization restored(kOrg, f.seed.workspaces, f.seed.deployments, f.clock);
  REQUIRE(restored.load_data(data).ok());
  auto back = restored.get_token(token->id);
  REQUIRE(back.ok());
  CHECK(back->kind == TokenKind::DirectAccess);
  CHECK(back->last_rotated_at == rotated->last_rotated_at);
  CHECK(back->roles == rotated->roles);
  CHECK(back->attrs() == rotated->attrs());

  // A data file written before v1: v1beta1 token shapes.
  const std::string old_data =
      R"({"format":"astro-api-sim-data","organizationId":")" + std::string(kOrg) +
      R"(","limit":1,"offset":0,"totalCount":1,"tokens":[{"id":"cold0000000000000000000001",)"
      R"("name":"old","description":"","type":"WORKSPACE","shortToken":"s",)"
      R"("createdAt":"2024-01-01T00:00:00Z","updatedAt":"2024-01-01T00:00:00Z",)"
      R"("startAt":"2024-01-01T00:00:00Z","roles":[{"entityId":")" +
      kWs + R"(","entityType":"WORKSPACE","role":"WORKSPACE_OWNER"}]}]})";
  REQUIRE(restored.load_data(old_data).ok());
  auto old = restored.get_token("cold0000000000000000000001");
  REQUIRE(old.ok());
  CHECK(old->type == EntityType::Workspace);
  CHECK(old->kind == TokenKind::Standard);
  CHECK_FALSE(old->last_rotated_at);
  // It is written back in v1 shapes.
  CHECK(restored.encode_data().find(R"("scope":"WORKSPACE","kind":"STANDARD")") !=
        std::string::npos);
}
