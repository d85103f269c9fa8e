#include "sim/controls.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

#include "util/json_parse.h"
#include "util/json_text.h"

namespace tokend::sim {

namespace {

Error invalid(std::string message) { return Error::invalid(std::move(message)); }

std::string format_number(double value) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  return ec == std::errc() ? std::string(buf, end) : "0";
}

// Reads one rule; `where` is "rules[i]".
Result<FaultRule> read_rule(const Poco::JSON::Object& obj, const std::string& where) {
  static const std::set<std::string> kFields = {"operation", "status",     "rate",
                                                "count",     "retryAfter", "latencyMs",
                                                "dropRate",  "dropCount",  "dropWhen"};
  for (const auto& [name, value] : obj) {
    if (!kFields.contains(name)) return invalid(where + ": unknown field " + name);
  }
  FaultRule rule;
  auto integer = [&](const std::string& name, int min, int max, int& out) -> Status {
    if (!obj.has(name)) return ok_status();
    Poco::Dynamic::Var v = obj.get(name);
    if (!v.isInteger()) return invalid(where + "." + name + " must be an integer");
    int64_t n = v.convert<int64_t>();
    if (n < min || n > max)
      return invalid(where + "." + name + " must be between " + std::to_string(min) + " and " +
                     std::to_string(max));
    out = static_cast<int>(n);
    return ok_status();
  };
  auto probability = [&](const std::string& name, double& out) -> Status {
    if (!obj.has(name)) return ok_status();
    Poco::Dynamic::Var v = obj.get(name);
    if (!v.isNumeric()) return invalid(where + "." + name + " must be a number");
    double d = v.convert<double>();
    if (!(d >= 0 && d <= 1)) return invalid(where + "." + name + " must be between 0 and 1");
    out = d;
    return ok_status();
  };
  if (obj.has("operation")) {
    Poco::Dynamic::Var v = obj.get("operation");
    if (!v.isString()) return invalid(where + ".operation must be a string");
    rule.operation = v.extract<std::string>();
    const auto& known = known_operations();
    if (rule.operation != "*" &&
        std::find(known.begin(), known.end(), rule.operation) == known.end())
      return invalid(where + ".operation: unknown operation " + rule.operation);
  }
  for (Status s :
       {integer("status", 400, 599, rule.status), integer("count", 0, 1000000, rule.count),
        integer("retryAfter", 0, 3600, rule.retry_after),
        integer("latencyMs", 0, 600000, rule.latency_ms),
        integer("dropCount", 0, 1000000, rule.drop_count), probability("rate", rule.rate),
        probability("dropRate", rule.drop_rate)}) {
    if (!s.ok()) return s.error();
  }
  if (obj.has("dropWhen")) {
    std::string when = obj.optValue<std::string>("dropWhen", "");
    if (when == "before")
      rule.drop_when = DropWhen::Before;
    else if (when == "after")
      rule.drop_when = DropWhen::After;
    else
      return invalid(where + ".dropWhen must be \"before\" or \"after\"");
  }
  if ((obj.has("rate") || obj.has("count") || obj.has("retryAfter")) && rule.status == 0)
    return invalid(where + ": rate, count and retryAfter need a status");
  if (rule.status != 0 && !obj.has("rate") && !obj.has("count")) rule.rate = 1;
  if (obj.has("dropWhen") && !obj.has("dropRate") && !obj.has("dropCount"))
    return invalid(where + ": dropWhen needs dropRate or dropCount");
  return rule;
}

}  // namespace

const std::vector<std::string>& known_operations() {
  static const std::vector<std::string> kOperations = {
      "ListApiTokens",  "CreateApiToken", "GetApiToken",    "UpdateApiToken", "UpdateApiTokenRoles",
      "RotateApiToken", "DeleteApiToken", "ListWorkspaces", "ListDeployments"};
  return kOperations;
}

