// Where the Astro API bearer token comes from. It is never taken from the
// command line; the first source present wins:
//   1. $CREDENTIALS_DIRECTORY/astro-api-token (systemd LoadCredential=), when that file exists;
//   2. `token_file`, when set;
//   3. the environment variable `token_env`.
// Trailing whitespace (a final newline) is trimmed. Errors name the source,
// never the value.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "model/token.h"
#include "util/result.h"

namespace tokend::astro {

struct CredentialSources {
  std::string token_file;                     // "" = not configured
  std::string token_env = "ASTRO_API_TOKEN";  // "" = not configured
};

// The file name looked up inside $CREDENTIALS_DIRECTORY.
inline constexpr const char* kCredentialName = "astro-api-token";

// Reads an environment variable; nullopt when unset. Injectable for tests.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
EnvLookup process_environment();

// The bearer token, or: Io when a chosen file cannot be read; Invalid when no
// source is configured or present, when the value is empty, or when it holds
// whitespace or control characters (it must fit in an HTTP header).
Result<SecretValue> load_bearer_token(const CredentialSources& sources,
                                      const EnvLookup& env = process_environment());

}  // namespace tokend::astro
