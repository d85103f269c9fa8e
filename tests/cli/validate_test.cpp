// `astro-tokend validate` against the fixtures in tests/data/specs/.
//
// Layout of tests/data/specs/:
//   invalid/NAME.toml         a token spec file, validated through a generated
//                             config whose [specs] paths names just that file
//   invalid/config_NAME.toml  a daemon config, passed as -c itself
//   invalid/NAME/             a spec directory (several files), validated like a file
//   valid/...                 the same three kinds, expected to pass; a file's
//                             first line says `# TOKENS: N`, a directory holds 0
// Every invalid fixture marks each line an error must point at with
// `# ERROR: <part of the message>`; " ... " in the part stands for anything.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "cli/fixture.h"
#include "support/process.h"

namespace fs = std::filesystem;
using tokend::testing::ProcessResult;
using tokend::testing::run_tokend;
using tokend::testing::TempDir;

namespace {

const std::string kSpecsDir = std::string(TOKEND_SOURCE_DIR) + "/tests/data/specs";
const std::string kOrganizationId = "clx42kkcm01fo01o06agtmshg";

struct Marker {
  std::string file;  // relative to kSpecsDir
  int line = 0;
  std::string expected;
};

struct Fixture {
  std::string name;  // relative to kSpecsDir
  std::string path;
  bool is_config = false;
  std::vector<Marker> markers;
};

struct ReportedError {
  std::string file;
  int line = 0;
  int column = 0;
  std::string message;
  std::string raw;
};

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  return lines;
}

std::vector<Marker> markers_in(const std::string& path) {
  std::vector<Marker> markers;
  const std::vector<std::string> lines = split_lines(tokend::testing::read_file(path));
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::size_t at = lines[i].find("# ERROR: ");
    if (at == std::string::npos) continue;
    std::string expected = lines[i].substr(at + 9);
    while (!expected.empty() && (expected.back() == ' ' || expected.back() == '\r'))
      expected.pop_back();
    markers.push_back(Marker{fs::path(path).lexically_relative(kSpecsDir).string(),
                             static_cast<int>(i) + 1, expected});
  }
  return markers;
}

std::vector<Fixture> fixtures_in(const std::string& kind) {
  std::vector<Fixture> fixtures;
  for (const auto& entry : fs::directory_iterator(kSpecsDir + "/" + kind)) {
    const std::string name = entry.path().filename().string();
    if (name.front() == '.') continue;
    Fixture fixture;
    fixture.name = kind + "/" + name;
    fixture.path = entry.path().string();
    if (entry.is_directory()) {
      std::vector<std::string> files;
      for (const auto& inner : fs::directory_iterator(entry.path()))
        files.push_back(inner.path().string());
      std::sort(files.begin(), files.end());
      for (const std::string& file : files) {
        std::vector<Marker> found = markers_in(file);
        fixture.markers.insert(fixture.markers.end(), found.begin(), found.end());
      }
    } else if (entry.path().extension() == ".toml") {
      fixture.is_config = name.rfind("config_", 0) == 0;
      fixture.markers = markers_in(fixture.path);
    } else {
      continue;
    }
    fixtures.push_back(std::move(fixture));
  }
  std::sort(fixtures.begin(), fixtures.end(),
            [](const Fixture& a, const Fixture& b) { return a.name < b.name; });
  return fixtures;
}

// A daemon config that validates the spec file or directory at `spec_path`.
// The config, the state file and the secrets dir share `dir`, so that a
// fixture's relative sink "state.db" names the state file.
std::string write_config_for(const TempDir& dir, const std::string& spec_path) {
  const std::string config = dir.file("astro-tokend.toml");
  tokend::testing::write_file(config, "[astro]\norganization_id = \"" + kOrganizationId +
                                          "\"\n[specs]\npaths = [\"" + spec_path +
                                          "\"]\n[state]\npath = \"" + dir.file("state.db") +
                                          "\"\n[secrets]\ndir = \"" + dir.path() + "\"\n");
  return config;
}

