#include <catch2/catch.hpp>

#include "apply/recovery.h"

using namespace tokend;
using namespace tokend::apply;
using std::chrono::seconds;

namespace {

const Timestamp kStart = *parse_rfc3339("2026-11-01T10:00:00Z");

astro::ApiToken remote(const std::string& id, const std::string& name, Timestamp created) {
  astro::ApiToken t;
  t.id = id;
  t.name = name;
  t.type = EntityType::Workspace;
  t.roles = {{"WORKSPACE_OWNER", "cws", EntityType::Workspace}};
  t.created_at = t.updated_at = t.start_at = created;
  return t;
}

state::Intent create_intent(int64_t id, const std::string& key, const std::string& name) {
  state::Intent intent;
  intent.id = id;
  intent.key = key;
  intent.kind = state::IntentKind::Create;
  intent.attrs.name = name;
  intent.attrs.type = EntityType::Workspace;
  intent.sink_path = "/sinks/" + key + ".token";
  intent.started_at = kStart;
  return intent;
}

plan::Observed observe(std::vector<astro::ApiToken> tokens) {
  plan::Observed observed;
  for (auto& t : tokens) observed.tokens[t.id] = t;
  return observed;
}

}  // namespace

TEST_CASE("a create intent adopts the token it created - once", "[apply][recovery]") {
  auto observed = observe({remote("cold", "ci", kStart - seconds(3600)),  // older: not ours
                           remote("cnew", "ci", kStart + seconds(1)),
                           remote("clater", "ci", kStart + seconds(5))});
  Recovery r = resolve_intents({create_intent(7, "ci", "ci")}, {}, observed);
  REQUIRE(r.outcomes.size() == 1);
  CHECK(r.dropped.empty());
  const auto& outcome = r.outcomes[0];
  CHECK(outcome.key == "ci");
  CHECK(outcome.resolved_intent == 7);
  REQUIRE(outcome.resource);
  CHECK(outcome.resource->id == "cnew");
  CHECK(outcome.resource->rotate_pending);
  CHECK(outcome.resource->sink_sha256.empty());
  CHECK(outcome.resource->sink_path == "/sinks/ci.token");
}

TEST_CASE("a create intent never adopts a token another key manages", "[apply][recovery]") {
  state::ResourceRecord other;
  other.key = "other";
  other.id = "cnew";
  auto observed = observe({remote("cnew", "ci", kStart + seconds(1))});
  Recovery r = resolve_intents({create_intent(1, "ci", "ci")}, {other}, observed);
  CHECK(r.outcomes.empty());
  CHECK(r.dropped == std::vector<int64_t>{1});
}

TEST_CASE("a create intent that came to nothing is dropped", "[apply][recovery]") {
  Recovery r = resolve_intents({create_intent(3, "ci", "ci")}, {}, observe({}));
  CHECK(r.outcomes.empty());
  CHECK(r.dropped == std::vector<int64_t>{3});
}

TEST_CASE("a create intent is kept when an incomplete listing does not show its token",
          "[apply][recovery]") {
  plan::Observed observed = observe({});
  observed.complete = false;
  Recovery r = resolve_intents({create_intent(3, "ci", "ci")}, {}, observed);
  CHECK(r.outcomes.empty());
  CHECK(r.dropped.empty());
  REQUIRE(r.unsettled.size() == 1);
  CHECK(r.unsettled[0].id == 3);

  // A token it does show is still adopted.
  observed = observe({remote("cnew", "ci", kStart + seconds(1))});
  observed.complete = false;
  r = resolve_intents({create_intent(3, "ci", "ci")}, {}, observed);
  REQUIRE(r.outcomes.size() == 1);
  CHECK(r.outcomes[0].resource->id == "cnew");
  CHECK(r.unsettled.empty());
}

TEST_CASE("two interrupted creates of the same name adopt distinct tokens", "[apply][recovery]") {
  auto a = create_intent(1, "a", "same");
  auto b = create_intent(2, "b", "same");
  b.started_at = kStart + seconds(10);
  auto observed = observe(
      {remote("c1", "same", kStart + seconds(1)), remote("c2", "same", kStart + seconds(11))});
  Recovery r = resolve_intents({b, a}, {}, observed);
  REQUIRE(r.outcomes.size() == 2);
  CHECK(r.outcomes[0].key == "a");
  CHECK(r.outcomes[0].resource->id == "c1");
  CHECK(r.outcomes[1].key == "b");
  CHECK(r.outcomes[1].resource->id == "c2");
}

