#include <catch2/catch.hpp>

#include "model/token.h"

using namespace tokend;

TEST_CASE("roles compare as a set", "[model]") {
  RoleSet a{{"WORKSPACE_OWNER", "w1", EntityType::Workspace},
            {"ORGANIZATION_MEMBER", "o1", EntityType::Organization},
            {"WORKSPACE_OWNER", "w1", EntityType::Workspace}};
  RoleSet b{{"ORGANIZATION_MEMBER", "o1", EntityType::Organization},
            {"WORKSPACE_OWNER", "w1", EntityType::Workspace}};
  CHECK(normalize_roles(a) == normalize_roles(b));
  CHECK(normalize_roles(a).size() == 2);
  CHECK(same_roles(a, b));
  CHECK_FALSE(roles_normalized(a));  // a duplicate
  CHECK(roles_normalized(b));
  CHECK(roles_normalized(normalize_roles(a)));
  RoleSet unsorted{b[1], b[0]};
  CHECK_FALSE(roles_normalized(unsorted));
  CHECK(same_roles(unsorted, b));
  CHECK_FALSE(same_roles(b, {b[0]}));
}

TEST_CASE("primary role is the single role on the token's entity type", "[model]") {
  RoleSet roles{{"ORGANIZATION_MEMBER", "o1", EntityType::Organization},
                {"WORKSPACE_OWNER", "w1", EntityType::Workspace}};
  REQUIRE(primary_role(roles, EntityType::Workspace));
  CHECK(primary_role(roles, EntityType::Workspace)->role == "WORKSPACE_OWNER");
  CHECK_FALSE(primary_role(roles, EntityType::Deployment));
  roles.push_back({"WORKSPACE_MEMBER", "w2", EntityType::Workspace});
  CHECK_FALSE(primary_role(roles, EntityType::Workspace));
}

TEST_CASE("RFC 3339 timestamps round-trip", "[model]") {
  auto t = parse_rfc3339("2022-11-22T04:37:12Z");
  REQUIRE(t);
  CHECK(format_rfc3339(*t) == "2022-11-22T04:37:12Z");
  CHECK(parse_rfc3339("2022-11-22T06:37:12.123+02:00") == t);
  CHECK_FALSE(parse_rfc3339("2022-13-22T04:37:12Z"));
  CHECK_FALSE(parse_rfc3339("2022-02-30T04:37:12Z"));
  CHECK_FALSE(parse_rfc3339("yesterday"));
}

TEST_CASE("timestamps before year 1000 keep four digits and outside years 1-9999 are refused",
          "[model]") {
  auto early = parse_rfc3339("0343-01-01T00:00:00Z");
  REQUIRE(early);
  CHECK(format_rfc3339(*early) == "0343-01-01T00:00:00Z");
  CHECK(parse_rfc3339(format_rfc3339(*early)) == early);
  CHECK_FALSE(parse_rfc3339("0001-01-01T00:00:00+01:00"));
  CHECK_FALSE(parse_rfc3339("9999-12-31T23:30:00-01:00"));
  CHECK_FALSE(parse_rfc3339("-001-01-01T00:00:00Z"));
  CHECK_FALSE(parse_rfc3339("2022-+1-22T04:37:12Z"));
}

TEST_CASE("addresses map to keys and back", "[model]") {
  CHECK(address_for_key("ci") == "astro_api_token.ci");
  CHECK(key_for_address("astro_api_token.ci") == "ci");
  CHECK_FALSE(key_for_address("aws_instance.ci"));
  CHECK_FALSE(key_for_address("astro_api_token."));
}

TEST_CASE("a secret value never prints", "[model]") {
  std::ostringstream out;
  out << SecretValue("s3cr3t");
  CHECK(out.str() == "(sensitive value)");
}

TEST_CASE("a token's type is one of the three token entity types", "[model]") {
  for (EntityType type : {EntityType::Organization, EntityType::Workspace, EntityType::Deployment,
                          EntityType::Dag, EntityType::DagTag}) {
    CHECK(parse_entity_type(to_string(type)) == type);
    CHECK(is_token_type(type) == (type != EntityType::Dag && type != EntityType::DagTag));
  }
  CHECK(to_string(EntityType::Dag) == "DAG");
  CHECK(to_string(EntityType::DagTag) == "DAG_TAG");
  CHECK(parse_token_type("DEPLOYMENT") == EntityType::Deployment);
  CHECK_FALSE(parse_token_type("DAG"));
  CHECK_FALSE(parse_token_type("DAG_TAG"));
  CHECK_FALSE(parse_entity_type("dag"));
  CHECK_FALSE(parse_entity_type("TAG"));
}

TEST_CASE("token kinds round-trip through their API spelling", "[model]") {
  CHECK(to_string(TokenKind::Standard) == "STANDARD");
  CHECK(to_string(TokenKind::DirectAccess) == "DIRECT_ACCESS");
  CHECK(parse_token_kind("STANDARD") == TokenKind::Standard);
  CHECK(parse_token_kind("DIRECT_ACCESS") == TokenKind::DirectAccess);
  CHECK_FALSE(parse_token_kind("direct_access"));
  CHECK_FALSE(parse_token_kind(""));
  CHECK(TokenAttrs{}.kind == TokenKind::Standard);
}

TEST_CASE("a DAG role's deployment is part of its identity", "[model]") {
  Role in_one{"DAG_VIEWER", "etl", EntityType::Dag, "cdep1"};
  Role in_other{"DAG_VIEWER", "etl", EntityType::Dag, "cdep2"};
  CHECK(in_one != in_other);
  CHECK(in_one < in_other);
  CHECK(Role{"WORKSPACE_OWNER", "w1", EntityType::Workspace}.deployment_id.empty());
  RoleSet roles = normalize_roles({in_other, in_one, in_other});
  REQUIRE(roles.size() == 2);
  CHECK(roles[0] == in_one);
  CHECK(roles[1] == in_other);
}