ProcessResult validate(const Fixture& fixture) {
  if (fixture.is_config) return run_tokend({"validate", "-c", fixture.path});
  TempDir dir;
  return run_tokend({"validate", "-c", write_config_for(dir, fixture.path)});
}

// The "FILE[:LINE[:COL]]: error: MESSAGE" lines of `err`.
std::vector<ReportedError> reported_errors(const std::string& err) {
  std::vector<ReportedError> errors;
  for (const std::string& line : split_lines(err)) {
    if (line.rfind("    ", 0) == 0) continue;  // an echoed source line or its caret
    const std::size_t at = line.find(": error: ");
    if (at == std::string::npos) continue;
    ReportedError error;
    error.raw = line;
    error.message = line.substr(at + 9);
    std::string where = line.substr(0, at);
    std::vector<int> numbers;
    for (int k = 0; k < 2; ++k) {
      const std::size_t colon = where.rfind(':');
      if (colon == std::string::npos) break;
      const std::string tail = where.substr(colon + 1);
      if (tail.empty() || !std::all_of(tail.begin(), tail.end(), ::isdigit)) break;
      numbers.insert(numbers.begin(), std::stoi(tail));
      where.erase(colon);
    }
    error.file = where;
    if (!numbers.empty()) error.line = numbers[0];
    if (numbers.size() > 1) error.column = numbers[1];
    errors.push_back(error);
  }
  return errors;
}

// `message` contains every " ... "-separated part of `expected`, in order.
bool message_matches(const std::string& message, const std::string& expected) {
  std::size_t from = 0;
  std::size_t start = 0;
  for (;;) {
    const std::size_t gap = expected.find(" ... ", start);
    const std::string part =
        expected.substr(start, gap == std::string::npos ? std::string::npos : gap - start);
    const std::size_t found = message.find(part, from);
    if (found == std::string::npos) return false;
    from = found + part.size();
    if (gap == std::string::npos) return true;
    start = gap + 5;
  }
}

