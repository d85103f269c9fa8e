// The status page and its JSON, rendered from a snapshot: escaping, the
// token rows, the absence of scripts and external assets.
#include <catch2/catch.hpp>

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <string>

#include "daemon/status.h"

using namespace tokend;  // NOLINT: test file
using daemon::StatusSnapshot;
using daemon::TokenStatus;

namespace {

const Timestamp kNow = *parse_rfc3339("2026-11-28T12:00:00Z");

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

StatusSnapshot sample() {
  StatusSnapshot s;
  s.version = "1.2.3";
  s.organization_id = "clx42kkcm01fo01o06agtmshg";
  s.mode = "apply";
  s.state = "running";
  s.started_at = kNow - std::chrono::hours(2);
  s.config_loaded_at = kNow - std::chrono::hours(1);
  s.interval_seconds = 300;
  s.reconciled = true;
  s.last_cycle_at = kNow - std::chrono::minutes(1);
  s.last_result = "failure";
  s.last_trigger = "timer";
  s.last_duration_seconds = 0.42;
  s.last_summary = "Last reconcile 11:59:00Z: 0 added, 1 changed, 0 destroyed, 0 rotated, 1 failed";
  s.last_error = "1 change failed";
  s.next_cycle_at = kNow + std::chrono::minutes(4);
  s.planned = true;
  s.plan_counts.change = 2;
  s.plan_changes = {{"astro_api_token.ci", "update", true},
                    {"astro_api_token.web", "update", false}};
  s.drift = 1;

  TokenStatus ci;
  ci.address = "astro_api_token.ci";
  ci.id = "tok-ci";
  ci.name = "ci deployer";
  ci.type = EntityType::Workspace;
  ci.role = "WORKSPACE_OWNER";
  ci.roles = {{"WORKSPACE_OWNER", "clx42sxw501gl01o0gjenthnh", EntityType::Workspace},
              {"DAG_VIEWER", "etl_daily", EntityType::Dag, "clyn6kxud003x01mtxmccegnh"}};
  ci.kind = TokenKind::DirectAccess;
  ci.expires_at = kNow + std::chrono::hours(24 * 10 + 3);
  ci.last_rotation = kNow - std::chrono::hours(24 * 20);
  ci.next_rotation = kNow + std::chrono::hours(24 * 3);
  ci.drifted = {"name", "roles"};
  ci.pending = "update";
  TokenStatus hostile;
  hostile.address = "astro_api_token.hostile";
  hostile.id = "tok-h";
  hostile.name = "<img src=x onerror=alert(1)>";
  hostile.type = EntityType::Organization;
  hostile.role = "ORGANIZATION_MEMBER";
  hostile.roles = {
      {"ORGANIZATION_MEMBER", "\"><script>alert(2)</script>", EntityType::Organization}};
  hostile.failure = "UpdateApiToken: name is <b>bad</b> (HTTP 400)";
  hostile.retry_at = kNow + std::chrono::seconds(20);
  s.tokens = {ci, hostile};

  state::RunRecord run;
  run.id = 7;
  run.trigger = "timer";
  run.command = "run";
  run.started_at = kNow - std::chrono::minutes(1);
  run.result = state::RunResult::Failed;
  run.to_change = 2;
  run.failed = 1;
  run.api_calls = 4;
  run.duration_seconds = 0.4;
  run.message = "1 change <failed>";
  s.history = {run};
  return s;
}

}  // namespace

TEST_CASE("html_escape replaces the five markup characters", "[daemon][status]") {
  CHECK(daemon::html_escape("a<b>&\"c'") == "a&lt;b&gt;&amp;&quot;c&#39;");
  CHECK(daemon::html_escape("plain é") == "plain é");
}

