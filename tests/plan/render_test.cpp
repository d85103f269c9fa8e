#include <catch2/catch.hpp>

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <functional>
#include <map>

#include "plan/fixtures.h"
#include "plan/golden.h"
#include "plan/plan.h"
#include "plan/render_json.h"
#include "plan/render_text.h"
#include "version.h"

using namespace tokend;
using namespace tokend::plan;
using namespace tokend::plan::testing;

namespace {

std::string version_free(const std::string& json) {
  std::string out = json;
  for (const char* key : {"astro_tokend_version", "terraform_version"})
    out = replace_all(out, "\"" + std::string(key) + "\": \"" + std::string(kVersion) + "\"",
                      "\"" + std::string(key) + "\": \"VERSION\"");
  return out;
}

// The resources of planned_values or prior_state.values, by name.
std::map<std::string, Poco::JSON::Object::Ptr> resources_of(const Poco::JSON::Object::Ptr& values) {
  std::map<std::string, Poco::JSON::Object::Ptr> by_name;
  auto resources = values->getObject("root_module")->getArray("resources");
  for (size_t i = 0; i < resources->size(); ++i) {
    auto entry = resources->getObject(static_cast<unsigned>(i));
    by_name[entry->getValue<std::string>("name")] = entry;
  }
  return by_name;
}

Poco::JSON::Object::Ptr parse(const std::string& json) {
  Poco::JSON::Parser parser;
  return parser.parse(json).extract<Poco::JSON::Object::Ptr>();
}

std::string actions_of(const Poco::JSON::Object::Ptr& entry) {
  auto actions = entry->getObject("change")->getArray("actions");
  std::string out;
  for (size_t i = 0; i < actions->size(); ++i)
    out += (i ? "," : "") + actions->getElement<std::string>(i);
  return out;
}

Plan single_change_plan(Action action) {
  Input input = make_input();
  switch (action) {
    case Action::Create:
      input.desired.push_back(make_spec("a"));
      break;
    case Action::Update:
      add_managed(input, "a");
      input.desired[0].attrs.name = "renamed";
      break;
    default:
      add_managed(input, "a");
      input.prior[0].rotate_pending = true;
      break;
  }
  return compute(input);
}

}  // namespace

TEST_CASE("text rendering of a plan with every action matches the golden files", "[plan]") {
  Plan plan = compute(all_actions_input());
  REQUIRE(plan.errors.empty());
  check_golden("all_actions.txt", render_text(plan, RenderOptions::for_terminal(false)));
  check_golden("all_actions_color.txt", render_text(plan, RenderOptions::for_terminal(true)));
}

TEST_CASE("JSON rendering of a plan with every action matches the golden file", "[plan]") {
  Plan plan = compute(all_actions_input());
  check_golden("all_actions.json", version_free(render_json(plan)));
}

TEST_CASE("text rendering: phrasing - symbols and the summary line", "[plan]") {
  Plan plan = compute(all_actions_input());
  std::string text = render_text(plan, RenderOptions::for_terminal(false));

  CHECK(text.find("Note: Objects have changed outside of astro-tokend\n") == 0);
  for (const char* expected : {
           "  # astro_api_token.a_create will be created\n  + resource \"astro_api_token\" "
           "\"a_create\" {\n",
           "  # astro_api_token.b_import will be imported and updated in-place\n"
           "  # (imported from \"clm8q7f6q000008lcgyougpsk\")\n"
           " <= resource \"astro_api_token\" \"b_import\" {\n",
           "  # astro_api_token.c_update will be updated in-place\n  ~ resource",
           "  # astro_api_token.d_replace must be replaced\n-/+ resource",
           "      ~ expiry_period_in_days = 90 -> 30 # forces replacement\n",
           "  # astro_api_token.e_replace_cbd must be replaced\n+/- resource",
           "  # astro_api_token.f_delete will be destroyed\n"
           "  # (because astro_api_token.f_delete is not in configuration)\n  - resource",
           "  # astro_api_token.g_rotate will be rotated\n  # (because it expired at "
           "2026-02-27T12:00:00Z)\n"
           "  R resource",
           "  # astro_api_token.h_update_rotate will be updated in-place and rotated\n"
           "  # (because its sink file \"/var/lib/astro-tokend/tokens/h_update_rotate.token\" is "
           "missing)\n",
           "  # astro_api_token.i_recreate has been deleted\n",
           "  # astro_api_token.k_drift has changed\n",
           "      ~ name       = \"renamed outside\" -> \"k_drift token\"\n",
           "      + id                    = (known after apply)\n",
           "      + token                 = (sensitive value)\n",
           "        # (11 unchanged attributes hidden)\n",
           " <= import\n  + create\n  ~ update in-place\n  - destroy\n"
           "-/+ destroy and then create replacement\n"
           "+/- create replacement and then destroy\n  R rotate\n  . forget\n",
       }) {
    INFO(expected);
    CHECK(text.find(expected) != std::string::npos);
  }
  CHECK(text.find("l_noop") == std::string::npos);
  CHECK(text.find("\x1b[") == std::string::npos);
  CHECK(text.find("↻") == std::string::npos);
  const std::string last =
      "\nPlan: 1 to import, 4 to add, 4 to change, 3 to destroy, 2 to rotate.\n";
  CHECK(text.substr(text.size() - last.size()) == last);
}

