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
  REQUIRE(sink.write(path, SecretValue("first")).ok());
  CHECK(testing::read_file(path) == "first");
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(stat(dir.file("nested/deeper").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);

  REQUIRE(sink.write(path, SecretValue("second")).ok());
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
  auto status = sink.write(dir.file("blocker/ci.token"), SecretValue("s3cr3t-value"));
  REQUIRE_FALSE(status.ok());
  CHECK(status.error().kind == ErrorKind::Io);
  CHECK(status.error().message.find("blocker") != std::string::npos);
  CHECK(status.error().message.find("s3cr3t-value") == std::string::npos);
}