TEST_CASE("an interrupted create_before_destroy keeps the old token as deposed",
          "[apply][recovery]") {
  state::ResourceRecord old;
  old.key = "ci";
  old.id = "cold";
  auto observed = observe(
      {remote("cold", "ci", kStart - seconds(3600)), remote("cnew", "ci", kStart + seconds(2))});
  Recovery r = resolve_intents({create_intent(4, "ci", "ci")}, {old}, observed);
  REQUIRE(r.outcomes.size() == 2);
  // The successor first: the old id must leave the key before the deposed row takes it.
  CHECK(r.outcomes[0].key == "ci");
  CHECK(r.outcomes[0].resource->id == "cnew");
  CHECK(r.outcomes[0].resolved_intent == 4);
  CHECK(r.outcomes[1].key == "ci~cold");
  CHECK(is_deposed_key(r.outcomes[1].key));
  CHECK(r.outcomes[1].resource->id == "cold");
  CHECK_FALSE(r.outcomes[1].resolved_intent);
  auto after = apply_recovery({old}, r);
  REQUIRE(after.size() == 2);
  CHECK(after[0].key == "ci");
  CHECK(after[0].id == "cnew");
  CHECK(after[1].key == "ci~cold");
}

TEST_CASE("an interrupted rotation marks the value lost", "[apply][recovery]") {
  state::ResourceRecord row;
  row.key = "ci";
  row.id = "c1";
  row.sink_sha256 = "abc";
  state::Intent intent;
  intent.id = 9;
  intent.key = "ci";
  intent.kind = state::IntentKind::Rotate;
  intent.token_id = "c1";
  Recovery r = resolve_intents({intent}, {row}, observe({remote("c1", "ci", kStart)}));
  REQUIRE(r.outcomes.size() == 1);
  CHECK(r.outcomes[0].resource->rotate_pending);
  CHECK(r.outcomes[0].resolved_intent == 9);

  Recovery gone = resolve_intents({intent}, {row}, observe({}));
  CHECK(gone.outcomes.empty());
  CHECK(gone.dropped == std::vector<int64_t>{9});
}

TEST_CASE("without a refresh every intent stays pending", "[apply][recovery]") {
  plan::Observed observed;
  observed.refreshed = false;
  Recovery r = resolve_intents({create_intent(1, "ci", "ci")}, {}, observed);
  CHECK(r.outcomes.empty());
  CHECK(r.dropped.empty());
}

namespace {

// A create intent with the window a client with a 3 s timeout gives it.
state::Intent windowed_create(int64_t id, const std::string& key, const std::string& name) {
  state::Intent intent = create_intent(id, key, name);
  intent.attrs.role = "WORKSPACE_OWNER";
  intent.attrs.roles = {{"WORKSPACE_OWNER", "cws", EntityType::Workspace},
                        {"DEPLOYMENT_ADMIN", "cdep", EntityType::Deployment}};
  intent.settle_after = kStart + seconds(8);
  return intent;
}

state::ResourceRecord managed_row(const std::string& key, const std::string& id) {
  return record_from_token(key, remote(id, key, kStart), "/sinks/" + key + ".token", "f00d");
}

}  // namespace

TEST_CASE("a create intent is not dropped by a listing taken before its request may have landed",
          "[apply][recovery]") {
  auto observed = observe({});
  observed.listed_at = kStart + seconds(2);
  Recovery early = resolve_intents({windowed_create(5, "ci", "ci")}, {}, observed);
  CHECK(early.dropped.empty());
  CHECK(early.outcomes.empty());
  REQUIRE(early.unsettled.size() == 1);
  CHECK(early.unsettled[0].id == 5);

  observed.listed_at = kStart + seconds(8);
  Recovery settled = resolve_intents({windowed_create(5, "ci", "ci")}, {}, observed);
  CHECK(settled.dropped == std::vector<int64_t>{5});
  CHECK(settled.unsettled.empty());
}

