// The systemd unit, checked by systemd itself: `systemd-analyze verify`
// against a hermetic root holding this build installed with --prefix /usr,
// and `systemd-analyze security --offline=yes` for the hardening score; and
// the installed example units that consume a token (systemd/examples/).
#include <catch2/catch.hpp>

#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "support/process.h"

using tokend::testing::run_process;
using tokend::testing::TempDir;

namespace fs = std::filesystem;

namespace {

const std::string kUnit = std::string(TOKEND_SOURCE_DIR) + "/systemd/astro-tokend.service";

// `cmake --install` of this build into `root` with --prefix /usr, plus what
// the unit names from the base system (/bin/kill, systemd's own units), in
// Debian's merged-/usr layout.
void install_into(const std::string& root) {
  tokend::testing::RunOptions options;
  options.env["DESTDIR"] = root;
  options.timeout = std::chrono::seconds(120);
  auto installed = run_process(
      {TOKEND_CMAKE_COMMAND, "--install", TOKEND_BUILD_DIR, "--prefix", "/usr"}, options);
  INFO(installed.out << installed.err);
  REQUIRE(installed.exit_code == 0);
  fs::copy("/lib/systemd/system", root + "/usr/lib/systemd/system",
           fs::copy_options::recursive | fs::copy_options::skip_existing |
               fs::copy_options::copy_symlinks);
  fs::copy_file("/usr/bin/kill", root + "/usr/bin/kill");
  fs::create_directory_symlink("usr/bin", root + "/bin");
}

}  // namespace

TEST_CASE("cmake --install puts the binary - the unit and the config where the unit expects them",
          "[systemd]") {
  TempDir root;
  install_into(root.path());
  CHECK(fs::is_regular_file(root.file("usr/bin/astro-tokend")));
  CHECK(fs::is_regular_file(root.file("usr/lib/systemd/system/astro-tokend.service")));
  CHECK(fs::is_regular_file(root.file("etc/astro-tokend/astro-tokend.toml")));
  CHECK(fs::is_directory(root.file("etc/astro-tokend/tokens.d")));
  std::string unit =
      tokend::testing::read_file(root.file("usr/lib/systemd/system/astro-tokend.service"));
  CHECK(unit.find("ExecStart=/usr/bin/astro-tokend run -c /etc/astro-tokend/astro-tokend.toml\n") !=
        std::string::npos);

  // An operator's config survives a second install.
  tokend::testing::write_file(root.file("etc/astro-tokend/astro-tokend.toml"), "# edited\n");
  {
    tokend::testing::RunOptions options;
    options.env["DESTDIR"] = root.path();
    auto again = run_process(
        {TOKEND_CMAKE_COMMAND, "--install", TOKEND_BUILD_DIR, "--prefix", "/usr"}, options);
    REQUIRE(again.exit_code == 0);
    CHECK(tokend::testing::read_file(root.file("etc/astro-tokend/astro-tokend.toml")) ==
          "# edited\n");
  }
}

TEST_CASE("systemd-analyze verify accepts the installed unit", "[systemd]") {
  TempDir root;
  install_into(root.path());
  auto verified = run_process(
      {"/usr/bin/systemd-analyze", "verify", "--root=" + root.path(), "astro-tokend.service"});
  INFO(verified.out << verified.err);
  CHECK(verified.exit_code == 0);
  CHECK(verified.err.find("astro-tokend") == std::string::npos);

  // The check has teeth: without the installed binary it fails, naming it.
  fs::remove(root.file("usr/bin/astro-tokend"));
  auto missing = run_process(
      {"/usr/bin/systemd-analyze", "verify", "--root=" + root.path(), "astro-tokend.service"});
  CHECK(missing.exit_code != 0);
  CHECK(missing.err.find("/usr/bin/astro-tokend") != std::string::npos);
}

TEST_CASE("the unit's hardening scores at most 1.5", "[systemd]") {
  auto security = run_process({"/usr/bin/systemd-analyze", "security", "--offline=yes",
                               "--threshold=15", "--no-pager", kUnit});
  INFO(security.out << security.err);
  CHECK(security.exit_code == 0);
  std::smatch match;
  std::string text = security.out + security.err;
  REQUIRE(std::regex_search(
      text, match, std::regex(R"(Overall exposure level for astro-tokend\.service: ([0-9.]+))")));
  CHECK(std::stod(match[1].str()) <= 1.5);
}

TEST_CASE("systemd-analyze verify accepts the example units that consume a token", "[systemd]") {
  TempDir root;
  install_into(root.path());
  const std::string examples = root.file("usr/share/doc/astro-tokend/examples/systemd");
  const std::string units = root.file("etc/systemd/system");
  fs::create_directories(units + "/astro-tokend.service.d");
  for (const char* unit : {"astro-token-consumer.service", "astro-token-consumer-restart.path",
                           "astro-token-consumer-restart.service"})
    fs::copy_file(examples + "/" + unit, units + "/" + unit);
  fs::copy_file(examples + "/astro-tokend-sink-group.conf",
                units + "/astro-tokend.service.d/sink-group.conf");
  // The programs the examples name: the consumer (a stand-in) and systemctl.
  fs::create_directories(root.file("usr/local/bin"));
  tokend::testing::write_file(root.file("usr/local/bin/astro-token-consumer"), "#!/bin/sh\n");
  fs::permissions(root.file("usr/local/bin/astro-token-consumer"), fs::perms::owner_all);
  fs::copy_file("/usr/bin/systemctl", root.file("usr/bin/systemctl"),
                fs::copy_options::skip_existing);

  const std::vector<std::string> verify{"/usr/bin/systemd-analyze",
                                        "verify",
                                        "--root=" + root.path(),
                                        "astro-token-consumer.service",
                                        "astro-token-consumer-restart.path",
                                        "astro-token-consumer-restart.service",
                                        "astro-tokend.service"};
  auto verified = run_process(verify);
  INFO(verified.out << verified.err);
  CHECK(verified.exit_code == 0);
  CHECK(verified.err.find("astro-token") == std::string::npos);

  // The drop-in is read with the unit: a typo in it is reported.
  tokend::testing::write_file(units + "/astro-tokend.service.d/sink-group.conf",
                              "[Service]\nSupplementaryGroupz=airflow\n");
  auto typo = run_process(verify);
  CHECK(typo.err.find("SupplementaryGroupz") != std::string::npos);

  // And the consumer's program must exist.
  fs::remove(root.file("usr/local/bin/astro-token-consumer"));
  auto missing = run_process(verify);
  CHECK(missing.exit_code != 0);
  CHECK(missing.err.find("/usr/local/bin/astro-token-consumer") != std::string::npos);
}
