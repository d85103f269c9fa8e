#include "support/prism.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>
#include <Poco/ThreadPool.h>
#include <Poco/URI.h>

#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "support/process.h"

namespace tokend::testing {

namespace {

std::string setting(const char* env_name, const char* compiled_in) {
  const char* value = std::getenv(env_name);
  return value && *value ? value : compiled_in;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

// The URL in Prism's readiness line, or "" when it has not appeared yet.
std::string listening_url(const std::string& output) {
  constexpr std::string_view kMarker = "Prism is listening on ";
  size_t at = output.find(kMarker);
  if (at == std::string::npos) return "";
  size_t start = at + kMarker.size();
  size_t end = start;
  while (end < output.size() && !std::isspace(static_cast<unsigned char>(output[end])) &&
         output[end] != '\x1b')
    ++end;
  if (end == output.size()) return "";  // the line is still being written
  return output.substr(start, end - start);
}

bool is_hop_by_hop(const std::string& name) {
  for (const char* h : {"Connection", "Keep-Alive", "Transfer-Encoding", "Content-Length", "Host",
                        "Proxy-Connection", "TE", "Trailer", "Upgrade"})
    if (iequals(name, h)) return true;
  return false;
}

// One `prism proxy` process: the contract it checks, the base path of that
// API (the router's prefix and the upstream URL's path), and the sentinel
// request logged_violations() sends it (one Prism refuses by itself).
struct Proxy {
  std::string name;                   // "iam", "platform", "v1": also its log files' names
  std::string spec;                   // file name in TOKEND_OPENAPI_DIR
  std::string base;                   // "/iam/v1beta1", "/platform/v1beta1", "/v1"
  bool sentinel_posts_roles = false;  // else: GET …/workspaces?limit=-1
  std::unique_ptr<BackgroundProcess> process;
  std::string url;
  Poco::URI uri;
};

// Forwards each request to the proxy of its API, prefix stripped.
class RouterHandler final : public Poco::Net::HTTPRequestHandler {
 public:
  explicit RouterHandler(const std::vector<Proxy>& proxies) : proxies_(proxies) {}

  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) override {
    std::string uri = request.getURI();
    const Poco::URI* target = nullptr;
    std::string rest;
    for (const Proxy& proxy : proxies_) {
      if (uri.starts_with(proxy.base + "/")) {
        target = &proxy.uri;
        rest = uri.substr(proxy.base.size());
      }
    }
    if (!target) {
      std::string body =
          R"({"message":"prism router: no API for this path","requestId":"prism-router","statusCode":404})";
      response.setStatusAndReason(Poco::Net::HTTPResponse::HTTP_NOT_FOUND);
      response.set("X-Prism-Router", "no-route");
      response.setContentType("application/json");
      response.setContentLength(static_cast<std::streamsize>(body.size()));
      response.send() << body;
      return;
    }
    std::string request_body;
    std::string answer_body;
    Poco::Net::HTTPResponse answer;
    bool answered = false;
    try {
      // Without Content-Length or chunked encoding a request has no body.
      if (request.hasContentLength() || request.getChunkedTransferEncoding())
        Poco::StreamCopier::copyToString(request.stream(), request_body);
      Poco::Net::HTTPClientSession session(target->getHost(), target->getPort());
      session.setTimeout(Poco::Timespan(120, 0));
      Poco::Net::HTTPRequest forward(request.getMethod(), rest, Poco::Net::HTTPMessage::HTTP_1_1);
      for (const auto& [name, value] : request)
        if (!is_hop_by_hop(name)) forward.add(name, value);
      if (!request_body.empty() || request.getMethod() == "POST" || request.getMethod() == "PUT" ||
          request.getMethod() == "PATCH")
        forward.setContentLength(static_cast<std::streamsize>(request_body.size()));
      session.sendRequest(forward) << request_body;
      std::istream& in = session.receiveResponse(answer);
      Poco::StreamCopier::copyToString(in, answer_body);
      answered = true;
    } catch (const Poco::Exception&) {
      answered = false;
    }
    bool upstream_dropped =
        answered && answer.getStatus() == Poco::Net::HTTPResponse::HTTP_INTERNAL_SERVER_ERROR &&
        answer_body.find("\"type\":\"FetchError\"") != std::string::npos;
    if (!answered || upstream_dropped) {
      auto& impl = dynamic_cast<Poco::Net::HTTPServerRequestImpl&>(request);
      impl.detachSocket().close();
      return;
    }
    response.setStatusAndReason(answer.getStatus(), answer.getReason());
    for (const auto& [name, value] : answer)
      if (!is_hop_by_hop(name)) response.add(name, value);
    if (answer.getStatus() == Poco::Net::HTTPResponse::HTTP_NO_CONTENT) {
      response.send();
    } else {
      response.setContentLength(static_cast<std::streamsize>(answer_body.size()));
      response.send() << answer_body;
    }
  }

 private:
  const std::vector<Proxy>& proxies_;
};

class RouterFactory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit RouterFactory(const std::vector<Proxy>& proxies) : proxies_(proxies) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new RouterHandler(proxies_);
  }

