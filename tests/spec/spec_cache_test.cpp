// The spec cache (spec/spec_cache.h): an unchanged file is taken from its
// entry, a changed one parsed again; corrupt, foreign, other-version and
// non-private entries are ignored and rebuilt; every diagnostic is exactly
// the one a load without the cache reports, also for problems across files
// and for sink checks that read the file system.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "spec/loader.h"
#include "spec/spec_cache.h"
#include "support/process.h"

namespace fs = std::filesystem;
using tokend::spec::CachedSpecFile;
using tokend::spec::Config;
using tokend::spec::Diagnostic;
using tokend::spec::TokenSpec;
using tokend::testing::read_file;
using tokend::testing::TempDir;
using tokend::testing::write_file;

namespace {

const std::string kOrganizationId = "clx42kkcm01fo01o06agtmshg";
const std::string kSpecsDir = std::string(TOKEND_SOURCE_DIR) + "/tests/data/specs";

std::string workspace_token(const std::string& key, const std::string& name,
                            const std::string& extra = "") {
  return "[api_token." + key + "]\nname = \"" + name +
         "\"\ntype = \"WORKSPACE\"\nrole = \"WORKSPACE_OWNER\"\nroles = [\n  { role = "
         "\"WORKSPACE_OWNER\", entity_id = \"clx42sxw501gl01o0gjenthnh\", entity_type = "
         "\"WORKSPACE\" },\n]\n" +
         extra + "\n";
}

// The config the fixtures of validate_test.cpp are checked with: state file,
// config and secrets dir in `root`, the cache in root/cache.
Config config_for(const TempDir& root, std::vector<std::string> spec_paths) {
  Config config;
  config.path = root.file("astro-tokend.toml");
  config.organization_id = kOrganizationId;
  config.spec_paths = std::move(spec_paths);
  config.state_path = root.file("state.db");
  config.secrets_dir = root.path();
  config.spec_cache_dir = root.file("cache");
  return config;
}

Config without_cache(Config config) {
  config.spec_cache_dir = "";
  return config;
}

// The entry files in `dir`, sorted.
std::vector<std::string> entries_in(const std::string& dir) {
  std::vector<std::string> entries;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
    if (it->path().extension() == ".spec") entries.push_back(it->path().string());
  std::sort(entries.begin(), entries.end());
  return entries;
}

std::string key_of(const std::string& entry) { return fs::path(entry).stem().string(); }

std::vector<std::string> formatted(const std::vector<Diagnostic>& diagnostics) {
  std::vector<std::string> lines;
  for (const Diagnostic& d : diagnostics) lines.push_back(d.format());
  return lines;
}

// The only entry of `dir`, decoded.
CachedSpecFile only_entry(const std::string& dir) {
  const std::vector<std::string> entries = entries_in(dir);
  REQUIRE(entries.size() == 1);
  auto decoded = tokend::spec::decode_cached_file(read_file(entries[0]), key_of(entries[0]),
                                                  tokend::spec::kSpecLoaderVersion);
  REQUIRE(decoded);
  return *decoded;
}

// Replaces the only entry of `dir` with `file`, written as `loader_version`
// writes it, mode 0600.
void rewrite_only_entry(const std::string& dir, CachedSpecFile file,
                        const std::string& loader_version = tokend::spec::kSpecLoaderVersion) {
  const std::string entry = entries_in(dir).at(0);
  write_file(entry, tokend::spec::encode_cached_file(file, key_of(entry), loader_version));
  fs::permissions(entry, fs::perms::owner_read | fs::perms::owner_write);
}

std::vector<TokenSpec> load_ok(const Config& config, std::string* hash = nullptr) {
  auto loaded = tokend::spec::load_specs(config, hash);
  INFO((loaded.diagnostics.empty() ? std::string() : loaded.diagnostics[0].format()));
  REQUIRE(loaded.ok());
  return *loaded.value;
}

// Loads `config` with its cache and without one; both must report the same
// diagnostics, in the same order, and there must be some.
std::vector<std::string> same_diagnostics_with_and_without_cache(const Config& config) {
  const auto cached = tokend::spec::load_specs(config);
  const auto uncached = tokend::spec::load_specs(without_cache(config));
  const std::vector<std::string> with_cache = formatted(cached.diagnostics);
  const std::vector<std::string> plain = formatted(uncached.diagnostics);
  CHECK_FALSE(cached.ok());
  CHECK_FALSE(plain.empty());
  CHECK(with_cache == plain);
  return plain;
}

bool any_contains(const std::vector<std::string>& lines, const std::string& part) {
  return std::any_of(lines.begin(), lines.end(),
                     [&](const std::string& line) { return line.find(part) != std::string::npos; });
}

}  // namespace