TEST_CASE("the status page shows the daemon, the last reconcile, the plan, tokens and history",
          "[daemon][status]") {
  const std::string page = daemon::render_status_html(sample(), kNow);
  CHECK(page.rfind("<!DOCTYPE html>\n", 0) == 0);
  for (const char* text :
       {"<title>astro-tokend 1.2.3 - clx42kkcm01fo01o06agtmshg</title>", "<dd>running</dd>",
        "<dd class=\"failure\">failure</dd>", "<dd>0.4s</dd>",
        "<dd>2026-11-28 12:04:00 UTC (in 4m)</dd>",
        "Plan: 0 to add, 2 to change, 0 to destroy, 0 to rotate; 1 token changed outside",
        "<td>update and rotate</td>", "<td class=\"mono\">astro_api_token.ci</td>",
        "<td>ci deployer</td>", "<td>DIRECT_ACCESS</td>",
        "<li>WORKSPACE_OWNER on WORKSPACE clx42sxw501gl01o0gjenthnh</li>",
        "<li>DAG_VIEWER on DAG etl_daily (deployment clyn6kxud003x01mtxmccegnh)</li>",
        "2026-12-08 15:00:00 UTC (10 days left)", "2026-11-08 12:00:00 UTC",
        "2026-12-01 12:00:00 UTC (in 3 days)",
        "<span class=\"drift\">drift</span>: changed outside astro-tokend: name, roles",
        "<span class=\"failing\">failing</span>: UpdateApiToken: name is &lt;b&gt;bad&lt;/b&gt; "
        "(HTTP 400); retrying in 20s",
        "<td class=\"failed\">failed</td>", "<td>1 change &lt;failed&gt;</td>"}) {
    INFO(text);
    CHECK(contains(page, text));
  }
  // Markup from the API or the specs is text, never an element.
  CHECK(contains(page, "<td>&lt;img src=x onerror=alert(1)&gt;</td>"));
  CHECK(contains(page, "&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;"));
  CHECK_FALSE(contains(page, "<img"));
  CHECK_FALSE(contains(page, "<script"));
  // Self-contained: no external assets, no script.
  CHECK_FALSE(contains(page, " src=\""));
  CHECK_FALSE(contains(page, "<link"));
  CHECK_FALSE(contains(page, "http://"));
  CHECK_FALSE(contains(page, "https://"));
}

TEST_CASE("before the first reconcile the page says so", "[daemon][status]") {
  StatusSnapshot s;
  s.version = "1.2.3";
  s.mode = "plan";
  const std::string page = daemon::render_status_html(s, kNow);
  CHECK(contains(page, "None yet: the first reconcile is running."));
  CHECK(contains(page, "No plan yet."));
  CHECK(contains(page, "No managed tokens."));
  CHECK(contains(page, "plan (reports changes, applies nothing)"));
  auto root = Poco::JSON::Parser()
                  .parse(daemon::render_status_json(s, kNow))
                  .extract<Poco::JSON::Object::Ptr>();
  CHECK(root->isNull("last_reconcile"));
  CHECK(root->isNull("plan"));
  CHECK(root->getArray("tokens")->size() == 0);
}

TEST_CASE("status.json carries the same data", "[daemon][status]") {
  const std::string json = daemon::render_status_json(sample(), kNow);
  auto root = Poco::JSON::Parser().parse(json).extract<Poco::JSON::Object::Ptr>();
  CHECK(root->getValue<std::string>("generated_at") == "2026-11-28T12:00:00Z");
  auto d = root->getObject("daemon");
  CHECK(d->getValue<std::string>("version") == "1.2.3");
  CHECK(d->getValue<std::string>("state") == "running");
  CHECK(d->getValue<bool>("leader"));
  CHECK(d->getValue<double>("interval_seconds") == 300);
  auto last = root->getObject("last_reconcile");
  CHECK(last->getValue<std::string>("result") == "failure");
  CHECK(last->getValue<std::string>("next_run_at") == "2026-11-28T12:04:00Z");
  auto plan = root->getObject("plan");
  CHECK(plan->getObject("counts")->getValue<int>("change") == 2);
  CHECK(plan->getArray("changes")->getObject(0)->getValue<bool>("rotate"));
  auto tokens = root->getArray("tokens");
  REQUIRE(tokens->size() == 2);
  auto ci = tokens->getObject(0);
  CHECK(ci->getValue<std::string>("address") == "astro_api_token.ci");
  CHECK(ci->getValue<int>("days_left") == 10);
  CHECK(ci->getValue<std::string>("expires_at") == "2026-12-08T15:00:00Z");
  CHECK(ci->getValue<std::string>("next_rotation_at") == "2026-12-01T12:00:00Z");
  CHECK(ci->getValue<std::string>("status") == "drift");
  CHECK(ci->getArray("drifted")->size() == 2);
  CHECK(ci->getValue<std::string>("kind") == "DIRECT_ACCESS");
  REQUIRE(ci->getArray("roles")->size() == 2);
  CHECK(ci->getArray("roles")->getObject(0)->getValue<std::string>("entity_type") == "WORKSPACE");
  CHECK(ci->getArray("roles")->getObject(1)->getValue<std::string>("deployment_id") ==
        "clyn6kxud003x01mtxmccegnh");
  auto hostile = tokens->getObject(1);
  CHECK(hostile->getValue<std::string>("name") == "<img src=x onerror=alert(1)>");
  CHECK(hostile->getValue<std::string>("status") == "failing");
  CHECK(hostile->isNull("expires_at"));
  CHECK(hostile->isNull("days_left"));
  CHECK(hostile->getValue<std::string>("retry_at") == "2026-11-28T12:00:20Z");
  auto history = root->getArray("history");
  REQUIRE(history->size() == 1);
  CHECK(history->getObject(0)->getValue<int>("id") == 7);
  CHECK(history->getObject(0)->getValue<std::string>("result") == "failed");
  CHECK(history->getObject(0)->getValue<int>("api_calls") == 4);
}