 private:
  const std::vector<Proxy>& proxies_;
};

}  // namespace

struct PrismHarness::Impl {
  PrismApi api = PrismApi::V1Beta1;
  TempDir dir;
  std::vector<Proxy> proxies;  // fixed before the router starts
  std::string router_url;
  std::unique_ptr<Poco::ThreadPool> pool;
  std::unique_ptr<Poco::Net::HTTPServer> router;

  void start_proxy(Proxy& proxy, const std::string& specs, const std::string& upstream) {
    std::string prism = setting("TOKEND_PRISM_BIN", TOKEND_PRISM_BIN);
    if (!std::filesystem::exists(prism))
      throw std::runtime_error("Prism not found at " + prism + " (run scripts/setup.sh)");
    std::string spec = specs + "/" + proxy.spec;
    if (!std::filesystem::exists(spec)) throw std::runtime_error("contract not found: " + spec);
    std::vector<std::string> argv = {prism,      "proxy",  spec,        upstream + proxy.base,
                                     "--errors", "--host", "127.0.0.1", "--port",
                                     "0"};
    proxy.process = std::make_unique<BackgroundProcess>(
        argv, RunOptions{}, dir.file(proxy.name + ".out"), dir.file(proxy.name + ".err"));
  }

  void stop_proxies() {
    for (Proxy& proxy : proxies) {
      if (!proxy.process) continue;
      proxy.process->signal(SIGTERM);
      if (!proxy.process->wait_for_exit(std::chrono::seconds(5))) proxy.process->signal(SIGKILL);
      proxy.process.reset();  // reaps (SIGKILL when still running)
    }
  }

  const std::string& url_of(const std::string& name) const {
    static const std::string kNone;
    for (const Proxy& proxy : proxies)
      if (proxy.name == name) return proxy.url;
    return kNone;
  }
};

PrismHarness::PrismHarness(const std::string& upstream_base_url, PrismOptions options)
    : impl_(std::make_unique<Impl>()) {
  std::string upstream = upstream_base_url;
  while (!upstream.empty() && upstream.back() == '/') upstream.pop_back();
  std::string specs = setting("TOKEND_OPENAPI_DIR", TOKEND_OPENAPI_DIR);
  impl_->api = options.api;
  if (options.api == PrismApi::V1) {
    impl_->proxies.push_back({"v1", "v1.yaml", "/v1", true, nullptr, "", {}});
  } else {
    impl_->proxies.push_back({"iam", "iam.yaml", "/iam/v1beta1", true, nullptr, "", {}});
    impl_->proxies.push_back(
        {"platform", "platform.yaml", "/platform/v1beta1", false, nullptr, "", {}});
  }
  try {
    for (Proxy& proxy : impl_->proxies) impl_->start_proxy(proxy, specs, upstream);
  } catch (...) {
    impl_->stop_proxies();
    throw;
  }

  auto deadline = std::chrono::steady_clock::now() + options.start_timeout;
  while (true) {
    bool ready = true, exited = false;
    for (Proxy& proxy : impl_->proxies) {
      if (proxy.url.empty())
        proxy.url = listening_url(read_file(impl_->dir.file(proxy.name + ".out")));
      ready = ready && !proxy.url.empty();
      exited = exited || !proxy.process->running();
    }
    if (ready) break;
    if (exited || std::chrono::steady_clock::now() > deadline) {
      std::string output = log();
      impl_->stop_proxies();
      throw std::runtime_error(std::string("Prism proxies ") +
                               (exited ? "exited before being ready" : "not ready in time") +
                               ":\n" + output);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (Proxy& proxy : impl_->proxies) proxy.uri = Poco::URI(proxy.url);

  Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0), 64);
  impl_->pool = std::make_unique<Poco::ThreadPool>(2, 32, 30);
  auto* params = new Poco::Net::HTTPServerParams;
  params->setMaxThreads(32);
  params->setKeepAlive(true);
  impl_->router = std::make_unique<Poco::Net::HTTPServer>(new RouterFactory(impl_->proxies),
                                                          *impl_->pool, socket, params);
  impl_->router->start();
  impl_->router_url = "http://127.0.0.1:" + std::to_string(socket.address().port());
}

