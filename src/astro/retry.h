// The retry policy of the Astro API client as pure functions: which outcome
// of an attempt is retried, how long to wait, and which ErrorKind a status
// becomes. No I/O, no clock reads; HttpClient applies them.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "util/result.h"

namespace tokend::astro {

// How often and how patiently a request is tried.
struct RetryPolicy {
  int max_attempts = 5;                        // including the first; at least 1
  std::chrono::milliseconds base_delay{500};   // backoff before the 2nd attempt (upper bound)
  std::chrono::milliseconds max_delay{30000};  // cap of the exponential backoff
  // A 429 asking to wait longer than this is not waited for: the request
  // fails with RateLimited at once.
  std::chrono::milliseconds max_retry_after{60000};
};

// Capped exponential backoff with full jitter after the `failed_attempt`-th
// attempt (1-based): uniform in [0, min(max_delay, base_delay * 2^(failed_attempt-1))].
// `unit_random` is a number in [0, 1) chosen by the caller.
std::chrono::milliseconds backoff_delay(const RetryPolicy& policy, int failed_attempt,
                                        double unit_random);

// The wait a Retry-After header asks for: delta-seconds ("120") or an
// HTTP-date ("Wed, 21 Oct 2015 07:28:00 GMT", relative to `now`, never
// negative). nullopt when the value is neither.
std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now);

// How one attempt ended.
enum class Delivery {
  Answered,  // an HTTP answer arrived
  NotSent,   // could not connect (refused, unreachable, connect timeout): the request never left
  LostAfterSend,  // timeout, reset or close without an answer once the request was (partly) sent
  TlsFailed,      // the TLS handshake or certificate verification failed; nothing was sent
};

enum class Verdict {
  Success,    // 2xx
  Retry,      // try again (when attempts remain)
  Fail,       // give up with the status's ErrorKind
  Ambiguous,  // a non-idempotent request may have taken effect: give up with Ambiguous
};

// 2xx succeed; 429 and requests that never left are retried for every
// operation; 5xx and losses after sending are retried when `idempotent`,
// otherwise Ambiguous; every other status and TLS failures are final.
Verdict judge_attempt(bool idempotent, Delivery delivery, int http_status);

// 400/422 Invalid, 401 Unauthorized, 403 Forbidden, 404 NotFound,
// 409 Conflict, 429 RateLimited, 5xx Unavailable, other 4xx Invalid,
// anything else (1xx, 3xx) Internal.
ErrorKind error_kind_for_status(int http_status);

// The sentence a person reads when a request is about to be retried, e.g.
//   Retrying ListApiTokens in 2s after HTTP 503 (attempt 2 of 5)
// `wait` shows as milliseconds below a second, otherwise rounded to a tenth
// of a second ("1.5s", "1m30s"); `reason` as given (it must hold no secret).
std::string retry_sentence(std::string_view operation, std::chrono::milliseconds wait,
                           std::string_view reason, int next_attempt, int max_attempts);

}  // namespace tokend::astro
