// Test support: FaultProxy, a small HTTP proxy of the project's own that sits
// between the client under test and astro-api-sim and misbehaves on purpose,
// the way a broken network or a hostile API could:
//
//   tokend::testing::SimProcess sim;
//   tokend::testing::FaultProxy proxy(sim.base_url());   // 127.0.0.1, port 0
//   proxy.set_rules({endless_body(token_listing(sim.org_id()))});
//   config api_url = proxy.url();
//
// It runs in the test's process, so a test changes its rules at any time and
// reads what it did. Each rule applies to the requests its ProxyMatch selects
// (method and path, optionally only the Nth of them); every rule that selects
// a request applies to it, in the order given (e.g. repeat_page plus
// lie_total_count). Requests no rule selects are forwarded unchanged.
//
// Every loop is bounded: an endless body stops when the client goes away,
// when the proxy stops, or after `max_endless_bytes`; a trickle ends with the
// answer; late forwards are abandoned when the proxy stops. The destructor
// wakes every waiting handler, stops the server and joins its threads.
//
// Constructing a FaultProxy ignores SIGPIPE for the process (writing to a
// client that went away must fail, not kill the test).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace Poco::Net {
class HTTPServer;
}

namespace tokend::testing {

// Which requests a rule applies to.
struct ProxyMatch {
  std::string method;       // "GET", "POST", "DELETE"; "" matches every method
  std::string path_prefix;  // compared with the request path (query left out); "" matches all
  bool exact = false;       // the path must equal path_prefix
  int nth = 0;              // 0: every selected request; N >= 1: only the Nth (1-based)
  int every = 0;            // N >= 1: only every Nth selected request (the Nth, 2Nth, …)
  std::string also_path{};  // compared like path_prefix as well, "" = none (the other API version)
};

// ListApiTokens: GET {/v1/organizations/ORG/tokens} or, for a client set to
// v1beta1, {/iam/v1beta1/organizations/ORG/tokens} (not GetApiToken).
ProxyMatch token_listing(const std::string& org_id, int nth = 0);
// CreateApiToken: POST {/v1/organizations/ORG/tokens} or
// {/iam/v1beta1/organizations/ORG/tokens}.
ProxyMatch token_create(const std::string& org_id, int nth = 0);
// Every request whose path starts with `prefix` ("" = every request).
ProxyMatch any_request(const std::string& prefix = "", int nth = 0);

enum class ProxyFault {
  // 200 with Transfer-Encoding: chunked, '{"tokens":[' and then token
  // objects without end. The simulator is not asked.
  EndlessBody,
  // The same with "Content-Length: 1099511627776" instead of chunking.
  EndlessBodyHugeLength,
  // The simulator's answer, its body sent one byte every `interval`.
  Trickle,
  // The simulator's answer, all of it — status line and headers first — sent
  // one byte every `interval`.
  TrickleHeaders,
  // Forwarded with offset=0: every listing page is the first page.
  RepeatPage,
  // The answer's "totalCount" replaced by `total_count`.
  LieTotalCount,
  // Forwarded with limit=`page_limit`: pages shorter than asked for.
  ShortPages,
  // `hook` runs after the simulator answered and before the answer goes to
  // the client: anything it changes happens after this page was taken and
  // before the client can ask for the next one.
  AfterAnswer,
  // The client's connection is closed at once without an answer; the request
  // is sent to the simulator `delay` later and its answer discarded.
  LateForward,
  // Answered with `status` (e.g. 503, 429) and an error body, with a
  // Retry-After header when `retry_after` is set. The simulator is not asked.
  Status,
};

struct ProxyRule {
  ProxyMatch match;
  ProxyFault fault = ProxyFault::Trickle;
  std::chrono::milliseconds interval{1000};  // Trickle, TrickleHeaders
  std::chrono::milliseconds delay{1500};     // LateForward
  int64_t total_count = 1;                   // LieTotalCount
  int page_limit = 1;                        // ShortPages
  int status = 503;                          // Status
  std::string retry_after;                   // Status: Retry-After value, "" for none
  std::function<void()> hook;                // AfterAnswer; runs on a proxy thread
};

ProxyRule endless_body(ProxyMatch match);
ProxyRule endless_body_huge_length(ProxyMatch match);
ProxyRule trickle(ProxyMatch match, std::chrono::milliseconds interval);
ProxyRule trickle_headers(ProxyMatch match, std::chrono::milliseconds interval);
ProxyRule repeat_page(ProxyMatch match);
ProxyRule lie_total_count(ProxyMatch match, int64_t total_count);
ProxyRule short_pages(ProxyMatch match, int page_limit);
ProxyRule after_answer(ProxyMatch match, std::function<void()> hook);
ProxyRule late_forward(ProxyMatch match, std::chrono::milliseconds delay);
ProxyRule error_status(ProxyMatch match, int status, std::string retry_after = "");
// `match` selecting only every `n`th request it would select.
ProxyMatch every_nth(ProxyMatch match, int n);

// One request the proxy received, with the faults applied to it.
struct ProxiedRequest {
  std::string method;
  std::string target;  // path and query as the client sent them
  std::vector<ProxyFault> faults;
};

class FaultProxy {
 public:
  // Forwards to `upstream` ("http://127.0.0.1:PORT"); listens on 127.0.0.1
  // port 0. Throws std::runtime_error when it cannot listen.
  explicit FaultProxy(const std::string& upstream);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  std::string url() const;  // "http://127.0.0.1:PORT"
  int port() const;

  // Replaces every rule; the Nth counts start again. Thread-safe.
  void set_rules(std::vector<ProxyRule> rules);
  void clear_rules() { set_rules({}); }

  std::vector<ProxiedRequest> requests() const;
  // Requests received whose path starts with `prefix`.
  size_t request_count(const std::string& prefix = "") const;
  // Body bytes written by endless answers so far (all of them together).
  uint64_t endless_bytes_sent() const;
  // Late forwards whose request reached the simulator and was answered.
  int late_forwards_done() const;
  // Waits until every late forward scheduled so far has been answered by the
  // simulator; false after `timeout`.
  bool wait_late_forwards(std::chrono::milliseconds timeout) const;

  // An endless answer stops after this many body bytes (default 16 GiB).
  void set_max_endless_bytes(uint64_t bytes);

  struct State;  // shared with the server's handler threads (fault_proxy.cpp)

 private:
  std::shared_ptr<State> state_;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
  int port_ = 0;
};

}  // namespace tokend::testing