bool names_file(const std::string& reported, const std::string& relative) {
  const std::string suffix = "specs/" + relative;
  return reported.size() >= suffix.size() &&
         reported.compare(reported.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void require_no_sanitizer_report(const ProcessResult& result) {
  CHECK(result.err.find("Sanitizer") == std::string::npos);
  CHECK(result.err.find("runtime error:") == std::string::npos);
}

int expected_token_count(const Fixture& fixture) {
  if (fs::is_directory(fixture.path)) return 0;
  const std::string first_line = split_lines(tokend::testing::read_file(fixture.path)).at(0);
  REQUIRE(first_line.rfind("# TOKENS: ", 0) == 0);
  return std::stoi(first_line.substr(10));
}

}  // namespace

TEST_CASE("validate rejects every invalid fixture at the marked line", "[spec][cli]") {
  const std::vector<Fixture> fixtures = fixtures_in("invalid");
  REQUIRE(fixtures.size() >= 30);
  for (const Fixture& fixture : fixtures) {
    DYNAMIC_SECTION(fixture.name) {
      REQUIRE_FALSE(fixture.markers.empty());
      const ProcessResult result = validate(fixture);
      INFO("stderr:\n" << result.err);
      require_no_sanitizer_report(result);
      CHECK(result.exit_code == 1);
      CHECK(result.out.empty());

      const std::vector<ReportedError> errors = reported_errors(result.err);
      CHECK(errors.size() == fixture.markers.size());
      for (const Marker& marker : fixture.markers) {
        INFO("expected at " << marker.file << ":" << marker.line << ": " << marker.expected);
        const bool found =
            std::any_of(errors.begin(), errors.end(), [&](const ReportedError& error) {
              return names_file(error.file, marker.file) && error.line == marker.line &&
                     error.column > 0 && message_matches(error.message, marker.expected);
            });
        CHECK(found);
      }
      const std::vector<std::string> lines = split_lines(result.err);
      REQUIRE_FALSE(lines.empty());
      CHECK(lines.back() == std::to_string(fixture.markers.size()) +
                                (fixture.markers.size() == 1 ? " error." : " errors."));
    }
  }
}

TEST_CASE("the duplicate key error names both files and lines", "[spec][cli]") {
  TempDir dir;
  const ProcessResult result =
      run_tokend({"validate", "-c", write_config_for(dir, kSpecsDir + "/invalid/duplicate_key")});
  const std::vector<ReportedError> errors = reported_errors(result.err);
  REQUIRE(errors.size() == 1);
  CHECK(names_file(errors[0].file, "invalid/duplicate_key/b.toml"));
  CHECK(errors[0].line == 8);
  CHECK(errors[0].message.find("invalid/duplicate_key/a.toml:2") != std::string::npos);
}

TEST_CASE("validate accepts every valid fixture and counts its tokens", "[spec][cli]") {
  const std::vector<Fixture> fixtures = fixtures_in("valid");
  REQUIRE(fixtures.size() >= 5);
  for (const Fixture& fixture : fixtures) {
    DYNAMIC_SECTION(fixture.name) {
      const ProcessResult result = validate(fixture);
      INFO("stderr:\n" << result.err);
      require_no_sanitizer_report(result);
      CHECK(result.exit_code == 0);
      CHECK(result.err.empty());
      const int count = expected_token_count(fixture);
      CHECK(result.out ==
            std::to_string(count) + (count == 1 ? " token valid.\n" : " tokens valid.\n"));
    }
  }
}

TEST_CASE("an empty spec directory is valid and holds no tokens", "[spec][cli]") {
  TempDir dir;
  fs::create_directory(dir.file("specs"));
  const ProcessResult result =
      run_tokend({"validate", "-c", write_config_for(dir, dir.file("specs"))});
  CHECK(result.exit_code == 0);
  CHECK(result.out == "0 tokens valid.\n");
}

TEST_CASE("the example config validates its five tokens", "[spec][cli]") {
  const std::string config = std::string(TOKEND_SOURCE_DIR) + "/config/astro-tokend.toml";
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"validate", "-c", config},
        std::vector<std::string>{"-c", config, "validate"}}) {
    const ProcessResult result = run_tokend(args);
    INFO(result.err);
    CHECK(result.exit_code == 0);
    CHECK(result.out == "5 tokens valid.\n");
    CHECK(result.err.empty());
  }
}

TEST_CASE("unreadable spec files are errors naming each file", "[spec][cli]") {
  TempDir dir;
  const std::string specs = dir.file("specs");
  fs::create_directory(specs);
  fs::create_symlink(dir.file("nowhere.toml"), specs + "/dangling.toml");
  fs::create_directory(specs + "/directory.toml");
  tokend::testing::write_file(specs + "/notes.txt", "not a spec: ignored\n");
  const ProcessResult result = run_tokend({"validate", "-c", write_config_for(dir, specs)});
  INFO(result.err);
  require_no_sanitizer_report(result);
  CHECK(result.exit_code == 1);
  const std::vector<ReportedError> errors = reported_errors(result.err);
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].file.ends_with("/specs/dangling.toml"));
  CHECK(errors[0].message == "cannot read file: No such file or directory");
  CHECK(errors[1].file.ends_with("/specs/directory.toml"));
  CHECK(errors[1].message == "cannot read file: Is a directory");
  CHECK(split_lines(result.err).back() == "2 errors.");
}

TEST_CASE("a missing config file is an error naming it", "[spec][cli]") {
  TempDir dir;
  const ProcessResult result = run_tokend({"validate", "-c", dir.file("absent.toml")});
  CHECK(result.exit_code == 1);
  CHECK(result.err == dir.file("absent.toml") +
                          ": error: cannot read file: No such file or directory\n1 error.\n");
}

