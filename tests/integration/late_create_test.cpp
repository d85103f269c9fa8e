// Creates whose answer is lost but whose request reaches the API later (a
// connection dropped at once, the request forwarded 1.5 s later) never make
// a second token, and a token such a create made beside the key's own is
// destroyed; tokens people make with the same name are left alone. Runs the
// real binary against astro-api-sim behind the project's fault-injecting
// proxy.
#include <catch2/catch.hpp>
#include <map>

#include "cli/fixture.h"
#include "support/fault_proxy.h"

using namespace tokend;
using namespace tokend::testing;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

std::string duplicate_names(const SimControl& control) {
  std::map<std::string, int> by_name;
  for (const auto& token : control.tokens()) ++by_name[token.name];
  std::string out;
  for (const auto& [name, count] : by_name)
    if (count > 1) out += name + " x" + std::to_string(count) + "\n";
  return out;
}

std::string key_of(int i) { return "t" + std::string(i < 10 ? "0" : "") + std::to_string(i); }

// The workspace's config with [astro] timeout = "3s".
void use_three_second_timeout(const CliWorkspace& ws) {
  std::string config = read_file(ws.config_path());
  const std::string from = "timeout = \"10s\"";
  const size_t at = config.find(from);
  REQUIRE(at != std::string::npos);
  config.replace(at, from.size(), "timeout = \"3s\"");
  write_file(ws.config_path(), config);
}

bool converged(const ProcessResult& applied) {
  return applied.exit_code == 0 &&
         applied.out.find("No changes. Your tokens match the configuration.") != std::string::npos;
}

}  // namespace

TEST_CASE("creates that land 1.5 s after their connection dropped make exactly one token each",
          "[integration][late]") {
  CliWorkspace ws;
  for (int i = 0; i < 20; ++i)
    ws.write_spec(key_of(i) + ".toml", workspace_spec(key_of(i), "late " + key_of(i)));
  FaultProxy proxy(ws.sim().base_url());
  ws.use_api_url(proxy.url());
  use_three_second_timeout(ws);
  proxy.set_rules({late_forward(token_create(ws.sim().org_id()), milliseconds(1500))});
  ws.control().reset_requests();

  // Every create loses its answer. None is made again while its request may
  // still land: apply waits for the request's deadline, then adopts the
  // token the request made (and rotates it: its value was lost).
  RunOptions patient;
  patient.timeout = std::chrono::seconds(240);  // 20 creates, 4 at a time, each waits about 5 s
  ProcessResult first = ws.tokend({"apply", "--auto-approve"}, patient);
  INFO(first.out << first.err);
  CHECK_THAT(first.err, Catch::Contains("ambiguous create may still take effect"));
  CHECK_THAT(first.err, !Catch::Contains("did not take effect; creating again"));
  REQUIRE(proxy.wait_late_forwards(milliseconds(20000)));
  CHECK(ws.control().requests().count("CreateApiToken") == 20);

  bool done = false;
  for (int run = 0; run < 6 && !done; ++run) {
    ProcessResult applied = ws.tokend({"apply", "--auto-approve"}, patient);
    INFO("run " << run << ": " << applied.out << applied.err);
    done = converged(applied);
    if (!done) REQUIRE(proxy.wait_late_forwards(milliseconds(20000)));
  }
  CHECK(done);
  CHECK(ws.control().requests().count("CreateApiToken") == 20);
  CHECK(ws.control().tokens().size() == 20);
  CHECK(duplicate_names(ws.control()) == "");

  // A person's token of the same name, made an hour before: never touched.
  sim::NewToken person = workspace_token("t03", "late t03");
  astro::ApiToken made = create_out_of_band(ws.control(), person);
  sim::TokenPatch earlier;
  earlier.created_at = made.created_at - std::chrono::hours(1);
  ws.control().patch_token(made.id, earlier);

  ProcessResult plan = ws.tokend({"plan", "--detailed-exitcode"});
  INFO(plan.out << plan.err);
  CHECK(plan.exit_code == 0);
  CHECK(plan.out == "No changes. Your tokens match the configuration.\n");
  CHECK_THAT(plan.err, !Catch::Contains("took effect late"));
  CHECK(ws.control().tokens().size() == 21);
  for (int i = 0; i < 20; ++i) {
    auto row = ws.open_state()->resource(key_of(i));
    REQUIRE(row.ok());
    REQUIRE(row->has_value());
    CHECK_FALSE((*row)->rotate_pending);
  }
}

TEST_CASE(
    "a token a create made beside the key's own is shown as a deposed object and destroyed "
    "- one made outside the create's window is left alone",
    "[integration][late]") {
  CliWorkspace ws;
  ws.write_spec("ci.toml", workspace_spec("ci", "ci deployer"));
  ProcessResult applied = ws.tokend({"apply", "--auto-approve"});
  INFO(applied.out << applied.err);
  REQUIRE(applied.exit_code == 0);
  auto row = ws.open_state()->resource("ci");
  REQUIRE(row.ok());
  REQUIRE(row->has_value());
  const std::string mine = (*row)->id;

  // A second token of that create (the same request reached the API twice),
  // a second after the first, with the primary role the create sends; and a
  // person's, of the same name, a day later.
  sim::TokenPatch twin_time;
  twin_time.created_at = (*row)->created_at + seconds(1);
  astro::ApiToken twin = create_out_of_band(ws.control(), workspace_token("ci", "ci deployer"));
  ws.control().patch_token(twin.id, twin_time);
  sim::TokenPatch person_time;
  person_time.created_at = (*row)->created_at + std::chrono::hours(24);
  astro::ApiToken person = create_out_of_band(ws.control(), workspace_token("ci", "ci deployer"));
  ws.control().patch_token(person.id, person_time);

  ProcessResult plan = ws.tokend({"plan", "--no-color"});
  INFO(plan.out << plan.err);
  CHECK(plan.exit_code == 0);
  CHECK_THAT(plan.out, Catch::Contains("# astro_api_token.ci (deposed object " + twin.id +
                                       ") will be destroyed"));
  CHECK_THAT(plan.out, Catch::Contains("made by a create that took effect late"));
  CHECK_THAT(plan.out, Catch::Contains("Plan: 0 to add, 0 to change, 1 to destroy"));
  CHECK_THAT(plan.err, Catch::Contains("token " + twin.id + " was made for astro_api_token.ci"));
  CHECK_THAT(plan.out, !Catch::Contains(person.id));

  ProcessResult destroyed = ws.tokend({"apply", "--auto-approve"});
  INFO(destroyed.out << destroyed.err);
  REQUIRE(destroyed.exit_code == 0);
  std::vector<std::string> ids;
  for (const auto& token : ws.control().tokens()) ids.push_back(token.id);
  std::sort(ids.begin(), ids.end());
  std::vector<std::string> expected{mine, person.id};
  std::sort(expected.begin(), expected.end());
  CHECK(ids == expected);

  ProcessResult history = ws.tokend({"history", "--json"});
  CHECK_THAT(history.out, Catch::Contains("\"orphan\""));
  ProcessResult again = ws.tokend({"plan", "--detailed-exitcode"});
  CHECK(again.exit_code == 0);
  CHECK(again.out == "No changes. Your tokens match the configuration.\n");
}