TEST_CASE("text rendering: colour and Unicode symbols only when asked", "[plan]") {
  Plan plan = compute(all_actions_input());
  std::string colored = render_text(plan, RenderOptions::for_terminal(true));
  CHECK(colored.find("\x1b[32m+\x1b[0m create") != std::string::npos);
  CHECK(colored.find("\x1b[36m↻\x1b[0m resource") != std::string::npos);
  CHECK(colored.find("\x1b[1mPlan:\x1b[0m 1 to import, 4 to add") != std::string::npos);
  CHECK(colored.find("\x1b[36m<=\x1b[0m import") != std::string::npos);

  RenderOptions unicode_plain;
  unicode_plain.color = false;
  unicode_plain.ascii_symbols = false;
  std::string plain = render_text(plan, unicode_plain);
  CHECK(plain.find("\x1b[") == std::string::npos);
  CHECK(plain.find("  ↻ rotate\n") != std::string::npos);
}

TEST_CASE("text rendering: the legend lists only the symbols in use", "[plan]") {
  std::string create = render_text(single_change_plan(Action::Create));
  CHECK(create.find("  + create\n\nastro-tokend will perform") != std::string::npos);
  CHECK(create.find("update in-place") == std::string::npos);
  CHECK(create.find("Note:") == std::string::npos);

  std::string update = render_text(single_change_plan(Action::Update));
  CHECK(update.find("symbols:\n  ~ update in-place\n\n") != std::string::npos);
  CHECK(update.find(
            "        id         = \"tok-a\"\n      ~ name       = \"a token\" -> \"renamed\"\n") !=
        std::string::npos);

  std::string rotate = render_text(single_change_plan(Action::Rotate));
  CHECK(rotate.find("symbols:\n  R rotate\n\n") != std::string::npos);
  CHECK(rotate.find("(because its current value was lost before it was delivered)") !=
        std::string::npos);
  CHECK(rotate.find("      ~ token           = (sensitive value)\n") != std::string::npos);
  CHECK(rotate.find("      + last_rotated_at = (known after apply)\n") != std::string::npos);
}

TEST_CASE("text rendering: no changes - drift only - and errors", "[plan]") {
  Input input = make_input();
  CHECK(render_text(compute(input)) == "No changes. Your tokens match the configuration.\n");
  CHECK(render_text(compute(input), RenderOptions::for_terminal(true)) ==
        "\x1b[1m\x1b[32mNo changes.\x1b[0m\x1b[1m\x1b[32m Your tokens match the "
        "configuration.\x1b[0m\n");

  add_managed(input, "a");
  input.observed.tokens[id_for("a")].description = "changed outside";
  input.desired[0].lifecycle.ignore_changes = {"description"};
  std::string drift_only = render_text(compute(input));
  CHECK(drift_only.find("  # astro_api_token.a has changed\n") != std::string::npos);
  CHECK(drift_only.find("\n\nNo changes. Your tokens match the configuration.\n") !=
        std::string::npos);
  CHECK(drift_only.find("Plan:") == std::string::npos);

  input.desired[0].attrs.expiry_period_in_days = 30;
  input.desired[0].lifecycle.prevent_destroy = true;
  input.desired.push_back(make_spec("b"));
  input.desired.back().import_id = "nope";
  std::string failed = render_text(compute(input));
  CHECK(
      failed.find(
          "Error: astro_api_token.a has lifecycle.prevent_destroy set, but the plan calls for this "
          "resource to be destroyed\n\n"
          "Error: import_id \"nope\" for astro_api_token.b does not exist in the organization\n") !=
      std::string::npos);
  CHECK(failed.find("Plan:") == std::string::npos);
  CHECK(failed.find("No changes") == std::string::npos);
}

