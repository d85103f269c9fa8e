// A hand-edited saved plan cannot make astro-tokend create a token twice:
// `apply PLANFILE` refuses a plan with two changes for one address, or a
// create for an address the state already manages, before any API write or
// state write (exit 1, the file and the address in the message).
#include <catch2/catch.hpp>

#include <functional>

#include "cli/fixture.h"

using namespace tokend;
using namespace tokend::testing;

namespace {

// The text of `plan` with its first change (one JSON object in "changes")
// given to `edit`, which returns what replaces it.
std::string edit_first_change(const std::string& plan,
                              const std::function<std::string(const std::string&)>& edit) {
  const size_t list = plan.find("\"changes\": [");
  REQUIRE(list != std::string::npos);
  const size_t begin = plan.find('{', list);
  size_t depth = 0, end = begin;
  bool in_string = false;
  for (; end < plan.size(); ++end) {
    const char c = plan[end];
    if (in_string) {
      if (c == '\\')
        ++end;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{') {
      ++depth;
    } else if (c == '}' && --depth == 0) {
      break;
    }
  }
  REQUIRE(end < plan.size());
  const std::string change = plan.substr(begin, end + 1 - begin);
  return plan.substr(0, begin) + edit(change) + plan.substr(end + 1);
}

}  // namespace

TEST_CASE("apply refuses a saved plan that changes one address twice or creates a managed one",
          "[integration][plan]") {
  CliWorkspace ws;
  seed_managed_fleet(ws, 3, 1);
  ws.write_spec("fresh.toml", workspace_spec("fresh", "fresh token"));
  const std::string saved = ws.dir().file("saved.plan");
  ProcessResult planned = ws.tokend({"plan", "--out", saved});
  INFO(planned.out << planned.err);
  REQUIRE(planned.exit_code == 0);
  const std::string original = read_file(saved);
  REQUIRE(original.find("\"key\": \"fresh\"") != std::string::npos);

  std::string expected;
  SECTION("the same create four times") {
    write_file(saved, edit_first_change(original, [](const std::string& change) {
                 return change + ", " + change + ", " + change + ", " + change;
               }));
    expected = saved + ": plan file: changes[1]: a second change for astro_api_token.fresh";
  }
  SECTION("a create for an address in state") {
    write_file(saved, edit_first_change(original, [](const std::string& change) {
                 std::string edited = change;
                 const std::string from = "\"key\": \"fresh\"";
                 edited.replace(edited.find(from), from.size(), "\"key\": \"t00002\"");
                 return edited;
               }));
    expected = saved +
               ": plan file: changes[0]: creates astro_api_token.t00002, which the state already "
               "manages";
  }
  const int64_t serial = ws.open_state()->serial();
  ws.control().reset_requests();

  ProcessResult applied = ws.tokend({"apply", saved});
  INFO(applied.out << applied.err);
  CHECK(applied.exit_code == 1);
  CHECK_THAT(applied.err, Catch::Contains(expected));
  CHECK(ws.control().requests().count("CreateApiToken") == 0);
  CHECK(ws.control().tokens().size() == 3);
  CHECK(ws.open_state()->serial() == serial);
  CHECK(ws.open_state()->resources()->size() == 3);

  // The plan as saved still applies: one create.
  write_file(saved, original);
  ProcessResult intact = ws.tokend({"apply", saved});
  INFO(intact.out << intact.err);
  CHECK(intact.exit_code == 0);
  CHECK(ws.control().requests().count("CreateApiToken") == 1);
  CHECK(ws.control().tokens().size() == 4);
}