std::string encode_fault_plan(const FaultPlan& plan) {
  std::string out = "{";
  if (plan.random_seed) out += "\"randomSeed\":" + std::to_string(*plan.random_seed) + ",";
  out += "\"rules\":[";
  for (size_t i = 0; i < plan.rules.size(); ++i) {
    const FaultRule& r = plan.rules[i];
    if (i) out += ',';
    out += "{\"operation\":" + json_quote(r.operation);
    if (r.status != 0) {
      out += ",\"status\":" + std::to_string(r.status);
      if (r.count > 0)
        out += ",\"count\":" + std::to_string(r.count);
      else
        out += ",\"rate\":" + format_number(r.rate);
      if (r.retry_after >= 0) out += ",\"retryAfter\":" + std::to_string(r.retry_after);
    }
    if (r.latency_ms > 0) out += ",\"latencyMs\":" + std::to_string(r.latency_ms);
    if (r.drop_count > 0 || r.drop_rate > 0) {
      if (r.drop_count > 0)
        out += ",\"dropCount\":" + std::to_string(r.drop_count);
      else
        out += ",\"dropRate\":" + format_number(r.drop_rate);
      out += std::string(",\"dropWhen\":") +
             (r.drop_when == DropWhen::Before ? "\"before\"" : "\"after\"");
    }
    out += '}';
  }
  out += "]}";
  return out;
}

Result<FaultPlan> decode_fault_plan(const std::string& body) {
  auto root = parse_json(body);
  if (!root.ok()) return invalid("body is not valid JSON: " + root.error().message);
  try {
    if (root->type() != typeid(Poco::JSON::Object::Ptr))
      return invalid("body must be a JSON object");
    auto obj = root->extract<Poco::JSON::Object::Ptr>();
    for (const auto& [name, value] : *obj) {
      if (name != "rules" && name != "randomSeed") return invalid("unknown field " + name);
    }
    FaultPlan plan;
    if (obj->has("randomSeed")) {
      Poco::Dynamic::Var seed = obj->get("randomSeed");
      if (!seed.isInteger()) return invalid("randomSeed must be an integer");
      plan.random_seed = seed.convert<uint64_t>();
    }
    if (!obj->has("rules")) return invalid("missing required field rules");
    if (!obj->isArray("rules")) return invalid("rules must be an array");
    auto rules = obj->getArray("rules");
    for (unsigned i = 0; i < rules->size(); ++i) {
      std::string where = "rules[" + std::to_string(i) + "]";
      if (!rules->isObject(i)) return invalid(where + " must be an object");
      auto rule = read_rule(*rules->getObject(i), where);
      if (!rule.ok()) return rule.error();
      if (rule->status == 0 && rule->latency_ms == 0 && rule->drop_count == 0 &&
          rule->drop_rate == 0)
        return invalid(where + ": a rule needs a status, latencyMs, dropRate or dropCount");
      plan.rules.push_back(*rule);
    }
    return plan;
  } catch (const Poco::Exception& e) {
    return invalid("body is not valid JSON: " + e.message());
  }
}

FaultInjector::FaultInjector() : random_(std::random_device{}()) {}

void FaultInjector::set(FaultPlan plan) {
  std::lock_guard lock(mutex_);
  random_.seed(plan.random_seed ? *plan.random_seed : std::random_device{}());
  plan_ = std::move(plan);
}

void FaultInjector::clear() {
  std::lock_guard lock(mutex_);
  plan_ = FaultPlan{};
}

FaultPlan FaultInjector::current() const {
  std::lock_guard lock(mutex_);
  return plan_;
}

double FaultInjector::next_random() { return static_cast<double>(random_() >> 11) * 0x1.0p-53; }

FaultDecision FaultInjector::decide(std::string_view operation) {
  std::lock_guard lock(mutex_);
  FaultDecision decision;
  for (FaultRule& rule : plan_.rules) {
    if (rule.operation != "*" && rule.operation != operation) continue;
    decision.latency_ms += rule.latency_ms;
    if (decision.drop) continue;
    bool drops = false;
    if (rule.drop_count > 0) {
      --rule.drop_count;
      drops = true;
    } else if (rule.drop_rate > 0) {
      drops = next_random() < rule.drop_rate;
    }
    if (drops) {
      decision.drop = rule.drop_when;
      continue;
    }
    if (decision.status != 0 || rule.status == 0) continue;
    bool fires = false;
    if (rule.count > 0) {
      --rule.count;
      fires = true;
    } else if (rule.rate > 0) {
      fires = rule.rate >= 1 || next_random() < rule.rate;
    }
    if (fires) {
      decision.status = rule.status;
      decision.retry_after = rule.retry_after;
    }
  }
  if (decision.drop) {
    decision.status = 0;
    decision.retry_after = -1;
  }
  // Rules whose counts ran out (and that do nothing else) are spent.
  std::erase_if(plan_.rules, [](const FaultRule& r) {
    return r.latency_ms == 0 && r.count == 0 && r.rate == 0 && r.drop_count == 0 &&
           r.drop_rate == 0;
  });
  return decision;
}

