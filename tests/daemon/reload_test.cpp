#include <catch2/catch.hpp>

#include "daemon/reload.h"

using namespace tokend;
using namespace tokend::daemon;

namespace {

spec::DesiredState base_state() {
  spec::DesiredState state;
  state.config.path = "/etc/astro-tokend/astro-tokend.toml";
  state.config.organization_id = "clx42kkcm01fo01o06agtmshg";
  state.spec_hash = "hash-1";
  return state;
}

spec::Loaded<spec::DesiredState> loaded(spec::DesiredState state) {
  spec::Loaded<spec::DesiredState> result;
  result.value = std::move(state);
  return result;
}

}  // namespace

TEST_CASE("an invalid reload keeps everything as it is", "[daemon][reload]") {
  spec::DesiredState current = base_state();
  spec::Loaded<spec::DesiredState> bad;
  bad.diagnostics.push_back(
      {{"/etc/astro-tokend/tokens.d/ci.toml", 3, 8}, "type must be one of …", ""});
  ReloadDecision decision = decide_reload(current, bad);
  CHECK_FALSE(decision.accept);
  REQUIRE(decision.diagnostics.size() == 1);
  CHECK(decision.diagnostics[0].pos.line == 3);
  CHECK_FALSE(decision.rebuild_runtime);
  CHECK_FALSE(decision.restart_server);

  // A value together with diagnostics is a half-loaded set: refused as well.
  spec::Loaded<spec::DesiredState> half = loaded(base_state());
  half.diagnostics.push_back({{"/etc/astro-tokend/tokens.d/x.toml", 1, 1}, "unknown key", ""});
  CHECK_FALSE(decide_reload(current, half).accept);

  // Nothing at all (should not happen): still refused, with a reason.
  ReloadDecision empty = decide_reload(current, spec::Loaded<spec::DesiredState>{});
  CHECK_FALSE(empty.accept);
  CHECK(empty.diagnostics.size() == 1);
}

TEST_CASE("a valid reload rebuilds only what depends on the changed sections", "[daemon][reload]") {
  struct Row {
    const char* name;
    void (*edit)(spec::DesiredState&);
    bool runtime, lock, server;
    std::vector<std::string> sections;
  };
  std::vector<Row> rows = {
      {"nothing", [](spec::DesiredState&) {}, false, false, false, {}},
      {"specs only",
       [](spec::DesiredState& s) { s.spec_hash = "hash-2"; },
       false,
       false,
       false,
       {}},
      {"api url",
       [](spec::DesiredState& s) { s.config.api_url = "http://127.0.0.1:1"; },
       true,
       false,
       false,
       {"astro"}},
      {"rate limits",
       [](spec::DesiredState& s) { s.config.rate_limits.post = 1; },
       true,
       false,
       false,
       {"astro"}},
      {"token env",
       [](spec::DesiredState& s) { s.config.token_env = "OTHER"; },
       true,
       false,
       false,
       {"astro"}},
      {"state path",
       [](spec::DesiredState& s) { s.config.state_path = "/srv/state.db"; },
       true,
       true,
       false,
       {"state"}},
      {"listen",
       [](spec::DesiredState& s) { s.config.listen = "127.0.0.1:0"; },
       false,
       false,
       true,
       {"server"}},
      {"log format",
       [](spec::DesiredState& s) { s.config.log_format = "json"; },
       true,
       false,
       false,
       {"log"}},
      {"interval",
       [](spec::DesiredState& s) { s.config.interval = std::chrono::seconds(1); },
       false,
       false,
       false,
       {"reconcile"}},
      {"mode",
       [](spec::DesiredState& s) { s.config.mode = spec::ReconcileMode::Plan; },
       false,
       false,
       false,
       {"reconcile"}},
      {"spec paths",
       [](spec::DesiredState& s) { s.config.spec_paths = {"/srv/tokens"}; },
       false,
       false,
       false,
       {"specs"}},
      {"secrets dir",
       [](spec::DesiredState& s) { s.config.secrets_dir = "/srv/secrets"; },
       false,
       false,
       false,
       {"secrets"}},
  };
  for (const Row& row : rows) {
    INFO(row.name);
    spec::DesiredState next = base_state();
    row.edit(next);
    ReloadDecision decision = decide_reload(base_state(), loaded(next));
    CHECK(decision.accept);
    CHECK(decision.rebuild_runtime == row.runtime);
    CHECK(decision.move_lock == row.lock);
    CHECK(decision.restart_server == row.server);
    CHECK(decision.changes.names() == row.sections);
    CHECK(decision.specs_changed == (std::string(row.name) == "specs only"));
  }
}