TEST_CASE("an unchanged spec file is taken from its cache entry, as parsed", "[spec][cache]") {
  TempDir root;
  const std::string file = root.file("a.toml");
  write_file(file, workspace_token("alpha", "first") +
                       workspace_token("beta", "second",
                                       "import_id = \"clxm46ged05b301neuucdqwox\""
                                       "\nsink = \"sub/beta.secret\""));
  const Config config = config_for(root, {file});
  std::string parsed_hash, cached_hash, plain_hash;
  const std::vector<TokenSpec> parsed = load_ok(config, &parsed_hash);
  REQUIRE(entries_in(root.file("cache")).size() == 1);
  const std::vector<TokenSpec> cached = load_ok(config, &cached_hash);
  const std::vector<TokenSpec> plain = load_ok(without_cache(config), &plain_hash);
  CHECK(cached == parsed);
  CHECK(cached == plain);
  CHECK(cached_hash == plain_hash);
  CHECK(parsed_hash == plain_hash);
  REQUIRE(cached.size() == 2);
  CHECK(cached[1].sink == root.file("sub/beta.secret"));
  CHECK(cached[1].pos.file == plain[1].pos.file);
  CHECK(cached[1].pos.line == 9);

  // What the loader takes is the entry, not the file: an entry altered (and
  // written as the cache writes one) is what the next load returns.
  CachedSpecFile entry = only_entry(root.file("cache"));
  REQUIRE(entry.tokens.size() == 2);
  entry.tokens[0].spec.attrs.name = "from the cache";
  rewrite_only_entry(root.file("cache"), entry);
  CHECK(load_ok(config)[0].attrs.name == "from the cache");
  CHECK(load_ok(without_cache(config))[0].attrs.name == "first");
}

TEST_CASE("a changed spec file is parsed again and its old entry removed", "[spec][cache]") {
  TempDir root;
  const std::string file = root.file("a.toml");
  write_file(file, workspace_token("alpha", "before"));
  const Config config = config_for(root, {file});
  CHECK(load_ok(config)[0].attrs.name == "before");
  const std::vector<std::string> before = entries_in(root.file("cache"));
  REQUIRE(before.size() == 1);

  write_file(file, workspace_token("alpha", "after"));
  CHECK(load_ok(config)[0].attrs.name == "after");
  const std::vector<std::string> after = entries_in(root.file("cache"));
  REQUIRE(after.size() == 1);
  CHECK(after != before);
  CHECK(load_ok(config)[0].attrs.name == "after");
}

TEST_CASE("an entry serves only the config it was validated with", "[spec][cache]") {
  TempDir root;
  const std::string file = root.file("a.toml");
  write_file(file, workspace_token("alpha", "a") +
                       "[api_token.org]\nname = \"org\"\ntype = \"ORGANIZATION\"\nrole = "
                       "\"ORGANIZATION_OWNER\"\nroles = [{ role = \"ORGANIZATION_OWNER\", "
                       "entity_id = \"" +
                       kOrganizationId + "\", entity_type = \"ORGANIZATION\" }]\n");
  Config config = config_for(root, {file});
  REQUIRE(load_ok(config)[0].sink == root.file("alpha.token"));

  SECTION("another [secrets] dir gives other default sinks") {
    fs::create_directory(root.file("elsewhere"));
    config.secrets_dir = root.file("elsewhere");
    CHECK(load_ok(config)[0].sink == root.file("elsewhere/alpha.token"));
  }
  SECTION("another organization makes the organization role wrong") {
    config.organization_id = "clotherorg0000000000000000";
    const auto lines = same_diagnostics_with_and_without_cache(config);
    CHECK(any_contains(lines, "must be the configured organization_id"));
  }
}

TEST_CASE("a corrupt or foreign cache entry is ignored and rebuilt", "[spec][cache]") {
  TempDir root;
  const std::string file = root.file("a.toml");
  write_file(file, workspace_token("alpha", "from the file"));
  const Config config = config_for(root, {file});
  load_ok(config);
  const std::string entry = entries_in(root.file("cache")).at(0);
  const std::string good = read_file(entry);
  CachedSpecFile altered = only_entry(root.file("cache"));
  altered.tokens[0].spec.attrs.name = "from the entry";
  const std::string altered_text =
      tokend::spec::encode_cached_file(altered, key_of(entry), tokend::spec::kSpecLoaderVersion);

  std::string bad;
  SECTION("empty") { bad = ""; }
  SECTION("truncated") { bad = altered_text.substr(0, altered_text.size() / 2); }
  SECTION("without its last byte") { bad = altered_text.substr(0, altered_text.size() - 1); }
  SECTION("a byte altered") {
    bad = altered_text;
    bad[bad.size() / 2] ^= 0x20;
  }
  SECTION("not an entry") { bad = std::string(4096, '\xff'); }
  SECTION("another key's entry") {
    bad = tokend::spec::encode_cached_file(altered, std::string(64, 'a'),
                                           tokend::spec::kSpecLoaderVersion);
  }
  SECTION("another loader version's entry") {
    bad = tokend::spec::encode_cached_file(altered, key_of(entry), "another loader version");
  }
  write_file(entry, bad);
  fs::permissions(entry, fs::perms::owner_read | fs::perms::owner_write);

  CHECK(load_ok(config)[0].attrs.name == "from the file");
  CHECK(read_file(entry) == good);  // rebuilt
  CHECK(load_ok(config)[0].attrs.name == "from the file");
}