Result<RateLimits> parse_rate_limits(std::string_view text) {
  RateLimits limits;
  std::set<std::string> seen;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string_view part =
        text.substr(start, comma == std::string_view::npos ? text.npos : comma - start);
    auto eq = part.find('=');
    if (eq == std::string_view::npos)
      return invalid("rate limit '" + std::string(part) + "' is not METHOD=PER_SECOND");
    std::string key(part.substr(0, eq));
    std::string_view number = part.substr(eq + 1);
    double value = 0;
    auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
    if (ec != std::errc() || ptr != number.data() + number.size() || !(value > 0) ||
        !std::isfinite(value))
      return invalid("rate limit '" + std::string(part) + "': the value must be a positive number");
    if (!seen.insert(key).second) return invalid("rate limit for " + key + " given twice");
    if (key == "get")
      limits.get = value;
    else if (key == "post")
      limits.post = value;
    else if (key == "delete")
      limits.del = value;
    else
      return invalid("rate limit '" + std::string(part) + "': method must be get, post or delete");
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return limits;
}

RateLimiter::RateLimiter(std::optional<RateLimits> limits) : enabled_(limits.has_value()) {
  if (!limits) return;
  TimePoint now = std::chrono::steady_clock::now();
  // The burst is one second's worth, and at least one request.
  get_ = {limits->get, std::max(1.0, limits->get), now};
  post_ = {limits->post, std::max(1.0, limits->post), now};
  delete_ = {limits->del, std::max(1.0, limits->del), now};
}

std::optional<int> RateLimiter::admit(std::string_view method, TimePoint now) {
  if (!enabled_) return std::nullopt;
  std::lock_guard lock(mutex_);
  Bucket& bucket = (method == "GET" || method == "HEAD") ? get_
                   : method == "DELETE"                  ? delete_
                                                         : post_;
  if (now > bucket.refilled) {
    double elapsed = std::chrono::duration<double>(now - bucket.refilled).count();
    bucket.tokens = std::min(std::max(1.0, bucket.rate), bucket.tokens + elapsed * bucket.rate);
    bucket.refilled = now;
  }
  if (bucket.tokens >= 1) {
    bucket.tokens -= 1;
    return std::nullopt;
  }
  double wait = (1 - bucket.tokens) / bucket.rate;
  return std::max(1, static_cast<int>(std::ceil(wait)));
}

RequestLog::RequestLog(size_t capacity) : capacity_(capacity) {}

void RequestLog::record(LoggedRequest request) {
  std::lock_guard lock(mutex_);
  request.seq = ++total_;
  ++counts_[request.operation][request.status];
  requests_.push_back(std::move(request));
  if (requests_.size() > capacity_) requests_.pop_front();
}

void RequestLog::reset() {
  std::lock_guard lock(mutex_);
  total_ = 0;
  requests_.clear();
  counts_.clear();
}

std::string RequestLog::encode(bool include_requests) const {
  std::lock_guard lock(mutex_);
  std::string out = "{\"total\":" + std::to_string(total_) + ",\"counts\":{";
  bool first = true;
  for (const auto& [operation, by_status] : counts_) {
    uint64_t n = 0;
    for (const auto& [status, count] : by_status) n += count;
    if (!first) out += ',';
    first = false;
    out += json_quote(operation) + ":" + std::to_string(n);
  }
  out += "},\"statusCounts\":{";
  first = true;
  for (const auto& [operation, by_status] : counts_) {
    if (!first) out += ',';
    first = false;
    out += json_quote(operation) + ":{";
    bool first_status = true;
    for (const auto& [status, count] : by_status) {
      if (!first_status) out += ',';
      first_status = false;
      out += "\"" + std::to_string(status) + "\":" + std::to_string(count);
    }
    out += '}';
  }
  out += '}';
  if (include_requests) {
    out += ",\"requests\":[";
    out.reserve(out.size() + requests_.size() * 120);
    for (size_t i = 0; i < requests_.size(); ++i) {
      const LoggedRequest& r = requests_[i];
      if (i) out += ',';
      out += "{\"seq\":" + std::to_string(r.seq) + ",\"method\":" + json_quote(r.method) +
             ",\"path\":" + json_quote(r.path) + ",\"query\":" + json_quote(r.query) +
             ",\"operation\":" + json_quote(r.operation) +
             ",\"status\":" + std::to_string(r.status) + "}";
    }
    out += ']';
  }
  out += '}';
  return out;
}

}  // namespace tokend::sim
