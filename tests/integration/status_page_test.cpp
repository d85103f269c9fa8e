// The daemon's status page in a real browser: headless Chromium (Debian's
// chromium, installed by scripts/setup.sh) loads `/` from a running daemon
// against astro-api-sim; the rendered DOM holds every token, and a token
// whose name is markup shows as text, never as an element. A screenshot is
// kept under the build directory (test-artifacts/status-page.png).
#include <catch2/catch.hpp>

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <filesystem>
#include <string>
#include <vector>

#include "daemon/harness.h"

using namespace tokend::testing;
using std::chrono::seconds;

namespace {

const std::string kChromium = "/usr/bin/chromium";
const std::string kHostileName = "<img src=x onerror=alert(1)>";

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Chromium, headless, with the flags that work on a machine without network
// or GPU, a profile of its own, and `args` (the URL last).
ProcessResult chromium(const TempDir& profile, const std::vector<std::string>& args) {
  INFO("Chromium at " << kChromium << " (run scripts/setup.sh to install it)");
  REQUIRE(std::filesystem::exists(kChromium));
  std::vector<std::string> argv = {kChromium,
                                   "--headless",
                                   "--no-sandbox",
                                   "--disable-gpu",
                                   "--disable-quic",
                                   "--no-first-run",
                                   "--disable-background-networking",
                                   "--disable-component-update",
                                   "--disable-sync",
                                   "--user-data-dir=" + profile.path()};
  argv.insert(argv.end(), args.begin(), args.end());
  RunOptions options;
  options.timeout = std::chrono::seconds(120);
  return run_process(argv, options);
}

}  // namespace

TEST_CASE("the status page shows every token in headless Chromium - markup in a name stays text",
          "[integration][daemon][status]") {
  SimProcess sim;
  DaemonUnderTest daemon(sim);
  daemon.write_spec("ci.toml", workspace_token_toml("ci", "ci deployer") +
                                   "expiry_period_in_days = 30\nrotate_before_expiry_days = 7\n");
  daemon.write_spec("hostile.toml", workspace_token_toml("hostile", kHostileName));
  daemon.start();
  REQUIRE(
      eventually([&] { return daemon.metric("astro_tokend_managed_tokens") == 2.0; }, seconds(15)));
  REQUIRE(eventually([&] { return contains(daemon.get("/").body, "astro_api_token.hostile"); },
                     seconds(10)));

  // The page as served: self-contained, no script, everything escaped.
  HttpResponse page = daemon.get("/");
  REQUIRE(page.status == 200);
  CHECK(page.header("Content-Type") == "text/html; charset=utf-8");
  CHECK(contains(page.header("Content-Security-Policy").value_or(""), "default-src 'none'"));
  CHECK(contains(page.body, "&lt;img src=x onerror=alert(1)&gt;"));
  CHECK_FALSE(contains(page.body, "<img"));
  CHECK_FALSE(contains(page.body, "<script"));
  CHECK_FALSE(contains(page.body, " src=\""));
  CHECK_FALSE(contains(page.body, "http://"));
  CHECK_FALSE(contains(page.body, "https://"));

  // The same data as JSON.
  HttpResponse json = daemon.get("/status.json");
  REQUIRE(json.status == 200);
  CHECK(json.header("Content-Type") == "application/json");
  Poco::JSON::Parser parser;
  auto status = parser.parse(json.body).extract<Poco::JSON::Object::Ptr>();
  auto tokens = status->getArray("tokens");
  REQUIRE(tokens->size() == 2);
  CHECK(tokens->getObject(0)->getValue<std::string>("address") == "astro_api_token.ci");
  // 30 days from its creation: 29 whole days left, or 30 within the same second.
  const int days_left = tokens->getObject(0)->getValue<int>("days_left");
  CHECK((days_left == 29 || days_left == 30));
  CHECK_FALSE(tokens->getObject(0)->isNull("next_rotation_at"));
  CHECK(tokens->getObject(1)->getValue<std::string>("name") == kHostileName);
  CHECK(status->getObject("last_reconcile")->getValue<std::string>("result") == "success");
  CHECK(status->getObject("daemon")->getValue<std::string>("state") == "running");
  CHECK(status->getArray("history")->size() >= 1);

  // What a browser makes of it.
  TempDir profile;
  ProcessResult dom = chromium(profile, {"--dump-dom", daemon.origin() + "/"});
  INFO(dom.err);
  REQUIRE(dom.exit_code == 0);
  for (const std::string& text :
       {std::string("astro_api_token.ci"), std::string("astro_api_token.hostile"),
        std::string("ci deployer"), std::string("Last reconcile"), std::string("Recent history"),
        std::string(" days left)")}) {
    INFO(text);
    CHECK(contains(dom.out, text));
  }
  CHECK(contains(dom.out, "&lt;img src=x onerror=alert(1)&gt;"));  // a text node
  CHECK_FALSE(contains(dom.out, "<img"));                          // no such element
  CHECK_FALSE(contains(dom.out, "<script"));

  // A screenshot, kept as an artifact of the test run.
  const std::string artifacts = std::string(TOKEND_BUILD_DIR) + "/test-artifacts";
  std::filesystem::create_directories(artifacts);
  const std::string shot = artifacts + "/status-page.png";
  std::filesystem::remove(shot);
  ProcessResult screenshot = chromium(profile, {"--screenshot=" + shot, "--window-size=1400,1200",
                                                "--hide-scrollbars", daemon.origin() + "/"});
  INFO(screenshot.err);
  CHECK(screenshot.exit_code == 0);
  REQUIRE(std::filesystem::exists(shot));
  CHECK(read_file(shot).rfind("\x89PNG\r\n\x1a\n", 0) == 0);
  CHECK(std::filesystem::file_size(shot) > 10000);
}
