#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>

#include "apply/sink.h"
#include "support/process.h"
#include "util/hash.h"

using namespace tokend;

TEST_CASE("FileSink writes 0600 files atomically into 0700 directories", "[apply][sink]") {
  testing::TempDir dir;
  apply::FileSink sink;
  std::string path = dir.file("nested/deeper/ci.token");
  umask(022);
  REQUIRE(sink.write(apply::SinkTarget{path, 0600, ""}, SecretValue("first")).ok());
  CHECK(testing::read_file(path) == "first");
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(stat(dir.file("nested/deeper").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);

  REQUIRE(sink.write(apply::SinkTarget{path, 0600, ""}, SecretValue("second")).ok());
  CHECK(testing::read_file(path) == "second");
  // No temporary files are left behind.
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.file("nested/deeper"))) {
    (void)e;
    ++entries;
  }
  CHECK(entries == 1);

  auto fp = sink.fingerprint(path);
  REQUIRE(fp.ok());
  CHECK(*fp == sha256_hex("second"));
  REQUIRE(sink.remove(path).ok());
  auto gone = sink.fingerprint(path);
  REQUIRE(gone.ok());
  CHECK_FALSE(gone->has_value());
  CHECK(sink.remove(path).ok());
}

TEST_CASE("FileSink reports failures with the path and never the value", "[apply][sink]") {
  testing::TempDir dir;
  testing::write_file(dir.file("blocker"), "x");
  apply::FileSink sink;
  auto status = sink.write(apply::SinkTarget{dir.file("blocker/ci.token"), 0600, ""},
                           SecretValue("s3cr3t-value"));
  REQUIRE_FALSE(status.ok());
  CHECK(status.error().kind == ErrorKind::Io);
  CHECK(status.error().message.find("blocker") != std::string::npos);
  CHECK(status.error().message.find("s3cr3t-value") == std::string::npos);
}

TEST_CASE("FileSink tells a sink that can take a value from one that cannot", "[apply][sink]") {
  testing::TempDir dir;
  apply::FileSink sink;
  // Missing directories are made by write: fine.
  CHECK(sink.check_writable(apply::SinkTarget{dir.file("a/b/ci.token"), 0600, ""}).ok());
  testing::write_file(dir.file("existing.token"), "old");
  CHECK(sink.check_writable(apply::SinkTarget{dir.file("existing.token"), 0600, ""}).ok());

  // Below a regular file: nothing is there to read, and nothing can be written.
  testing::write_file(dir.file("blocker"), "a file, not a directory");
  const std::string under = dir.file("blocker/sub/ci.token");
  Status below = sink.check_writable(apply::SinkTarget{under, 0600, ""});
  REQUIRE_FALSE(below.ok());
  CHECK(below.error().kind == ErrorKind::Io);
  CHECK(below.error().message ==
        "cannot write " + under + ": " + dir.file("blocker") + " is not a directory");
  auto read = sink.read(under);
  REQUIRE(read.ok());
  CHECK_FALSE(read->has_value());
  CHECK_FALSE(sink.write(apply::SinkTarget{under, 0600, ""}, SecretValue("v")).ok());

  // A directory at the path itself.
  std::filesystem::create_directories(dir.file("adir"));
  Status directory = sink.check_writable(apply::SinkTarget{dir.file("adir"), 0600, ""});
  REQUIRE_FALSE(directory.ok());
  CHECK(directory.error().message.find("Is a directory") != std::string::npos);

  // A group that does not exist.
  Status group =
      sink.check_writable(apply::SinkTarget{dir.file("g.token"), 0640, "no-such-group-tokend"});
  REQUIRE_FALSE(group.ok());
  CHECK(group.error().message.find("is not a group on this system") != std::string::npos);
}

TEST_CASE("FileSink gives the fingerprint of a settled, unchanged file without reading it again",
          "[apply][sink]") {
  testing::TempDir dir;
  const std::string path = dir.file("ci.token");
  testing::write_file(path, "first");

  SECTION("a file changed within the settle window is read each time") {
    apply::FileSink sink;  // the file was written just now
    REQUIRE(*sink.fingerprint(path) == sha256_hex("first"));
    REQUIRE(*sink.fingerprint(path) == sha256_hex("first"));
    CHECK(sink.files_read() == 2);
  }
  SECTION("a sink made not to remember reads a settled file each time") {
    apply::FileSink sink(std::chrono::nanoseconds(0), /*remember=*/false);
    REQUIRE(*sink.fingerprint(path) == sha256_hex("first"));
    REQUIRE(*sink.fingerprint(path) == sha256_hex("first"));
    CHECK(sink.files_read() == 2);
  }

  apply::FileSink sink(std::chrono::nanoseconds(0));
  REQUIRE(*sink.fingerprint(path) == sha256_hex("first"));
  REQUIRE(*sink.fingerprint(path) == sha256_hex("first"));
  CHECK(sink.files_read() == 1);

  SECTION("a file replaced by rename is read again") {
    testing::write_file(dir.file(".ci.token.new"), "other");
    REQUIRE(std::rename(dir.file(".ci.token.new").c_str(), path.c_str()) == 0);
    CHECK(*sink.fingerprint(path) == sha256_hex("other"));
    CHECK(sink.files_read() == 2);
  }
  SECTION("a file rewritten in place with another size is read again") {
    testing::write_file(path, "rewritten");
    CHECK(*sink.fingerprint(path) == sha256_hex("rewritten"));
    CHECK(sink.files_read() == 2);
  }
  SECTION("a removed file has no fingerprint") {
    std::filesystem::remove(path);
    CHECK_FALSE(sink.fingerprint(path)->has_value());
  }
  SECTION("a value the sink writes is read again") {
    REQUIRE(sink.write(apply::SinkTarget{path, 0600, ""}, SecretValue("second")).ok());
    CHECK(*sink.fingerprint(path) == sha256_hex("second"));
    CHECK(sink.files_read() == 2);
  }
  SECTION("a file that became a directory is an error, not the old fingerprint") {
    std::filesystem::remove(path);
    std::filesystem::create_directory(path);
    CHECK_FALSE(sink.fingerprint(path).ok());
  }
}
