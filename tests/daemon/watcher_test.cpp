#include <catch2/catch.hpp>

#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <vector>

#include "daemon/watcher.h"
#include "support/process.h"

using namespace tokend::daemon;
using tokend::testing::TempDir;
using tokend::testing::write_file;

namespace {

// Collects reported paths; waits (bounded) for the next one.
struct Reports {
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<std::string> paths;

  void add(const std::string& path) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      paths.push_back(path);
    }
    cv.notify_all();
  }
  // The first report at index >= `from`, or "" after 5 s.
  std::string wait_from(size_t from) {
    std::unique_lock<std::mutex> lock(mutex);
    cv.wait_for(lock, std::chrono::seconds(5), [&] { return paths.size() > from; });
    return paths.size() > from ? paths[from] : "";
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mutex);
    return paths.size();
  }
  // Waits (at most 5 s) until `path` is reported at index >= `from`. One
  // write may be reported more than once (a modify, then a close), so later
  // reports of an earlier path may come first.
  bool reported_from(size_t from, const std::string& path) {
    std::unique_lock<std::mutex> lock(mutex);
    return cv.wait_for(lock, std::chrono::seconds(5), [&] {
      for (size_t i = from; i < paths.size(); ++i) {
        if (paths[i] == path) return true;
      }
      return false;
    });
  }
  std::vector<std::string> all() {
    std::lock_guard<std::mutex> lock(mutex);
    return paths;
  }
};

}  // namespace

TEST_CASE("the watch plan covers spec directories - spec files and the config file",
          "[daemon][watcher]") {
  TempDir dir;
  std::filesystem::create_directories(dir.file("tokens.d"));
  write_file(dir.file("single.toml"), "");
  auto plan = watch_plan(dir.file("astro-tokend.toml"),
                         {dir.file("tokens.d"), dir.file("single.toml"), dir.file("missing.d")});
  REQUIRE(plan.size() == 2);
  const WatchedDirectory& top = plan.at(dir.path());
  CHECK_FALSE(top.any_toml);
  CHECK(top.names == std::set<std::string>{"astro-tokend.toml", "single.toml", "missing.d"});
  CHECK(plan.at(dir.file("tokens.d")).any_toml);

  WatchedDirectory specs{true, {}};
  CHECK(specs.matters("ci.toml"));
  CHECK_FALSE(specs.matters(".ci.toml.swp"));
  CHECK_FALSE(specs.matters(".hidden.toml"));
  CHECK_FALSE(specs.matters("ci.toml~"));
  CHECK_FALSE(specs.matters("notes.txt"));
  CHECK_FALSE(specs.matters(".toml"));
  CHECK(top.matters("astro-tokend.toml"));
  CHECK_FALSE(top.matters("other.toml"));
}

TEST_CASE("the watcher reports edits - editor renames and new files", "[daemon][watcher]") {
  TempDir dir;
  std::filesystem::create_directories(dir.file("tokens.d"));
  write_file(dir.file("astro-tokend.toml"), "# config\n");
  write_file(dir.file("tokens.d/a.toml"), "# a\n");
  Reports reports;
  auto watcher = ChangeWatcher::start([&](const std::string& path) { reports.add(path); });
  REQUIRE(watcher.ok());
  CHECK((*watcher)->watch(dir.file("astro-tokend.toml"), {dir.file("tokens.d")}).empty());

  // Irrelevant files first: the next report must still be the spec edit.
  write_file(dir.file("tokens.d/notes.txt"), "x\n");
  write_file(dir.file("tokens.d/.a.toml.swp"), "x\n");
  write_file(dir.file("unrelated.toml"), "x\n");
  write_file(dir.file("tokens.d/a.toml"), "# a, edited\n");
  CHECK(reports.wait_from(0) == dir.file("tokens.d/a.toml"));

  // An editor that writes a temporary file and renames it over the spec.
  size_t seen = reports.size();
  write_file(dir.file("tokens.d/.b.toml.tmp"), "# b\n");
  REQUIRE(std::rename(dir.file("tokens.d/.b.toml.tmp").c_str(),
                      dir.file("tokens.d/b.toml").c_str()) == 0);
  CHECK(reports.reported_from(seen, dir.file("tokens.d/b.toml")));

  // The config file, replaced by rename in its own directory.
  seen = reports.size();
  write_file(dir.file(".astro-tokend.toml.new"), "# new\n");
  REQUIRE(std::rename(dir.file(".astro-tokend.toml.new").c_str(),
                      dir.file("astro-tokend.toml").c_str()) == 0);
  CHECK(reports.reported_from(seen, dir.file("astro-tokend.toml")));

  // A removed spec counts as a change too.
  seen = reports.size();
  std::filesystem::remove(dir.file("tokens.d/b.toml"));
  CHECK(reports.reported_from(seen, dir.file("tokens.d/b.toml")));

  // Only the three paths that matter were ever reported.
  for (const std::string& path : reports.all()) {
    CAPTURE(path);
    CHECK((path == dir.file("tokens.d/a.toml") || path == dir.file("tokens.d/b.toml") ||
           path == dir.file("astro-tokend.toml")));
  }
}

TEST_CASE("the watcher follows a new watch set", "[daemon][watcher]") {
  TempDir dir;
  std::filesystem::create_directories(dir.file("old.d"));
  std::filesystem::create_directories(dir.file("new.d"));
  Reports reports;
  auto watcher = ChangeWatcher::start([&](const std::string& path) { reports.add(path); });
  REQUIRE(watcher.ok());
  CHECK((*watcher)->watch(dir.file("c.toml"), {dir.file("old.d")}).empty());
  CHECK((*watcher)->watch(dir.file("c.toml"), {dir.file("new.d")}).empty());
  write_file(dir.file("old.d/x.toml"), "x\n");  // no longer watched
  write_file(dir.file("new.d/y.toml"), "y\n");
  CHECK(reports.wait_from(0) == dir.file("new.d/y.toml"));

  auto problems =
      (*watcher)->watch(dir.file("c.toml"), {dir.file("new.d"), "/nonexistent-dir/tokens.d"});
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].find("cannot watch /nonexistent-dir") == 0);
}
