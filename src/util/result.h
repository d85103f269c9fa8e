// util/ — small building blocks with no domain knowledge: the result type that
// carries failures across module seams, durations, hashing, logging, files.
//
// Exceptions stop at the adapters (astro/, state/, spec/ loaders): they catch
// what Poco, SQLiteCpp and toml11 throw and return a Result instead. Only
// main.cpp maps a failure to an exit code.
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
  ErrorKind kind = ErrorKind::Internal;
  std::string message;     // human readable; never contains a secret
  std::string request_id;  // the API's requestId when the API answered
  int http_status = 0;     // 0 when no HTTP answer was received

  // "message (HTTP 404, requestId abc)" — the form shown to operators.
  std::string describe() const;
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
