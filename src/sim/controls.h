// The test machinery of astro-api-sim around the API itself: injected faults,
// per-method rate limits and the request log. Each class is thread-safe.
// The JSON encoders and decoders here are shared with the test support
// library, so both sides speak exactly the same control bodies.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace tokend::sim {

// The operationIds the simulator serves, in the order they are listed.
const std::vector<std::string>& known_operations();

enum class DropWhen { Before, After };

// One fault rule of PUT /_sim/faults. A rule applies to requests of
// `operation` (an operationId, or "*" for every API operation). It may:
// answer `status` (400..599) instead of performing the operation, either for
// the next `count` matching requests or with probability `rate` (a status
// with neither means every matching request), with a Retry-After header when
// `retry_after` >= 0; delay the answer by `latency_ms`; and close the
// connection without an answer for the next `drop_count` matching requests or
// with probability `drop_rate`, either before the operation takes effect or
// after it did (the "response lost" case).
struct FaultRule {
  std::string operation = "*";
  int status = 0;
  double rate = 0;
  int count = 0;
  int retry_after = -1;
  int latency_ms = 0;
  double drop_rate = 0;
  int drop_count = 0;
  DropWhen drop_when = DropWhen::Before;

  bool operator==(const FaultRule&) const = default;
};

struct FaultPlan {
  std::vector<FaultRule> rules;
  std::optional<uint64_t> random_seed;  // nullopt: seeded from the system

  bool operator==(const FaultPlan&) const = default;
};

// {"randomSeed":7,"rules":[{"operation":"GetApiToken","status":503,"count":3,...}]}
std::string encode_fault_plan(const FaultPlan& plan);
// Invalid (message naming the field) on a malformed body, an unknown field or
// operation, or a rule that does nothing.
Result<FaultPlan> decode_fault_plan(const std::string& body);

// What the fault rules decided for one request.
struct FaultDecision {
  int status = 0;        // 0: no injected status
  int retry_after = -1;  // seconds; -1: no Retry-After header
  int latency_ms = 0;
  std::optional<DropWhen> drop;
};

class FaultInjector {
 public:
  FaultInjector();
  // Replaces every rule and reseeds the random source.
  void set(FaultPlan plan);
  void clear();
  // The current rules, with `count` and `drop_count` as still remaining.
  FaultPlan current() const;
  // Decides for one request of `operation`, consuming counts. A drop wins
  // over a status; latencies of all matching rules add up.
  FaultDecision decide(std::string_view operation);

 private:
  double next_random();  // [0, 1); caller holds mutex_

  mutable std::mutex mutex_;
  FaultPlan plan_;
  std::mt19937_64 random_;
};

// Requests per second for each method class; the burst is one second's
// worth (at least one request).
struct RateLimits {
  double get = 25;
  double post = 10;
  double del = 5;

  bool operator==(const RateLimits&) const = default;
};

// "get=25,post=10,delete=5"; keys may be omitted (keeping the default) but
// not repeated; values are positive numbers. Invalid naming the bad part.
Result<RateLimits> parse_rate_limits(std::string_view text);

class RateLimiter {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  // nullopt: no limits at all.
  explicit RateLimiter(std::optional<RateLimits> limits);
  // Takes one request of `method` (GET and HEAD count as get; POST, PUT and
  // PATCH as post; DELETE as delete). nullopt when admitted, otherwise the
  // whole seconds (>= 1) after which a retry will be admitted.
  std::optional<int> admit(std::string_view method, TimePoint now);

 private:
  struct Bucket {
    double rate = 0;
    double tokens = 0;
    TimePoint refilled{};
  };
  std::mutex mutex_;
  bool enabled_;
  Bucket get_, post_, delete_;
};

// One API request as the log remembers it. `status` 0 means the connection
// was closed without an answer.
struct LoggedRequest {
  uint64_t seq = 0;
  std::string method;
  std::string path;
  std::string query;
  std::string operation;
  int status = 0;
};

// The ordered log of API requests (/_sim/ controls are not logged) and
// counts per operation and status. Keeps the last `capacity` entries; counts
// cover every request since the last reset.
class RequestLog {
 public:
  explicit RequestLog(size_t capacity = 200000);
  void record(LoggedRequest request);  // assigns seq (1, 2, … in completion order)
  void reset();
  // {"total":N,"counts":{op:n},"statusCounts":{op:{"200":n}},"requests":[…]}
  // ("requests" omitted when include_requests is false).
  std::string encode(bool include_requests) const;

 private:
  mutable std::mutex mutex_;
  size_t capacity_;
  uint64_t total_ = 0;
  std::deque<LoggedRequest> requests_;
  std::map<std::string, std::map<int, uint64_t>> counts_;
};

}  // namespace tokend::sim