TEST_CASE("another loader version names other entries and never reads this one's",
          "[spec][cache]") {
  TempDir root;
  const tokend::spec::SpecCache current(root.file("cache"));
  const tokend::spec::SpecCache other(root.file("cache"), "another loader version");
  const std::string key = current.key_for("config", "bytes");
  CHECK(other.key_for("config", "bytes") != key);
  CHECK(current.key_for("config", "other bytes") != key);
  CHECK(current.key_for("other config", "bytes") != key);

  CachedSpecFile file;
  file.tokens.emplace_back().spec.key = "alpha";
  REQUIRE(current.store(key, file));
  const tokend::spec::SpecCache reopened(root.file("cache"));
  const tokend::spec::SpecCache other_reopened(root.file("cache"), "another loader version");
  CHECK(reopened.find(key) == file);
  CHECK(other_reopened.find(key) == std::nullopt);
}

TEST_CASE("cache entries are 0600 in a 0700 directory, and used only while private",
          "[spec][cache]") {
  TempDir root;
  const std::string file = root.file("a.toml");
  write_file(file, workspace_token("alpha", "from the file"));
  const Config config = config_for(root, {file});
  const mode_t umask_before = ::umask(0);
  load_ok(config);
  ::umask(umask_before);
  const std::string dir = root.file("cache");
  const std::string entry = entries_in(dir).at(0);
  CHECK((fs::status(dir).permissions() & fs::perms::all) == fs::perms::owner_all);
  CHECK((fs::status(entry).permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write));
  CHECK(entries_in(dir).size() == 1);  // no temporary file left behind

  CachedSpecFile altered = only_entry(dir);
  altered.tokens[0].spec.attrs.name = "from the entry";
  rewrite_only_entry(dir, altered);
  REQUIRE(load_ok(config)[0].attrs.name == "from the entry");

  SECTION("an entry others may read is not used") {
    fs::permissions(entry, fs::perms::group_read, fs::perm_options::add);
    CHECK(load_ok(config)[0].attrs.name == "from the file");
  }
  SECTION("an entry that is a symlink is not used") {
    fs::rename(entry, root.file("elsewhere.spec"));
    fs::create_symlink(root.file("elsewhere.spec"), entry);
    CHECK(load_ok(config)[0].attrs.name == "from the file");
  }
  SECTION("a directory others may write is not used") {
    fs::permissions(dir, fs::perms::group_all | fs::perms::others_all, fs::perm_options::add);
    CHECK(load_ok(config)[0].attrs.name == "from the file");
    CHECK(read_file(entry) != "");  // left alone
    fs::permissions(dir, fs::perms::group_all | fs::perms::others_all, fs::perm_options::remove);
  }
}

TEST_CASE("a cache that cannot be made or written never fails a load", "[spec][cache]") {
  TempDir root;
  const std::string file = root.file("a.toml");
  write_file(file, workspace_token("alpha", "a"));
  Config config = config_for(root, {file});
  SECTION("its parent does not exist") {
    config.spec_cache_dir = root.file("missing/cache");
    CHECK(load_ok(config).size() == 1);
    CHECK_FALSE(fs::exists(root.file("missing")));
  }
  SECTION("its parent belongs to another user") {
    // Only root can give a directory away; others see the first section.
    fs::create_directory(root.file("theirs"));
    config.spec_cache_dir = root.file("theirs/cache");
    if (::geteuid() == 0) REQUIRE(::chown(root.file("theirs").c_str(), 65534, 65534) == 0);
    CHECK(load_ok(config).size() == 1);
    CHECK(fs::exists(root.file("theirs/cache")) == (::geteuid() != 0));
  }
  SECTION("it is a file") {
    write_file(root.file("cache"), "not a directory");
    CHECK(load_ok(config).size() == 1);
    CHECK(load_ok(config).size() == 1);
    CHECK(read_file(root.file("cache")) == "not a directory");
  }
}