TEST_CASE("imports are shown as imports - with the id they come from", "[plan]") {
  auto import_plan = [](const std::function<void(Input&)>& setup) {
    Input input = make_input();
    add_managed(input, "a");
    input.observed.tokens[id_for("x")] = token_for(make_row("x"));
    spec::TokenSpec spec = make_spec("x");
    spec.import_id = id_for("x");
    input.desired.push_back(spec);
    setup(input);
    return compute(input);
  };
  struct ImportCase {
    const char* name;
    std::function<void(Input&)> setup;
    const char* heading;
    const char* json_actions;
    const char* summary;
  };
  const ImportCase cases[] = {
      {"equal", [](Input&) {}, "will be imported\n", "no-op",
       "Plan: 1 to import, 0 to add, 0 to change, 0 to destroy, 0 to rotate.\n"},
      {"name differs", [](Input& in) { in.desired[1].attrs.name = "renamed"; },
       "will be imported and updated in-place\n", "update",
       "Plan: 1 to import, 0 to add, 1 to change, 0 to destroy, 0 to rotate.\n"},
      {"--rotate", [](Input& in) { in.rotations = {"astro_api_token.x"}; },
       "will be imported and rotated\n  # (imported from \"tok-x\")\n"
       "  # (because its rotation was requested with --rotate)\n",
       "update", "Plan: 1 to import, 0 to add, 0 to change, 0 to destroy, 1 to rotate.\n"},
      {"name differs and --rotate",
       [](Input& in) {
         in.desired[1].attrs.name = "renamed";
         in.rotations = {"astro_api_token.x"};
       },
       "will be imported, updated in-place and rotated\n", "update",
       "Plan: 1 to import, 0 to add, 1 to change, 0 to destroy, 1 to rotate.\n"},
  };
  for (const ImportCase& c : cases) {
    SECTION(c.name) {
      Plan plan = import_plan(c.setup);
      REQUIRE(plan.errors.empty());
      REQUIRE(plan.changes.size() == 1);
      std::string text = render_text(plan);
      CHECK(text.find(std::string("  # astro_api_token.x ") + c.heading) != std::string::npos);
      CHECK(text.find("  # (imported from \"tok-x\")\n") != std::string::npos);
      CHECK(text.find("symbols:\n <= import\n\n") != std::string::npos);
      CHECK(text.find(" <= resource \"astro_api_token\" \"x\" {\n") != std::string::npos);
      CHECK(text.find("will be created") == std::string::npos);
      CHECK(text.substr(text.size() - std::string(c.summary).size()) == c.summary);

      auto entry = parse(render_json(plan))->getArray("resource_changes")->getObject(0);
      CHECK(actions_of(entry) == c.json_actions);
      CHECK(entry->getObject("change")->getObject("importing")->getValue<std::string>("id") ==
            "tok-x");
    }
  }
}

TEST_CASE("a requested rotation is shown with its reason", "[plan]") {
  Input input = make_input();
  add_managed(input, "a");
  input.rotations = {"astro_api_token.a"};
  Plan plan = compute(input);
  std::string text = render_text(plan);
  CHECK(text.find("  # astro_api_token.a will be rotated\n"
                  "  # (because its rotation was requested with --rotate)\n  R resource") !=
        std::string::npos);
  CHECK(text.find("Plan: 0 to add, 0 to change, 0 to destroy, 1 to rotate.\n") !=
        std::string::npos);
  auto change = parse(render_json(plan))->getArray("resource_changes")->getObject(0);
  CHECK(actions_of(change) == "update");
  CHECK(change->getObject("change")->getValue<std::string>("rotate_reason") == "requested");
}

TEST_CASE("rendering never shows a secret or a fingerprint", "[plan]") {
  Input input = all_actions_input();
  for (auto& [id, token] : input.observed.tokens) token.token = SecretValue("s3cr3t-" + id);
  Plan plan = compute(input);
  REQUIRE_FALSE(plan.drift.empty());
  for (const std::string& out :
       {render_text(plan), render_text(plan, RenderOptions::for_terminal(true)),
        render_json(plan)}) {
    CHECK(out.find("s3cr3t") == std::string::npos);
    CHECK(out.find(std::string(64, 'a')) == std::string::npos);
  }
}

