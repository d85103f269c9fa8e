// scripts/check-layering.sh: the real tree keeps to scripts/layers.txt, and a
// tree with deliberate violations is refused, naming each offending line.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "support/process.h"

namespace fs = std::filesystem;
using tokend::testing::ProcessResult;
using tokend::testing::run_process;
using tokend::testing::TempDir;

namespace {

const std::string kScript = std::string(TOKEND_SOURCE_DIR) + "/scripts/check-layering.sh";

void write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

}  // namespace

TEST_CASE("the source tree keeps to the layering table", "[scripts][layering]") {
  ProcessResult result = run_process({kScript});
  INFO(result.err);
  CHECK(result.exit_code == 0);
  CHECK_THAT(result.out, Catch::Contains("keep to scripts/layers.txt"));
}

TEST_CASE("the layering check refuses an include the table does not allow", "[scripts][layering]") {
  TempDir dir;
  const fs::path src = fs::path(dir.path()) / "src";
  fs::copy(std::string(TOKEND_SOURCE_DIR) + "/src", src, fs::copy_options::recursive);

  SECTION("the differ naming the store") {
    write(src / "plan" / "bad.h", "#pragma once\n#include \"state/store.h\"\n");
    ProcessResult result = run_process({kScript, "--src", src.string()});
    CHECK(result.exit_code == 1);
    CHECK_THAT(result.err, Catch::Contains("plan/bad.h:2: plan may not include \"state/store.h\""));
  }
  SECTION("the daemon reaching into cli/") {
    write(src / "daemon" / "bad.cpp", "#include <string>\n#include \"cli/command.h\"\n");
    ProcessResult result = run_process({kScript, "--src", src.string()});
    CHECK(result.exit_code == 1);
    CHECK_THAT(result.err,
               Catch::Contains("daemon/bad.cpp:2: daemon may not include \"cli/command.h\""));
  }
  SECTION("a folder the table does not know") {
    write(src / "extras" / "x.cpp", "int x;\n");
    ProcessResult result = run_process({kScript, "--src", src.string()});
    CHECK(result.exit_code == 1);
    CHECK_THAT(result.err, Catch::Contains("extras is not listed in scripts/layers.txt"));
  }
  SECTION("values only: plan may name the record types") {
    write(src / "plan" / "ok.h", "#pragma once\n#include \"state/records.h\"\n");
    ProcessResult result = run_process({kScript, "--src", src.string()});
    INFO(result.err);
    CHECK(result.exit_code == 0);
  }
}