TEST_CASE(
    "a token a resolved create made late is destroyed when its key has a token - adopted "
    "otherwise",
    "[apply][recovery]") {
  state::Intent resolved = windowed_create(9, "ci", "ci");
  resolved.resolved = true;
  resolved.made_token_id = "cmine";
  // The key's own token, a second one the same create made (it landed after
  // the answer was lost and the create was made again), with only the
  // primary role the create sends.
  auto observed = observe(
      {remote("cmine", "ci", kStart + seconds(1)), remote("clate", "ci", kStart + seconds(2))});
  observed.listed_at = kStart + seconds(60);

  Recovery kept = resolve_intents({}, {managed_row("ci", "cmine")}, observed, {resolved});
  REQUIRE(kept.late.size() == 1);
  CHECK(kept.late[0].token_id == "clate");
  CHECK_FALSE(kept.late[0].adopted);
  REQUIRE(kept.outcomes.size() == 1);
  CHECK(kept.outcomes[0].key == deposed_key("ci", "clate"));
  CHECK_FALSE(kept.outcomes[0].resolved_intent);
  REQUIRE(kept.outcomes[0].resource);
  CHECK(kept.outcomes[0].resource->id == "clate");
  CHECK(kept.outcomes[0].resource->sink_path.empty());  // destroying it never touches a sink

  // No row for the key (the create was dropped): the late token is adopted.
  resolved.made_token_id.clear();
  auto only_late = observe({remote("clate", "ci", kStart + seconds(2))});
  only_late.listed_at = kStart + seconds(60);
  Recovery adopted = resolve_intents({}, {}, only_late, {resolved});
  REQUIRE(adopted.late.size() == 1);
  CHECK(adopted.late[0].adopted);
  REQUIRE(adopted.outcomes.size() == 1);
  CHECK(adopted.outcomes[0].key == "ci");
  REQUIRE(adopted.outcomes[0].resource);
  CHECK(adopted.outcomes[0].resource->id == "clate");
  CHECK(adopted.outcomes[0].resource->rotate_pending);
  CHECK(adopted.outcomes[0].resource->sink_path == "/sinks/ci.token");
}

TEST_CASE("tokens made by people are never taken for late creates", "[apply][recovery]") {
  state::Intent resolved = windowed_create(9, "ci", "ci");
  resolved.resolved = true;
  resolved.made_token_id = "cmine";
  auto other_roles = remote("croles", "ci", kStart + seconds(3));
  other_roles.roles = {{"WORKSPACE_AUTHOR", "cws", EntityType::Workspace}};
  auto other_type = remote("ctype", "ci", kStart + seconds(3));
  other_type.type = EntityType::Deployment;
  auto observed =
      observe({remote("cmine", "ci", kStart + seconds(1)),
               // same name, outside the window: before it, and after it
               remote("cbefore", "ci", kStart - seconds(3600)),
               remote("cafter", "ci", kStart + seconds(8 + 3600)),
               // inside the window, but another name, role set or type
               remote("cname", "ci-other", kStart + seconds(3)), other_roles, other_type});
  observed.listed_at = kStart + seconds(7200);
  Recovery r = resolve_intents({}, {managed_row("ci", "cmine")}, observed, {resolved});
  CHECK(r.late.empty());
  CHECK(r.outcomes.empty());
  // Without a window (an intent journalled before windows were kept) the rule
  // does not apply at all.
  resolved.settle_after = Timestamp{};
  auto in_window = observe({remote("clate", "ci", kStart + seconds(2))});
  CHECK(resolve_intents({}, {managed_row("ci", "cmine")}, in_window, {resolved}).late.empty());
}

TEST_CASE("a pending create adopts its token and marks a second one it made for destruction",
          "[apply][recovery]") {
  auto observed = observe(
      {remote("cfirst", "ci", kStart + seconds(1)), remote("csecond", "ci", kStart + seconds(2))});
  observed.listed_at = kStart + seconds(30);
  Recovery r = resolve_intents({windowed_create(3, "ci", "ci")}, {}, observed);
  REQUIRE(r.outcomes.size() == 2);
  CHECK(r.outcomes[0].key == "ci");
  CHECK(r.outcomes[0].resolved_intent == 3);
  CHECK(r.outcomes[0].resource->id == "cfirst");
  CHECK(r.outcomes[1].key == deposed_key("ci", "csecond"));
  REQUIRE(r.late.size() == 1);
  CHECK_FALSE(r.late[0].adopted);
}