TEST_CASE("JSON rendering follows Terraform's plan shape and parses back", "[plan]") {
  Plan plan = compute(all_actions_input());
  auto root = parse(render_json(plan));
  CHECK(root->getValue<std::string>("format_version") == "1.2");
  CHECK(root->getValue<std::string>("terraform_version") == kVersion);
  CHECK(root->getValue<std::string>("astro_tokend_version") == kVersion);
  CHECK(root->getValue<bool>("applyable"));
  CHECK(root->getValue<bool>("complete"));
  CHECK(root->getValue<std::string>("lineage") == plan.lineage);
  CHECK(root->getValue<int64_t>("serial") == 7);
  CHECK_FALSE(root->getValue<bool>("errored"));

  auto changes = root->getArray("resource_changes");
  REQUIRE(changes->size() == plan.changes.size());
  std::map<std::string, Poco::JSON::Object::Ptr> by_name;
  for (size_t i = 0; i < changes->size(); ++i) {
    auto entry = changes->getObject(i);
    CHECK(entry->getValue<std::string>("mode") == "managed");
    CHECK(entry->getValue<std::string>("type") == "astro_api_token");
    CHECK(entry->getValue<std::string>("provider_name") == kProviderName);
    CHECK(entry->getValue<std::string>("address") ==
          "astro_api_token." + entry->getValue<std::string>("name"));
    by_name[entry->getValue<std::string>("name")] = entry;
  }
  CHECK(actions_of(by_name["a_create"]) == "create");
  CHECK(actions_of(by_name["b_import"]) == "update");  // it also renames
  CHECK(by_name["b_import"]
            ->getObject("change")
            ->getObject("importing")
            ->getValue<std::string>("id") == "clm8q7f6q000008lcgyougpsk");
  CHECK(actions_of(by_name["c_update"]) == "update");
  CHECK_FALSE(by_name["c_update"]->getObject("change")->has("rotate"));
  CHECK(actions_of(by_name["d_replace"]) == "delete,create");
  CHECK(by_name["d_replace"]->getValue<std::string>("action_reason") ==
        "replace_because_cannot_update");
  CHECK(actions_of(by_name["e_replace_cbd"]) == "create,delete");
  CHECK(actions_of(by_name["f_delete"]) == "delete");
  CHECK(by_name["f_delete"]->getValue<std::string>("action_reason") ==
        "delete_because_no_resource_config");
  CHECK(actions_of(by_name["g_rotate"]) == "update");
  CHECK(by_name["g_rotate"]->getObject("change")->getValue<bool>("rotate"));
  CHECK(by_name["g_rotate"]->getObject("change")->getValue<std::string>("rotate_reason") ==
        "expired");
  CHECK(by_name["h_update_rotate"]->getObject("change")->getValue<bool>("rotate"));
  CHECK(actions_of(by_name["j_forget"]) == "forget");
  CHECK(by_name.count("l_noop") == 0);

  auto create = by_name["a_create"]->getObject("change");
  CHECK(create->isNull("before"));
  CHECK(create->getObject("after_unknown")->getValue<bool>("id"));
  CHECK(create->getObject("after_unknown")->getValue<bool>("token"));
  CHECK(create->getObject("after_sensitive")->getValue<bool>("token"));
  CHECK_FALSE(create->getValue<bool>("before_sensitive"));
  CHECK_FALSE(create->getObject("after")->has("token"));
  CHECK(create->getObject("after")->getArray("roles")->size() == 2);

  auto update = by_name["c_update"]->getObject("change");
  CHECK(update->getObject("before")->getValue<std::string>("name") == "c_update token");
  CHECK(update->getObject("after")->getValue<std::string>("name") == "c_update renamed");
  CHECK_FALSE(update->getObject("before")->has("token"));
  CHECK_FALSE(update->getObject("after_unknown")->has("token"));

  auto deleted = by_name["f_delete"]->getObject("change");
  CHECK(deleted->isNull("after"));
  CHECK(deleted->getObject("before_sensitive")->getValue<bool>("token"));

  auto drift = root->getArray("resource_drift");
  REQUIRE(drift->size() == 3);
  CHECK(drift->getObject(0)->getValue<std::string>("name") == "i_recreate");
  CHECK(actions_of(drift->getObject(0)) == "delete");
  CHECK(actions_of(drift->getObject(2)) == "update");
  CHECK(drift->getObject(2)->getObject("change")->getObject("after")->getValue<std::string>(
            "name") == "renamed outside");
}