PrismHarness::~PrismHarness() {
  try {
    impl_->router->stopAll(true);
    impl_->pool->joinAll();
  } catch (const Poco::Exception&) {
  }
  impl_->stop_proxies();
}

const std::string& PrismHarness::base_url() const { return impl_->router_url; }
PrismApi PrismHarness::api() const { return impl_->api; }
const std::string& PrismHarness::iam_proxy_url() const { return impl_->url_of("iam"); }
const std::string& PrismHarness::platform_proxy_url() const { return impl_->url_of("platform"); }
const std::string& PrismHarness::v1_proxy_url() const { return impl_->url_of("v1"); }

std::string PrismHarness::log() const {
  std::string out;
  for (const Proxy& proxy : impl_->proxies) {
    for (const char* stream : {".out", ".err"}) {
      std::string name = proxy.name + stream;
      std::string content = read_file(impl_->dir.file(name));
      if (!content.empty()) out += "--- prism " + name + "\n" + content;
    }
  }
  return out;
}

std::string PrismHarness::logged_violations() {
  static std::atomic<int> counter{0};
  std::string sentinel = "csentinel" + std::to_string(1000000000 + counter++);
  sentinel += std::string(25 - std::min<size_t>(25, sentinel.size()), '0');
  HttpHeaders auth = {{"Authorization", "Bearer prism-sentinel"}};
  const std::string roles_path = "/organizations/" + sentinel + "/tokens/" + sentinel + "/roles";
  const std::string workspaces_path = "/organizations/" + sentinel + "/workspaces";
  // An empty role list and a negative limit break the contract: Prism answers 422 itself.
  std::vector<std::pair<std::string, std::string>> expected;  // log file, path
  for (const Proxy& proxy : impl_->proxies) {
    if (proxy.sentinel_posts_roles) {
      http_request({"POST", impl_->router_url + proxy.base + roles_path, auth, R"({"roles":[]})"});
      expected.emplace_back(proxy.name, roles_path);
    } else {
      http_request(
          {"GET", impl_->router_url + proxy.base + workspaces_path + "?limit=-1", auth, ""});
      expected.emplace_back(proxy.name, workspaces_path);
    }
  }

  auto is_violation = [](const std::string& line) {
    return line.find("Violation") != std::string::npos ||
           line.find("[VALIDATOR]") != std::string::npos ||
           line.find("\xe2\x9c\x96") != std::string::npos;  // ✖
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (true) {
    std::string found;
    size_t seen = 0;
    for (const auto& [name, path] : expected) {
      bool sentinel_seen = false;
      for (const char* stream : {".out", ".err"}) {
        std::istringstream lines(read_file(impl_->dir.file(name + stream)));
        for (std::string line; std::getline(lines, line);) {
          if (!is_violation(line)) continue;
          if (line.find(sentinel) != std::string::npos) {
            sentinel_seen = sentinel_seen || line.find(path) != std::string::npos;
            continue;
          }
          if (line.find("csentinel") != std::string::npos) continue;  // an earlier call's sentinel
          found += line + "\n";
        }
      }
      if (sentinel_seen) ++seen;
    }
    if (seen == expected.size()) return found;
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("Prism did not log the sentinel requests in time:\n" + log());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::optional<std::string> prism_violation(const HttpResponse& response) {
  if (response.status == 0) return std::nullopt;
  std::string problems;
  if (auto header = response.header("sl-violations")) problems = "sl-violations: " + *header;
  std::string content_type = response.header("Content-Type").value_or("");
  bool prism_problem = content_type.find("problem+json") != std::string::npos;
  if (!prism_problem) {
    try {
      Poco::JSON::Parser parser;
      auto body = parser.parse(response.body);
      if (body.type() == typeid(Poco::JSON::Object::Ptr)) {
        std::string type =
            body.extract<Poco::JSON::Object::Ptr>()->optValue<std::string>("type", "");
        prism_problem = type.starts_with("https://stoplight.io/prism/") || type == "FetchError";
      }
    } catch (const Poco::Exception&) {
    }
  }
  if (prism_problem) {
    if (!problems.empty()) problems += "; ";
    problems += "Prism answered HTTP " + std::to_string(response.status) + ": " + response.body;
  }
  if (problems.empty()) return std::nullopt;
  return problems;
}

}  // namespace tokend::testing
