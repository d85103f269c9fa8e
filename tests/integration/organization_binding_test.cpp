// A state belongs to one organization: the first command that writes it
// records the configured organization_id, an older state adopts it on its
// first run, and a config naming another organization is refused before any
// API call (plan, apply, import, the daemon at start and on reload). Runs the
// real binary against two simulators, one per organization.
#include <catch2/catch.hpp>

#include <signal.h>

#include <filesystem>
#include <string>

#include "cli/fixture.h"
#include "daemon/harness.h"

using namespace tokend;
using namespace tokend::testing;
using std::chrono::seconds;

namespace {

constexpr const char* kOtherOrgId = "clorgother0000000000000002";

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

SimOptions other_organization() {
  SimOptions options;
  options.org_id = kOtherOrgId;
  options.rate_limits = false;
  return options;
}

std::string organization_of(const std::string& state_path) {
  auto store = state::StateStore::open(state_path);
  REQUIRE(store.ok());
  auto organization = (*store)->organization_id();
  REQUIRE(organization.ok());
  return *organization;
}

}  // namespace

TEST_CASE(
    "apply binds a new state to its organization - and a config naming another is refused "
    "before any API call",
    "[integration][organization]") {
  CliWorkspace ws;
  ws.write_spec("ci.toml", workspace_spec("ci", "ci deployer"));
  ProcessResult applied = ws.tokend({"apply", "--auto-approve"});
  INFO(applied.err);
  REQUIRE(applied.exit_code == 0);
  const std::string org = ws.sim().org_id();
  CHECK(organization_of(ws.state_path()) == org);

  ProcessResult shown = ws.tokend({"state", "show"});
  INFO(shown.err);
  CHECK(shown.exit_code == 0);
  CHECK(contains(shown.out, "organization_id = \"" + org + "\"\n"));
  CHECK(contains(shown.out, "resources       = 1\n"));
  ProcessResult row = ws.tokend({"state", "show", "astro_api_token.ci"});
  CHECK(row.exit_code == 0);
  CHECK(contains(row.out, "organization_id"));
  CHECK(contains(row.out, "\"" + org + "\""));

  // The same state, configured for another organization on another API.
  SimProcess other(other_organization());
  const std::string config = read_file(ws.config_path());
  write_file(ws.config_path(),
             replaced(replaced(config, org, kOtherOrgId), ws.sim().base_url(), other.base_url()));
  auto store = ws.open_state();
  const int64_t serial = store->serial();
  const auto rows = store->resources();
  REQUIRE(rows.ok());
  ws.write_spec("extra.toml", workspace_spec("extra", "extra token"));  // for the import
  ws.control().reset_requests();

  for (const std::vector<std::string>& command :
       {std::vector<std::string>{"plan"}, std::vector<std::string>{"apply", "--auto-approve"},
        std::vector<std::string>{"import", "astro_api_token.extra", "clm8q7f6q000008lcgyouxxxx"},
        std::vector<std::string>{"run", "--once"}}) {
    ProcessResult refused = ws.tokend(command);
    INFO(command.front() << ": " << refused.err);
    CHECK(refused.exit_code == 1);
    CHECK(contains(refused.err, "the state belongs to organization " + org +
                                    ", but the config names organization " + kOtherOrgId));
  }
  CHECK(other.control().requests().total == 0);
  CHECK(ws.control().requests().total == 0);
  CHECK(store->serial() == serial);
  CHECK(store->resources().value() == *rows);
  CHECK(organization_of(ws.state_path()) == org);
  CHECK(other.control().tokens().empty());
}

TEST_CASE(
    "a state that records no organization adopts the configured one on its first run - and "
    "says so",
    "[integration][organization]") {
  SimProcess sim;
  DaemonUnderTest daemon(sim);
  daemon.write_spec("ci.toml", workspace_token_toml("ci", "ci deployer"));
  {
    std::filesystem::create_directories(std::filesystem::path(daemon.state_path()).parent_path());
    auto store = state::StateStore::open(daemon.state_path());
    REQUIRE(store.ok());
    // A state that has been written before (serial 1) and records no organization.
    REQUIRE((*store)->record_outcome({"gone", std::nullopt, std::nullopt}).ok());
    REQUIRE((*store)->serial() == 1);
  }
  CHECK(organization_of(daemon.state_path()).empty());

  auto once = run_tokend({"run", "--once", "-c", daemon.config_path()}, daemon.run_options());
  INFO(once.err);
  CHECK(once.exit_code == 0);
  CHECK(contains(once.err,
                 "msg=\"the state recorded no organization; it now belongs to the configured "
                 "one\" organization_id=" +
                     std::string(kSimOrgId)));
  CHECK(organization_of(daemon.state_path()) == kSimOrgId);

  // Bound once: the next run says nothing more about it.
  auto again = run_tokend({"run", "--once", "-c", daemon.config_path()}, daemon.run_options());
  CHECK(again.exit_code == 0);
  CHECK_FALSE(contains(again.err, "recorded no organization"));
}

TEST_CASE("the daemon refuses a reload to another organization and keeps reconciling its own",
          "[integration][organization][daemon]") {
  SimProcess sim;
  DaemonUnderTest daemon(sim);
  daemon.write_spec("ci.toml", workspace_token_toml("ci", "ci deployer"));
  daemon.start();
  REQUIRE(daemon.wait_for_log("msg=\"reconcile finished\" result=success"));
  CHECK(organization_of(daemon.state_path()) == kSimOrgId);

  SimProcess other(other_organization());
  size_t mark = daemon.log().size();
  DaemonConfig moved;
  moved.api_url = other.base_url();
  moved.organization_id = kOtherOrgId;
  daemon.write_config(moved);
  REQUIRE(daemon.wait_for_log("configuration reload refused", mark));
  const std::string log = daemon.log().substr(mark);
  CHECK(contains(log, "the state belongs to organization " + std::string(kSimOrgId) +
                          ", but the config names organization " + kOtherOrgId));
  CHECK(daemon.metric("astro_tokend_config_last_reload_successful") == 0);

  // The running configuration stays in force: cycles go on against the
  // first organization, and the other one never hears from the daemon.
  size_t refused_at = daemon.log().size();
  REQUIRE(daemon.wait_for_log("msg=\"reconcile finished\" result=success", refused_at));
  CHECK(other.control().requests().total == 0);
  CHECK(daemon.process().running());
  CHECK(organization_of(daemon.state_path()) == kSimOrgId);

  // A daemon started on that config refuses to start.
  daemon.process().signal(SIGTERM);
  REQUIRE(daemon.process().wait_for_exit(seconds(10)));
  auto started = run_tokend({"run", "-c", daemon.config_path()}, daemon.run_options());
  CHECK(started.exit_code == 1);
  CHECK(contains(started.err, "the state belongs to organization " + std::string(kSimOrgId)));
  CHECK(contains(started.err, kOtherOrgId));
  CHECK(other.control().requests().total == 0);
}