TEST_CASE("JSON rendering: planned_values and prior_state in Terraform's values shape", "[plan]") {
  Plan plan = compute(all_actions_input());
  auto root = parse(render_json(plan));
  auto planned = resources_of(root->getObject("planned_values"));
  auto prior_state = root->getObject("prior_state");
  CHECK(prior_state->getValue<std::string>("format_version") == "1.0");
  CHECK(prior_state->getValue<std::string>("terraform_version") == kVersion);
  auto prior = resources_of(prior_state->getObject("values"));

  auto names = [](const std::map<std::string, Poco::JSON::Object::Ptr>& by_name) {
    std::string out;
    for (const auto& entry : by_name) out += (out.empty() ? "" : " ") + entry.first;
    return out;
  };
  // After the plan: everything but what is deleted or forgotten.
  CHECK(names(planned) ==
        "a_create b_import c_update d_replace e_replace_cbd g_rotate h_update_rotate i_recreate "
        "k_drift l_noop");
  // Before it, as refreshed: what state holds and the API still has.
  CHECK(names(prior) ==
        "c_update d_replace e_replace_cbd f_delete g_rotate h_update_rotate k_drift l_noop");

  for (const auto& side : {planned, prior}) {
    for (const auto& [name, entry] : side) {
      INFO(name);
      CHECK(entry->getValue<std::string>("address") == "astro_api_token." + name);
      CHECK(entry->getValue<std::string>("mode") == "managed");
      CHECK(entry->getValue<std::string>("type") == "astro_api_token");
      CHECK(entry->getValue<std::string>("provider_name") == kProviderName);
      CHECK(entry->getValue<int>("schema_version") == 0);
      CHECK_FALSE(entry->getObject("values")->has("token"));
      CHECK(entry->getObject("sensitive_values")->getValue<bool>("token"));
    }
  }
  // Unknown values are left out; known ones are the plan's.
  CHECK_FALSE(planned["a_create"]->getObject("values")->has("id"));
  CHECK(planned["a_create"]->getObject("values")->getValue<std::string>("name") ==
        "a_create token");
  CHECK(planned["c_update"]->getObject("values")->getValue<std::string>("name") ==
        "c_update renamed");
  CHECK(prior["c_update"]->getObject("values")->getValue<std::string>("name") == "c_update token");
  CHECK(planned["l_noop"]->getObject("values")->getValue<std::string>("id") == "tok-l_noop");
  CHECK(prior["l_noop"]->getObject("values")->getValue<std::string>("id") == "tok-l_noop");
}

TEST_CASE("JSON rendering: applyable and complete", "[plan]") {
  SECTION("no changes: complete, nothing to apply") {
    Input input = make_input();
    add_managed(input, "a");
    auto root = parse(render_json(compute(input)));
    CHECK_FALSE(root->getValue<bool>("applyable"));
    CHECK(root->getValue<bool>("complete"));
    CHECK_FALSE(root->getValue<bool>("errored"));
    CHECK(resources_of(root->getObject("planned_values")).count("a") == 1);
  }
  SECTION("a targeted plan is not complete") {
    Input input = all_actions_input();
    input.targets = {"astro_api_token.a_create"};
    auto root = parse(render_json(compute(input)));
    CHECK(root->getValue<bool>("applyable"));
    CHECK_FALSE(root->getValue<bool>("complete"));
  }
}

TEST_CASE("JSON rendering reports errors", "[plan]") {
  Input input = make_input();
  input.desired.push_back(make_spec("b"));
  input.desired.back().import_id = "nope";
  auto root = parse(render_json(compute(input)));
  CHECK(root->getValue<bool>("errored"));
  REQUIRE(root->getArray("errors")->size() == 1);
  CHECK(root->getArray("errors")->getElement<std::string>(0) ==
        "import_id \"nope\" for astro_api_token.b does not exist in the organization");
  CHECK(root->getArray("resource_changes")->size() == 0);
  CHECK_FALSE(root->getValue<bool>("applyable"));
  CHECK_FALSE(root->getValue<bool>("complete"));
  auto diagnostics = root->getArray("diagnostics");
  REQUIRE(diagnostics->size() == 1);
  auto diagnostic = diagnostics->getObject(0);
  CHECK(diagnostic->getValue<std::string>("severity") == "error");
  CHECK(diagnostic->getValue<std::string>("summary") ==
        "import_id \"nope\" for astro_api_token.b does not exist in the organization");
  CHECK_FALSE(diagnostic->has("range"));
}

