#include "astro/retry.h"

#include <Poco/DateTime.h>
#include <Poco/DateTimeFormat.h>
#include <Poco/DateTimeFormatter.h>
#include <Poco/DateTimeParser.h>
#include <Poco/Exception.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>

#include "util/duration.h"

namespace tokend::astro {

std::chrono::milliseconds backoff_delay(const RetryPolicy& policy, int failed_attempt,
                                        double unit_random) {
  const double base = static_cast<double>(std::max<int64_t>(0, policy.base_delay.count()));
  const double cap = static_cast<double>(std::max<int64_t>(0, policy.max_delay.count()));
  const int exponent = std::clamp(failed_attempt - 1, 0, 62);
  const double ceiling = std::min(cap, base * std::ldexp(1.0, exponent));
  const double r = std::clamp(unit_random, 0.0, 1.0);
  return std::chrono::milliseconds{static_cast<int64_t>(ceiling * r)};
}

std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  int64_t seconds = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec == std::errc() && end == value.data() + value.size()) {
    if (seconds < 0) return std::nullopt;
    return std::chrono::milliseconds{std::min<int64_t>(seconds, int64_t{1} << 40) * 1000};
  }
  Poco::DateTime when;
  int tz = 0;
  const std::string text(value);
  try {
    if (!Poco::DateTimeParser::tryParse(Poco::DateTimeFormat::HTTP_FORMAT, text, when, tz))
      return std::nullopt;
    // The parser is lenient; accept only an exact HTTP-date (always GMT).
    if (tz != 0 || Poco::DateTimeFormatter::format(when, Poco::DateTimeFormat::HTTP_FORMAT) != text)
      return std::nullopt;
  } catch (const Poco::Exception&) {
    return std::nullopt;
  }
  const auto target = std::chrono::system_clock::time_point{
      std::chrono::microseconds{when.timestamp().epochMicroseconds() - int64_t{tz} * 1000000}};
  if (target <= now) return std::chrono::milliseconds{0};
  return std::chrono::ceil<std::chrono::milliseconds>(target - now);
}

Verdict judge_attempt(bool idempotent, Delivery delivery, int http_status) {
  switch (delivery) {
    case Delivery::NotSent:
      return Verdict::Retry;
    case Delivery::TlsFailed:
      return Verdict::Fail;
    case Delivery::LostAfterSend:
      return idempotent ? Verdict::Retry : Verdict::Ambiguous;
    case Delivery::Answered:
      break;
  }
  if (http_status >= 200 && http_status < 300) return Verdict::Success;
  if (http_status == 429) return Verdict::Retry;
  if (http_status >= 500 && http_status < 600)
    return idempotent ? Verdict::Retry : Verdict::Ambiguous;
  return Verdict::Fail;
}

ErrorKind error_kind_for_status(int http_status) {
  switch (http_status) {
    case 400:
    case 422:
      return ErrorKind::Invalid;
    case 401:
      return ErrorKind::Unauthorized;
    case 403:
      return ErrorKind::Forbidden;
    case 404:
      return ErrorKind::NotFound;
    case 409:
      return ErrorKind::Conflict;
    case 429:
      return ErrorKind::RateLimited;
    default:
      break;
  }
  if (http_status >= 500 && http_status < 600) return ErrorKind::Unavailable;
  if (http_status >= 400 && http_status < 500) return ErrorKind::Invalid;
  return ErrorKind::Internal;
}

std::string retry_sentence(std::string_view operation, std::chrono::milliseconds wait,
                           std::string_view reason, int next_attempt, int max_attempts) {
  std::string shown;
  if (wait < std::chrono::seconds(1)) {
    shown = std::to_string(std::max<int64_t>(0, wait.count())) + "ms";
  } else {
    shown = format_duration(std::chrono::milliseconds((wait.count() + 50) / 100 * 100));
  }
  return "Retrying " + std::string(operation) + " in " + shown + " after " + std::string(reason) +
         " (attempt " + std::to_string(next_attempt) + " of " + std::to_string(max_attempts) + ")";
}

}  // namespace tokend::astro
