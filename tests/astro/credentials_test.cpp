#include <catch2/catch.hpp>

#include <map>

#include "astro/credentials.h"
#include "support/process.h"

using namespace tokend;
using namespace tokend::astro;
using tokend::testing::TempDir;
using tokend::testing::write_file;

namespace {
EnvLookup fake_env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}
}  // namespace

TEST_CASE("the systemd credential wins over token_file - which wins over token_env", "[astro]") {
  TempDir dir;
  write_file(dir.file("astro-api-token"), "from-credential\n");
  write_file(dir.file("token"), "from-file \n\n");
  const CredentialSources both{dir.file("token"), "MY_TOKEN"};

  auto from_credential = load_bearer_token(
      both, fake_env({{"CREDENTIALS_DIRECTORY", dir.path()}, {"MY_TOKEN", "from-env"}}));
  REQUIRE(from_credential.ok());
  CHECK(from_credential->reveal() == "from-credential");

  auto from_file = load_bearer_token(both, fake_env({{"MY_TOKEN", "from-env"}}));
  REQUIRE(from_file.ok());
  CHECK(from_file->reveal() == "from-file");

  auto from_env = load_bearer_token({"", "MY_TOKEN"}, fake_env({{"MY_TOKEN", "from-env\r\n"}}));
  REQUIRE(from_env.ok());
  CHECK(from_env->reveal() == "from-env");
}

TEST_CASE("a credentials directory without the token falls through to the next source", "[astro]") {
  TempDir dir;
  auto token = load_bearer_token({"", "MY_TOKEN"}, fake_env({{"CREDENTIALS_DIRECTORY", dir.path()},
                                                             {"MY_TOKEN", "from-env"}}));
  REQUIRE(token.ok());
  CHECK(token->reveal() == "from-env");
}

TEST_CASE("missing or unusable tokens give clear errors without the value", "[astro]") {
  TempDir dir;
  write_file(dir.file("empty"), " \n");
  write_file(dir.file("spaced"), "secret part two\n");
  struct Row {
    CredentialSources sources;
    std::map<std::string, std::string> env;
    ErrorKind kind;
    std::string says;
  };
  const std::vector<Row> rows = {
      {{"", "MY_TOKEN"}, {}, ErrorKind::Invalid, "the environment variable MY_TOKEN is not set"},
      {{"", ""}, {}, ErrorKind::Invalid, "set token_file or token_env"},
      {{dir.file("absent"), "MY_TOKEN"}, {{"MY_TOKEN", "x"}}, ErrorKind::Io, dir.file("absent")},
      {{dir.file("empty"), ""}, {}, ErrorKind::Invalid, "is empty"},
      {{"", "MY_TOKEN"}, {{"MY_TOKEN", ""}}, ErrorKind::Invalid, "is empty"},
      {{dir.file("spaced"), ""}, {}, ErrorKind::Invalid, "whitespace or control characters"},
      // An endless file is refused at the cap, not read to the end.
      {{"/dev/zero", ""}, {}, ErrorKind::Invalid, "/dev/zero is larger than 65536 bytes"},
  };
  for (const Row& row : rows) {
    INFO(row.says);
    auto token = load_bearer_token(row.sources, fake_env(row.env));
    REQUIRE_FALSE(token.ok());
    CHECK(token.error().kind == row.kind);
    CHECK(token.error().message.find(row.says) != std::string::npos);
    CHECK(token.error().message.find("secret part") == std::string::npos);
  }
}