TEST_CASE("the default cache lies beside the state file or the secrets dir", "[spec][cache]") {
  Config config;
  config.state_path = "/var/lib/astro-tokend/state.db";
  config.secrets_dir = "/srv/tokens/";
  CHECK(tokend::spec::spec_cache_dir(config) == "/var/lib/astro-tokend/spec-cache");
  config.state_path = ":memory:";
  CHECK(tokend::spec::spec_cache_dir(config) == "");
  config.state_backend = tokend::spec::StateBackend::Postgres;
  CHECK(tokend::spec::spec_cache_dir(config) == "/srv/spec-cache");
  config.spec_cache_dir = "/var/cache/astro-tokend";
  CHECK(tokend::spec::spec_cache_dir(config) == "/var/cache/astro-tokend");
  config.spec_cache_dir = "";
  CHECK(tokend::spec::spec_cache_dir(config) == "");
}

TEST_CASE("every invalid fixture reports the same diagnostics with cached files around it",
          "[spec][cache]") {
  std::vector<std::string> fixtures;
  for (const auto& entry : fs::directory_iterator(kSpecsDir + "/invalid")) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("config_", 0) == 0 || name.front() == '.') continue;
    if (entry.is_directory() || entry.path().extension() == ".toml")
      fixtures.push_back(entry.path().string());
  }
  std::sort(fixtures.begin(), fixtures.end());
  REQUIRE(fixtures.size() >= 30);
  for (const std::string& fixture : fixtures) {
    DYNAMIC_SECTION(fs::path(fixture).filename().string()) {
      // Two valid files, cached first on their own, loaded before and after
      // the fixture.
      TempDir root;
      write_file(root.file("astro-tokend.toml"), "");  // some fixtures' sinks name it
      const std::string early = root.file("early.toml");
      const std::string late = root.file("late.toml");
      write_file(early, workspace_token("cached_early", "early"));
      write_file(late, workspace_token("cached_late", "late"));
      load_ok(config_for(root, {early, late}));
      REQUIRE(entries_in(root.file("cache")).size() == 2);
      same_diagnostics_with_and_without_cache(config_for(root, {early, fixture, late}));
      CHECK(entries_in(root.file("cache")).size() == 2);
    }
  }
}

TEST_CASE("problems between a cached file and others are reported as without the cache",
          "[spec][cache]") {
  TempDir root;
  const std::string cached = root.file("cached.toml");
  const std::string other = root.file("other.toml");
  write_file(cached,
             workspace_token("alpha", "alpha",
                             "sink = \"alpha.secret\"\nimport_id = \"clxm46ged05b301neuucdqwox\""));
  load_ok(config_for(root, {cached}));
  REQUIRE(entries_in(root.file("cache")).size() == 1);

  std::vector<std::string> order = {cached, other};
  std::string expected;
  SECTION("a later file redefines its key") {
    write_file(other, workspace_token("alpha", "again", "sink = \"other.secret\""));
    expected = "duplicate token key \"alpha\"";
  }
  SECTION("an earlier file defines its key") {
    write_file(other, workspace_token("alpha", "first", "sink = \"other.secret\""));
    order = {other, cached};
    expected = "duplicate token key \"alpha\"";
  }
  SECTION("a later file takes its sink") {
    write_file(other, workspace_token("beta", "beta", "sink = \"./alpha.secret\""));
    expected = "is also the sink of astro_api_token.alpha";
  }
  SECTION("an earlier file takes its sink") {
    write_file(other, workspace_token("beta", "beta", "sink = \"alpha.secret\""));
    order = {other, cached};
    expected = "is also the sink of astro_api_token.beta";
  }
  SECTION("a later file imports the same token") {
    write_file(other, workspace_token("beta", "beta", "import_id = \"clxm46ged05b301neuucdqwox\""));
    expected = "is also imported by astro_api_token.alpha";
  }
  SECTION("its sink became a directory") {
    write_file(other, workspace_token("beta", "beta"));
    fs::create_directory(root.file("alpha.secret"));
    expected = "is a directory";
  }
  SECTION("its sink became a hard link of another token's sink") {
    write_file(other, workspace_token("beta", "beta", "sink = \"beta.secret\""));
    write_file(root.file("beta.secret"), "");
    fs::create_hard_link(root.file("beta.secret"), root.file("alpha.secret"));
    order = {other, cached};
    expected = "both name one file (hard links)";
  }
  SECTION("its sink became the state file") {
    write_file(other, workspace_token("beta", "beta"));
    Config config = config_for(root, order);
    config.state_path = root.file("alpha.secret");
    const auto lines = same_diagnostics_with_and_without_cache(config);
    CHECK(any_contains(lines, "is the state file"));
    return;
  }
  const auto lines = same_diagnostics_with_and_without_cache(config_for(root, order));
  INFO(lines.front());
  CHECK(any_contains(lines, expected));
  CHECK(lines.size() == 1);
}