TEST_CASE("validate prints the location - the source line and a caret", "[spec][cli]") {
  TempDir dir;
  tokend::testing::write_file(
      dir.file("ci.toml"),
      "[api_token.ci]\n"
      "name = \"ci\"\n"
      "type = \"WORKSPACE\"\n"
      "role = \"WORKSPACE_OWNER\"\n"
      "roles = [{ role = \"WORKSPACE_OWNER\", entity_id = \"ws\", entity_type = \"WORKSPACE\" }]\n"
      "expiry_period_in_days = 0\n"
      "\tdescripton = \"x\"\n");
  tokend::testing::RunOptions in_dir;
  in_dir.cwd = dir.path();
  const ProcessResult result =
      run_tokend({"validate", "-c", write_config_for(dir, dir.file("ci.toml"))}, in_dir);
  CHECK(result.exit_code == 1);
  CHECK(result.out.empty());
  CHECK(result.err ==
        "ci.toml:6:25: error: expiry_period_in_days must be between 1 and 3650, got 0\n"
        "    expiry_period_in_days = 0\n"
        "                            ^\n"
        "ci.toml:7:2: error: unknown key \"descripton\" in astro_api_token.ci (did you mean "
        "\"description\"?)\n"
        "    \tdescripton = \"x\"\n"
        "    \t^\n"
        "2 errors.\n");
}

TEST_CASE("validate --help describes the command", "[spec][cli]") {
  const ProcessResult result = run_tokend({"validate", "--help"});
  CHECK(result.exit_code == 0);
  CHECK(result.out.find("without network calls") != std::string::npos);
}

TEST_CASE("validate --remote reports each missing workspace and deployment at its token",
          "[spec][cli][remote]") {
  tokend::testing::CliWorkspace ws;
  ws.write_spec("a.toml", tokend::testing::workspace_spec("good", "good token"));
  ws.write_spec(
      "b.toml",
      "[api_token.lost]\n"
      "name = \"lost\"\n"
      "type = \"WORKSPACE\"\n"
      "role = \"WORKSPACE_OWNER\"\n"
      "roles = [\n"
      "  { role = \"WORKSPACE_OWNER\", entity_id = \"cnosuchworkspace0000000000\", entity_type = "
      "\"WORKSPACE\" },\n"
      "  { role = \"DEPLOYMENT_ADMIN\", entity_id = \"cnosuchdeployment000000000\", entity_type = "
      "\"DEPLOYMENT\" },\n"
      "  { role = \"DEPLOYMENT_ADMIN\", entity_id = \"" +
          std::string(tokend::testing::kSimDeploymentId) +
          "\", entity_type = \"DEPLOYMENT\" },\n"
          "]\n");
  tokend::testing::RunOptions in_dir;
  in_dir.cwd = ws.dir().path();

  const ProcessResult local = ws.tokend({"validate"}, in_dir);
  CHECK(local.exit_code == 0);
  CHECK(ws.control().requests().total == 0);

  const ProcessResult remote = ws.tokend({"validate", "--remote"}, in_dir);
  CHECK(remote.exit_code == 1);
  CHECK(remote.out.empty());
  CHECK(remote.err ==
        "specs/b.toml:1:1: error: astro_api_token.lost: deployment \"cnosuchdeployment000000000\" "
        "does "
        "not exist in organization clx42kkcm01fo01o06agtmshg\n"
        "specs/b.toml:1:1: error: astro_api_token.lost: workspace \"cnosuchworkspace0000000000\" "
        "does not "
        "exist in organization clx42kkcm01fo01o06agtmshg\n"
        "2 errors.\n");
  const auto stats = ws.control().requests();
  CHECK(stats.count("ListWorkspaces") == 1);
  CHECK(stats.count("ListDeployments") == 1);
  CHECK(stats.total == 2);
  CHECK_FALSE(std::filesystem::exists(ws.state_path()));

  std::filesystem::remove(ws.dir().file("specs/b.toml"));
  const ProcessResult fine = ws.tokend({"validate", "--remote"}, in_dir);
  CHECK(fine.exit_code == 0);
  CHECK(fine.out == "1 token valid.\n");
}

