// Test support: a tiny synchronous HTTP(S) client for tests and benchmarks,
// built on Poco. It never throws for transport problems (refused, reset,
// closed without an answer, timeout, TLS failure): those come back as
// status 0 with `error` describing them. Not meant for production code.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tokend::testing {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
  int status = 0;     // 0: no HTTP answer; see `error`
  std::string error;  // the transport error when status == 0
  bool timed_out = false;
  HttpHeaders headers;
  std::string body;

  // The first header named `name` (case-insensitive), or nullopt.
  std::optional<std::string> header(std::string_view name) const;
};

struct HttpOptions {
  std::chrono::milliseconds timeout{15000};  // connect, send and receive each
  // For https: verify the server against this CA file only. Empty: the
  // system's CAs (so a throwaway CA is rejected).
  std::string ca_file;
};

struct HttpRequest {
  std::string method = "GET";
  std::string url;  // http://HOST:PORT/path?query or https://…
  HttpHeaders headers;
  // Sent when non-empty, with Content-Type: application/json unless
  // `headers` names another Content-Type.
  std::string body;
};

// One request on a fresh connection.
HttpResponse http_request(const HttpRequest& request, const HttpOptions& options = {});

// A keep-alive connection to one origin ("http://127.0.0.1:PORT"), reused
// across requests and reopened when the server closed it. A request is never
// retried: one that fails comes back with status 0. Not thread-safe: use one
// per thread.
class HttpConnection {
 public:
  explicit HttpConnection(const std::string& origin, HttpOptions options = {});
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // `target` is the path with an optional query ("/iam/v1beta1/…?limit=1000").
  HttpResponse request(const std::string& method, const std::string& target,
                       const std::string& body = "", const HttpHeaders& headers = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "Authorization: Bearer <token>".
HttpHeaders bearer_header(const std::string& token);

}  // namespace tokend::testing
