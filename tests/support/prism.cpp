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

// Forwards each request to the proxy of its API, prefix stripped.
class RouterHandler final : public Poco::Net::HTTPRequestHandler {
 public:
  RouterHandler(const Poco::URI& iam, const Poco::URI& platform) : iam_(iam), platform_(platform) {}

  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) override {
    std::string uri = request.getURI();
    const Poco::URI* target = nullptr;
    std::string rest;
    for (auto [prefix, proxy] :
         {std::pair<std::string_view, const Poco::URI*>{"/iam/v1beta1/", &iam_},
          {"/platform/v1beta1/", &platform_}}) {
      if (uri.starts_with(prefix)) {
        target = proxy;
        rest = uri.substr(prefix.size() - 1);
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
  const Poco::URI& iam_;
  const Poco::URI& platform_;
};

class RouterFactory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  RouterFactory(const Poco::URI& iam, const Poco::URI& platform) : iam_(iam), platform_(platform) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new RouterHandler(iam_, platform_);
  }

 private:
  const Poco::URI& iam_;
  const Poco::URI& platform_;
};

}  // namespace

struct PrismHarness::Impl {
  TempDir dir;
  std::unique_ptr<BackgroundProcess> iam_process;
  std::unique_ptr<BackgroundProcess> platform_process;
  std::string iam_url, platform_url, router_url;
  Poco::URI iam_uri, platform_uri;
  std::unique_ptr<Poco::ThreadPool> pool;
  std::unique_ptr<Poco::Net::HTTPServer> router;

  std::unique_ptr<BackgroundProcess> start_proxy(const std::string& spec,
                                                 const std::string& upstream,
                                                 const std::string& name) {
    std::string prism = setting("TOKEND_PRISM_BIN", TOKEND_PRISM_BIN);
    if (!std::filesystem::exists(prism))
      throw std::runtime_error("Prism not found at " + prism + " (run scripts/setup.sh)");
    if (!std::filesystem::exists(spec)) throw std::runtime_error("contract not found: " + spec);
    std::vector<std::string> argv = {prism,    "proxy",     spec,     upstream, "--errors",
                                     "--host", "127.0.0.1", "--port", "0"};
    return std::make_unique<BackgroundProcess>(argv, RunOptions{}, dir.file(name + ".out"),
                                               dir.file(name + ".err"));
  }

  void stop_proxy(std::unique_ptr<BackgroundProcess>& process) {
    if (!process) return;
    process->signal(SIGTERM);
    if (!process->wait_for_exit(std::chrono::seconds(5))) process->signal(SIGKILL);
    process.reset();  // reaps (SIGKILL when still running)
  }
};

PrismHarness::PrismHarness(const std::string& upstream_base_url, PrismOptions options)
    : impl_(std::make_unique<Impl>()) {
  std::string upstream = upstream_base_url;
  while (!upstream.empty() && upstream.back() == '/') upstream.pop_back();
  std::string specs = setting("TOKEND_OPENAPI_DIR", TOKEND_OPENAPI_DIR);
  impl_->iam_process = impl_->start_proxy(specs + "/iam.yaml", upstream + "/iam/v1beta1", "iam");
  impl_->platform_process =
      impl_->start_proxy(specs + "/platform.yaml", upstream + "/platform/v1beta1", "platform");

  auto deadline = std::chrono::steady_clock::now() + options.start_timeout;
  while (impl_->iam_url.empty() || impl_->platform_url.empty()) {
    impl_->iam_url = listening_url(read_file(impl_->dir.file("iam.out")));
    impl_->platform_url = listening_url(read_file(impl_->dir.file("platform.out")));
    if (!impl_->iam_url.empty() && !impl_->platform_url.empty()) break;
    bool exited = !impl_->iam_process->running() || !impl_->platform_process->running();
    if (exited || std::chrono::steady_clock::now() > deadline) {
      std::string output = log();
      impl_->stop_proxy(impl_->iam_process);
      impl_->stop_proxy(impl_->platform_process);
      throw std::runtime_error(std::string("Prism proxies ") +
                               (exited ? "exited before being ready" : "not ready in time") +
                               ":\n" + output);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  impl_->iam_uri = Poco::URI(impl_->iam_url);
  impl_->platform_uri = Poco::URI(impl_->platform_url);

  Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0), 64);
  impl_->pool = std::make_unique<Poco::ThreadPool>(2, 32, 30);
  auto* params = new Poco::Net::HTTPServerParams;
  params->setMaxThreads(32);
  params->setKeepAlive(true);
  impl_->router = std::make_unique<Poco::Net::HTTPServer>(
      new RouterFactory(impl_->iam_uri, impl_->platform_uri), *impl_->pool, socket, params);
  impl_->router->start();
  impl_->router_url = "http://127.0.0.1:" + std::to_string(socket.address().port());
}

PrismHarness::~PrismHarness() {
  try {
    impl_->router->stopAll(true);
    impl_->pool->joinAll();
  } catch (const Poco::Exception&) {
  }
  impl_->stop_proxy(impl_->iam_process);
  impl_->stop_proxy(impl_->platform_process);
}

const std::string& PrismHarness::base_url() const { return impl_->router_url; }
const std::string& PrismHarness::iam_proxy_url() const { return impl_->iam_url; }
const std::string& PrismHarness::platform_proxy_url() const { return impl_->platform_url; }

std::string PrismHarness::log() const {
  std::string out;
  for (const char* name : {"iam.out", "iam.err", "platform.out", "platform.err"}) {
    std::string content = read_file(impl_->dir.file(name));
    if (!content.empty()) out += "--- prism " + std::string(name) + "\n" + content;
  }
  return out;
}

std::string PrismHarness::logged_violations() {
  static std::atomic<int> counter{0};
  std::string sentinel = "csentinel" + std::to_string(1000000000 + counter++);
  sentinel += std::string(25 - std::min<size_t>(25, sentinel.size()), '0');
  HttpHeaders auth = {{"Authorization", "Bearer prism-sentinel"}};
  const std::string iam_path = "/organizations/" + sentinel + "/tokens/" + sentinel + "/roles";
  const std::string platform_path = "/organizations/" + sentinel + "/workspaces";
  // An empty role list and a negative limit break the contract: Prism answers 422 itself.
  http_request({"POST", impl_->router_url + "/iam/v1beta1" + iam_path, auth, R"({"roles":[]})"});
  http_request(
      {"GET", impl_->router_url + "/platform/v1beta1" + platform_path + "?limit=-1", auth, ""});

  auto is_violation = [](const std::string& line) {
    return line.find("Violation") != std::string::npos ||
           line.find("[VALIDATOR]") != std::string::npos ||
           line.find("\xe2\x9c\x96") != std::string::npos;  // ✖
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (true) {
    std::string text = log();
    bool iam_seen = false, platform_seen = false;
    std::string found;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
      if (!is_violation(line)) continue;
      if (line.find(sentinel) != std::string::npos) {
        iam_seen = iam_seen || line.find(iam_path) != std::string::npos;
        platform_seen = platform_seen || line.find(platform_path) != std::string::npos;
        continue;
      }
      if (line.find("csentinel") != std::string::npos) continue;  // an earlier call's sentinel
      found += line + "\n";
    }
    if (iam_seen && platform_seen) return found;
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("Prism did not log the sentinel requests in time:\n" + text);
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
