// util/ — small building blocks with no domain knowledge: the result type that
// carries failures across module seams, durations, hashing, logging, files.
//
// Exceptions stop at the adapters (astro/, state/, spec/ loaders): they catch
// what Poco, SQLiteCpp and toml11 throw and return a Result instead. Commands
// (cli/ and main.cpp) map a failure to an exit code; nothing below them exits.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace tokend {

// What went wrong, coarse enough for callers to decide what to do next.
enum class ErrorKind {
  NotFound,      // the thing does not exist (HTTP 404, missing state row)
  Invalid,       // the request or input is wrong and retrying will not help (HTTP 400/422)
  Unauthorized,  // bad or missing credentials (HTTP 401)
  Forbidden,     // credentials lack permission (HTTP 403)
  Conflict,      // someone else holds it (HTTP 409, writer lock held)
  RateLimited,   // HTTP 429 after retries were exhausted
  Unavailable,   // the remote side is down or failing (5xx, refused, timeouts) after retries
  Ambiguous,     // a non-idempotent request may or may not have taken effect
  Tls,           // TLS handshake or certificate verification failed
  Corrupt,       // stored data failed an integrity check
  Io,            // local file or database I/O failed
  Internal,      // a bug or an unexpected answer
};

std::string_view to_string(ErrorKind kind);

struct Error {
  Error() = default;
  Error(ErrorKind error_kind, std::string error_message, std::string api_request_id = {},
        int status = 0)
      : kind(error_kind),
        message(std::move(error_message)),
        request_id(std::move(api_request_id)),
        http_status(status) {}

  ErrorKind kind = ErrorKind::Internal;
  std::string message;     // human readable; never contains a secret
  std::string request_id;  // the API's requestId when the API answered
  int http_status = 0;     // 0 when no HTTP answer was received

  // "message (HTTP 404, requestId abc)" — the form shown to operators.
  std::string describe() const;

  // Factories, one per kind: Error::io("cannot read " + path).
  static Error not_found(std::string message) { return {ErrorKind::NotFound, std::move(message)}; }
  static Error invalid(std::string message) { return {ErrorKind::Invalid, std::move(message)}; }
  static Error unauthorized(std::string message) {
    return {ErrorKind::Unauthorized, std::move(message)};
  }
  static Error forbidden(std::string message) { return {ErrorKind::Forbidden, std::move(message)}; }
  static Error conflict(std::string message) { return {ErrorKind::Conflict, std::move(message)}; }
  static Error rate_limited(std::string message) {
    return {ErrorKind::RateLimited, std::move(message)};
  }
  static Error unavailable(std::string message) {
    return {ErrorKind::Unavailable, std::move(message)};
  }
  static Error ambiguous(std::string message) { return {ErrorKind::Ambiguous, std::move(message)}; }
  static Error tls(std::string message) { return {ErrorKind::Tls, std::move(message)}; }
  static Error corrupt(std::string message) { return {ErrorKind::Corrupt, std::move(message)}; }
  static Error io(std::string message) { return {ErrorKind::Io, std::move(message)}; }
  static Error internal(std::string message) { return {ErrorKind::Internal, std::move(message)}; }
};

// Either a value or an Error. Cheap to move; check ok() before value().
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : data_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : data_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return data_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(data_); }
  const T& value() const& { return std::get<0>(data_); }
  T&& value() && { return std::get<0>(std::move(data_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { return std::get<1>(data_); }

 private:
  std::variant<T, Error> data_;
};

// Result<void>: success carries nothing.
struct Unit {};
using Status = Result<Unit>;
inline Status ok_status() { return Unit{}; }

}  // namespace tokend
