#include "astro/credentials.h"

#include <sys/stat.h>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "util/files.h"

namespace tokend::astro {

namespace {

Error invalid(std::string message) { return Error::invalid(std::move(message)); }

constexpr size_t kMaxTokenFileBytes = 64u << 10;

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

Result<std::string> read_whole_file(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    return Error{
        ErrorKind::Io,
        "cannot read the Astro API token from " + what + " " + path + ": " + std::strerror(err), "",
        0};
  }
  in.close();
  // A bearer token is a few KiB at most; a path pointed at anything else
  // (/dev/zero, a large file) must not take more memory than this.
  auto content = read_file(path, kMaxTokenFileBytes);
  if (!content.ok() && content.error().kind == ErrorKind::Invalid)
    return invalid("the Astro API token in " + what + " " + path + " is larger than " +
                   std::to_string(kMaxTokenFileBytes) + " bytes");
  if (!content.ok()) return Error::io("cannot read the Astro API token from " + what + " " + path);
  return std::move(content.value());
}

Result<SecretValue> checked(std::string value, const std::string& source) {
  while (!value.empty() && std::strchr(" \t\r\n\f\v", value.back()) != nullptr) value.pop_back();
  if (value.empty()) return invalid("the Astro API token in " + source + " is empty");
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f)
      return invalid("the Astro API token in " + source +
                     " contains whitespace or control characters");
  }
  return SecretValue(std::move(value));
}

}  // namespace

EnvLookup process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

Result<SecretValue> load_bearer_token(const CredentialSources& sources, const EnvLookup& env) {
  if (auto dir = env("CREDENTIALS_DIRECTORY"); dir && !dir->empty()) {
    const std::string path = *dir + "/" + kCredentialName;
    if (exists(path)) {
      auto content = read_whole_file(path, "the systemd credential");
      if (!content.ok()) return content.error();
      return checked(std::move(content.value()), "the systemd credential " + path);
    }
  }
  if (!sources.token_file.empty()) {
    auto content = read_whole_file(sources.token_file, "token_file");
    if (!content.ok()) return content.error();
    return checked(std::move(content.value()), "token_file " + sources.token_file);
  }
  if (!sources.token_env.empty()) {
    auto value = env(sources.token_env);
    if (!value)
      return invalid("no Astro API token: the environment variable " + sources.token_env +
                     " is not set (or set token_file, or provide the systemd credential " +
                     std::string(kCredentialName) + ")");
    return checked(std::move(*value), "the environment variable " + sources.token_env);
  }
  return invalid(
      "no Astro API token: set token_file or token_env, or provide the systemd credential " +
      std::string(kCredentialName));
}

}  // namespace tokend::astro
