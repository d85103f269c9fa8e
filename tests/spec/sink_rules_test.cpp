// SinkRules::inspect() finds what problem(), resolve() and identity() find,
// sink by sink, though it looks each directory up only once.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "spec/sink_rules.h"
#include "support/process.h"

namespace fs = std::filesystem;
using tokend::spec::Config;
using tokend::spec::SinkRules;
using tokend::testing::TempDir;
using tokend::testing::write_file;

TEST_CASE("inspect() agrees with problem(), resolve() and identity()", "[spec][sink]") {
  TempDir root;
  const std::string r = fs::canonical(root.path()).string();
  fs::create_directories(r + "/tokens/sub");
  fs::create_directories(r + "/specs");
  write_file(r + "/tokens/existing.token", "value");
  write_file(r + "/tokens/sub/deep.token", "value");
  write_file(r + "/state.db", "");
  write_file(r + "/specs/a.toml", "");
  write_file(r + "/astro-tokend.toml", "");
  fs::create_directory_symlink(r + "/tokens", r + "/linked");
  fs::create_symlink(r + "/tokens/existing.token", r + "/tokens/link.token");
  fs::create_symlink(r + "/nowhere", r + "/tokens/dangling.token");
  fs::create_symlink(r + "/state.db", r + "/tokens/state-link.token");
  fs::create_hard_link(r + "/state.db", r + "/tokens/state-hard.token");
  fs::create_hard_link(r + "/tokens/existing.token", r + "/tokens/hard.token");

  Config config;
  config.path = r + "/astro-tokend.toml";
  config.state_path = r + "/state.db";
  config.spec_paths = {r + "/specs"};
  const std::vector<std::string> spec_files = {r + "/specs/a.toml"};
  SinkRules rules(config, spec_files);

  const std::vector<std::string> sinks = {
      r + "/tokens/existing.token",
      r + "/tokens/new.token",
      r + "/tokens/sub/deep.token",
      r + "/tokens/sub/new.token",
      r + "/tokens/missing/dir/new.token",
      r + "/linked/existing.token",
      r + "/linked/new.token",
      r + "/linked/sub/deep.token",
      r + "/tokens/link.token",
      r + "/tokens/dangling.token",
      r + "/tokens/state-link.token",
      r + "/tokens/state-hard.token",
      r + "/tokens/hard.token",
      r + "/tokens/sub",
      r + "/tokens",
      r + "/state.db",
      r + "/state.db-wal",
      r + "/astro-tokend.toml",
      r + "/specs/b.toml",
      r + "/specs/a.toml",
      r + "/specs",
      r + "/astro-tokend.toml/under.token",
      r + "/tokens/existing.token/under.token",
      r + "/tokens/" + std::string(300, 'n') + ".token",
      "/" + std::string(5000, 'p'),
      "/new.token",
  };
  // Twice: the second round answers from what the first learnt.
  for (int round = 0; round < 2; ++round) {
    for (const std::string& sink : sinks) {
      INFO("round " << round << ": " << sink.substr(0, 200));
      const SinkRules::Inspection inspected = rules.inspect(sink);
      CHECK(inspected.problem == rules.problem(sink));
      if (inspected.problem) continue;
      const std::string resolved = SinkRules::resolve(sink);
      CHECK(inspected.resolved == resolved);
      CHECK(inspected.identity == SinkRules::identity(resolved));
    }
  }
  // The sinks above cover both answers.
  CHECK(rules.problem(r + "/tokens/new.token") == std::nullopt);
  CHECK(rules.problem(r + "/tokens/state-hard.token") != std::nullopt);
  CHECK(rules.inspect(r + "/linked/existing.token").resolved == r + "/tokens/existing.token");
}