TEST_CASE("JSON failure document: Terraform's diagnostics with their ranges", "[plan]") {
  spec::Diagnostic at_line{{"tokens.d/a.toml", 3, 9}, "name must not be empty", "name = \"\""};
  spec::Diagnostic whole_file{{"tokens.d/b.toml", 0, 0}, "cannot read the file", ""};
  Error api{ErrorKind::Unavailable, "ListApiTokens: HTTP 503", "req-1", 503};
  auto root = parse(render_json_failure(
      {json_diagnostic(at_line), json_diagnostic(whole_file), json_diagnostic(api)}));
  CHECK(root->getValue<std::string>("format_version") == "1.2");
  CHECK(root->getValue<std::string>("terraform_version") == kVersion);
  CHECK_FALSE(root->getValue<bool>("applyable"));
  CHECK_FALSE(root->getValue<bool>("complete"));
  CHECK(root->getValue<bool>("errored"));
  CHECK_FALSE(root->has("resource_changes"));
  auto diagnostics = root->getArray("diagnostics");
  REQUIRE(diagnostics->size() == 3);

  auto first = diagnostics->getObject(0);
  CHECK(first->getValue<std::string>("severity") == "error");
  CHECK(first->getValue<std::string>("summary") == "name must not be empty");
  CHECK(first->getValue<std::string>("detail").empty());
  auto range = first->getObject("range");
  CHECK(range->getValue<std::string>("filename") == "tokens.d/a.toml");
  CHECK(range->getObject("start")->getValue<int>("line") == 3);
  CHECK(range->getObject("start")->getValue<int>("column") == 9);
  CHECK(range->getObject("end")->getValue<int>("line") == 3);
  CHECK(range->getObject("end")->getValue<int>("column") == 9);

  auto second = diagnostics->getObject(1);
  CHECK_FALSE(second->has("range"));
  CHECK(second->getValue<std::string>("summary") == "cannot read the file");
  CHECK(second->getValue<std::string>("detail") == "In tokens.d/b.toml.");

  auto third = diagnostics->getObject(2);
  CHECK_FALSE(third->has("range"));
  CHECK(third->getValue<std::string>("summary") ==
        "ListApiTokens: HTTP 503 (HTTP 503, requestId req-1)");
}

TEST_CASE("rotation reasons read as sentences", "[plan]") {
  Change change;
  change.key = "a";
  change.action = Action::Rotate;
  change.rotate = true;
  change.before = make_row("a");
  change.after = make_spec("a");
  change.after->rotate_before_expiry_days = 7;
  change.after->rotate_every_days = 5;
  auto reason = [&](RotateReason r) {
    change.rotate_reason = r;
    return describe_rotation(change);
  };
  CHECK(reason(RotateReason::ValueLost) == "its current value was lost before it was delivered");
  CHECK(reason(RotateReason::Requested) == "its rotation was requested with --rotate");
  CHECK(reason(RotateReason::Expired) == "it expired at 2026-05-20T12:00:00Z");
  CHECK(reason(RotateReason::SinkMissing) ==
        "its sink file \"/var/lib/astro-tokend/tokens/a.token\" is missing");
  CHECK(reason(RotateReason::SinkMismatch) ==
        "its sink file \"/var/lib/astro-tokend/tokens/a.token\" does not hold the delivered value");
  CHECK(reason(RotateReason::BeforeExpiry) ==
        "it expires at 2026-05-20T12:00:00Z, within rotate_before_expiry_days = 7");
  CHECK(reason(RotateReason::Cadence) ==
        "its value was issued at 2026-02-19T12:00:00Z, at least rotate_every_days = 5 ago");
  change.after->sink = "/run/a.token";
  CHECK(reason(RotateReason::SinkMismatch) ==
        "its sink moved from \"/var/lib/astro-tokend/tokens/a.token\" to \"/run/a.token\"");
  change.rotate = false;
  CHECK(describe_rotation(change).empty());
}