TEST_CASE("validate sees through symlinks and hard links to a sink's file", "[spec][cli]") {
  TempDir dir;
  const std::string specs = dir.file("specs");
  fs::create_directories(specs);
  fs::create_directories(dir.file("real"));
  fs::create_directories(dir.file("state"));
  fs::create_directory_symlink(dir.file("real"), dir.file("alias"));
  fs::create_directory_symlink(dir.file("state"), dir.file("state-link"));
  tokend::testing::write_file(dir.file("real/linked.token"), "old value\n");
  fs::create_hard_link(dir.file("real/linked.token"), dir.file("hard.token"));
  const auto token = [](const std::string& key, const std::string& sink) {
    return "[api_token." + key + "]\nname = \"" + key +
           "\"\ntype = \"WORKSPACE\"\nrole = \"WORKSPACE_OWNER\"\n"
           "roles = [{ role = \"WORKSPACE_OWNER\", entity_id = \"clx42sxw501gl01o0gjenthnh\", "
           "entity_type = \"WORKSPACE\" }]\nsink = \"" +
           sink + "\"\n\n";
  };
  const std::string spec_file = specs + "/a.toml";
  tokend::testing::write_file(
      spec_file, token("one", dir.file("real/x.token")) + token("two", dir.file("alias/x.token")) +
                     token("three", dir.file("real/linked.token")) +
                     token("four", dir.file("hard.token")) + token("spec", spec_file) +
                     token("spec_dir", specs) + token("new_spec", specs + "/new.toml") +
                     token("state", dir.file("state-link/state.db")) +
                     token("fine", specs + "/.hidden.toml"));
  const std::string config = dir.file("astro-tokend.toml");
  tokend::testing::write_file(config, "[astro]\norganization_id = \"" + kOrganizationId +
                                          "\"\n[specs]\npaths = [\"" + specs +
                                          "\"]\n[state]\npath = \"" + dir.file("state/state.db") +
                                          "\"\n[secrets]\ndir = \"" + dir.file("secrets") + "\"\n");

  const ProcessResult result = run_tokend({"validate", "-c", config});
  INFO(result.err);
  require_no_sanitizer_report(result);
  CHECK(result.exit_code == 1);
  const std::vector<ReportedError> errors = reported_errors(result.err);
  const std::vector<std::pair<int, std::string>> expected = {
      {13, "sink \"" + dir.file("alias/x.token") + "\" is also the sink of astro_api_token.one (" +
               spec_file + ":6): both are the file \"" + fs::canonical(dir.file("real")).string() +
               "/x.token\"; each token needs its own file"},
      {27, "sink \"" + dir.file("hard.token") + "\" is also the sink of astro_api_token.three (" +
               spec_file +
               ":20): both name one file "
               "(hard links); each token needs its own file"},
      {34, "sink \"" + spec_file + "\" is the spec file"},
      {41, "sink \"" + specs + "\" is the spec directory"},
      {48, "sink \"" + specs + "/new.toml\" is a .toml file in the spec directory"},
      {55, "sink \"" + dir.file("state-link/state.db") + "\" is the state file (it resolves to \"" +
               fs::canonical(dir.file("state")).string() + "/state.db\")"},
  };
  REQUIRE(errors.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO(errors[i].raw);
    CHECK(errors[i].line == expected[i].first);
    CHECK(errors[i].message.find(expected[i].second) != std::string::npos);
  }
  // Nothing was written: the hard-linked file keeps its content.
  CHECK(tokend::testing::read_file(dir.file("hard.token")) == "old value\n");
  CHECK_FALSE(fs::exists(dir.file("state/state.db")));
}
