#include "daemon/http_server.h"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/ThreadPool.h>
#include <Poco/URI.h>

namespace tokend::daemon {

namespace {

using Poco::Net::HTTPResponse;

class EndpointHandler final : public Poco::Net::HTTPRequestHandler {
 public:
  explicit EndpointHandler(const HealthEndpoints& endpoints) : endpoints_(endpoints) {}

  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) override {
    try {
      std::string path = Poco::URI(request.getURI()).getPath();
      bool head = request.getMethod() == "HEAD";
      const bool status_page = (path == "/" && endpoints_.status_html) ||
                               (path == "/status.json" && endpoints_.status_json);
      if (path != "/metrics" && path != "/healthz" && path != "/readyz" && !status_page) {
        send(response, head, HTTPResponse::HTTP_NOT_FOUND, "text/plain; charset=utf-8",
             "not found\n");
        return;
      }
      if (request.getMethod() != "GET" && !head) {
        response.set("Allow", "GET, HEAD");
        send(response, head, HTTPResponse::HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8",
             "method not allowed\n");
        return;
      }
      if (path == "/") {
        response.set("Content-Security-Policy",
                     "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
                     "form-action 'none'; frame-ancestors 'none'");
        response.set("X-Content-Type-Options", "nosniff");
        send(response, head, HTTPResponse::HTTP_OK, "text/html; charset=utf-8",
             endpoints_.status_html());
      } else if (path == "/status.json") {
        response.set("X-Content-Type-Options", "nosniff");
        send(response, head, HTTPResponse::HTTP_OK, "application/json", endpoints_.status_json());
      } else if (path == "/metrics") {
        send(response, head, HTTPResponse::HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
             endpoints_.metrics());
      } else if (path == "/healthz") {
        send(response, head, HTTPResponse::HTTP_OK, "text/plain; charset=utf-8", "ok\n");
      } else {
        Readiness readiness = endpoints_.readiness();
        send(response, head,
             readiness.ready ? HTTPResponse::HTTP_OK : HTTPResponse::HTTP_SERVICE_UNAVAILABLE,
             "text/plain; charset=utf-8", readiness.reason + "\n");
      }
    } catch (const Poco::Exception&) {
      // The client went away or sent nonsense; nothing to report.
    } catch (const std::exception&) {
    }
  }

 private:
  static void send(Poco::Net::HTTPServerResponse& response, bool head,
                   HTTPResponse::HTTPStatus status, const std::string& content_type,
                   const std::string& body) {
    response.setStatus(status);
    response.setContentType(content_type);
    response.setContentLength(static_cast<std::streamsize>(body.size()));
    response.set("Cache-Control", "no-store");
    std::ostream& out = response.send();
    if (!head) out << body;
  }

  const HealthEndpoints& endpoints_;
};

class EndpointFactory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit EndpointFactory(HealthEndpoints endpoints) : endpoints_(std::move(endpoints)) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new EndpointHandler(endpoints_);
  }

 private:
  HealthEndpoints endpoints_;
};

}  // namespace

Result<std::unique_ptr<HealthServer>> HealthServer::start(const std::string& listen,
                                                          HealthEndpoints endpoints) {
  Poco::Net::SocketAddress address;
  try {
    address = Poco::Net::SocketAddress(listen);
  } catch (const Poco::Exception& e) {
    return Error::invalid("listen address \"" + listen + "\" is not HOST:PORT: " + e.displayText());
  }
  std::unique_ptr<HealthServer> server(new HealthServer());
  try {
    Poco::Net::ServerSocket socket;
    socket.bind(address, /*reuseAddress=*/true, /*reusePort=*/false);
    socket.listen(16);
    server->address_ = socket.address().toString();
    auto params = Poco::makeAuto<Poco::Net::HTTPServerParams>();
    params->setMaxThreads(2);
    params->setMaxQueued(16);
    params->setKeepAlive(true);
    params->setKeepAliveTimeout(Poco::Timespan(5, 0));
    params->setTimeout(Poco::Timespan(10, 0));
    server->pool_ = std::make_unique<Poco::ThreadPool>(1, 2, 60);
    server->server_ = std::make_unique<Poco::Net::HTTPServer>(
        Poco::makeShared<EndpointFactory>(std::move(endpoints)), *server->pool_, socket, params);
    server->server_->start();
  } catch (const Poco::Exception& e) {
    return Error::io("cannot serve on " + listen + ": " + e.displayText());
  }
  return server;
}

HealthServer::~HealthServer() {
  if (!server_) return;
  try {
    server_->stopAll(true);
  } catch (const Poco::Exception&) {
  }
  server_.reset();
  if (pool_) pool_->joinAll();
}

}  // namespace tokend::daemon
