#include "sim/server.h"

#include <Poco/Exception.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/NetSSL.h>
#include <Poco/Net/SSLException.h>
#include <Poco/Net/SecureServerSocket.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/ThreadPool.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <istream>
#include <mutex>

namespace tokend::sim {

namespace {

constexpr std::streamsize kMaxBodyBytes = 64 * 1024 * 1024;

class RequestHandler final : public Poco::Net::HTTPRequestHandler {
 public:
  RequestHandler(Simulator& simulator, Logger& log) : simulator_(simulator), log_(log) {}

  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) override {
    auto started = std::chrono::steady_clock::now();
    SimRequest sim_request;
    sim_request.method = request.getMethod();
    const std::string& uri = request.getURI();
    size_t question = uri.find('?');
    sim_request.path = uri.substr(0, question);
    if (question != std::string::npos) sim_request.query = uri.substr(question + 1);
    sim_request.authorization = request.get("Authorization", "");
    try {
      // A request without Content-Length or chunked encoding has no body
      // (RFC 9112); Poco would otherwise read a POST until the peer closes.
      bool has_body = request.hasContentLength() || request.getChunkedTransferEncoding();
      std::istream& in = request.stream();
      char buffer[65536];
      while (has_body && (in.read(buffer, sizeof buffer) || in.gcount() > 0)) {
        sim_request.body.append(buffer, static_cast<size_t>(in.gcount()));
        if (static_cast<std::streamsize>(sim_request.body.size()) > kMaxBodyBytes) break;
      }
    } catch (const Poco::Exception& e) {
      log_.warn("request body not read", {{"path", sim_request.path}, {"error", e.message()}});
      return;
    }

    SimResponse answer = static_cast<std::streamsize>(sim_request.body.size()) > kMaxBodyBytes
                             ? error_response(413, "request body larger than 64 MiB")
                             : simulator_.handle(sim_request);

    std::string outcome;
    try {
      if (answer.close_without_answer) {
        auto& impl = dynamic_cast<Poco::Net::HTTPServerRequestImpl&>(request);
        Poco::Net::StreamSocket socket = impl.detachSocket();
        socket.close();
        outcome = "dropped";
      } else {
        response.setStatusAndReason(
            static_cast<Poco::Net::HTTPResponse::HTTPStatus>(answer.status));
        for (const auto& [name, value] : answer.headers) response.set(name, value);
        if (answer.status == 204) {
          response.send();
        } else {
          response.setContentType("application/json");
          response.setContentLength(static_cast<std::streamsize>(answer.body.size()));
          response.send().write(answer.body.data(),
                                static_cast<std::streamsize>(answer.body.size()));
        }
      }
    } catch (const std::exception& e) {
      outcome = "connection error";
    }

    double millis =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
            .count();
    std::vector<LogField> fields = {
        {"method", sim_request.method},
        {"path", sim_request.path},
        {"status", answer.close_without_answer ? 0 : answer.status},
        {"operation", answer.operation.empty() ? "unknown" : answer.operation},
        {"ms", std::round(millis * 10) / 10}};
    if (!outcome.empty()) fields.emplace_back("outcome", outcome);
    log_.log(LogLevel::Info, "request", fields);
  }

 private:
  Simulator& simulator_;
  Logger& log_;
};

class HandlerFactory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  HandlerFactory(Simulator& simulator, Logger& log) : simulator_(simulator), log_(log) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new RequestHandler(simulator_, log_);
  }

 private:
  Simulator& simulator_;
  Logger& log_;
};

void initialize_ssl_once() {
  static std::once_flag once;
  std::call_once(once, [] { Poco::Net::initializeSSL(); });
}

}  // namespace

struct SimServer::Impl {
  std::unique_ptr<Poco::ThreadPool> pool;
  std::unique_ptr<Poco::Net::HTTPServer> server;
  bool stopped = false;
};

SimServer::SimServer(std::unique_ptr<Impl> impl, int port, bool tls)
    : impl_(std::move(impl)), port_(port), tls_(tls) {}

SimServer::~SimServer() { stop(); }

Result<std::unique_ptr<SimServer>> SimServer::start(const ServerOptions& options,
                                                    Simulator& simulator, Logger& log) {
  Poco::Net::SocketAddress address;
  try {
    address = Poco::Net::SocketAddress(options.listen);
  } catch (const Poco::Exception& e) {
    return Error::invalid("--listen " + options.listen + " is not HOST:PORT (" + e.displayText() +
                          ")");
  }
  bool tls = !options.tls_cert.empty() || !options.tls_key.empty();
  Poco::Net::ServerSocket socket;
  if (tls) {
    if (options.tls_cert.empty() || options.tls_key.empty())
      return Error::invalid("TLS needs both a certificate and a key");
    try {
      initialize_ssl_once();
      Poco::Net::Context::Params params;
      params.certificateFile = options.tls_cert;
      params.privateKeyFile = options.tls_key;
      params.verificationMode = Poco::Net::Context::VERIFY_NONE;
      params.loadDefaultCAs = false;
      Poco::Net::Context::Ptr context =
          new Poco::Net::Context(Poco::Net::Context::TLS_SERVER_USE, params);
      socket = Poco::Net::SecureServerSocket(address, 128, context);
    } catch (const Poco::Net::SSLException& e) {
      return Error::tls("cannot load the TLS certificate or key: " + e.displayText());
    } catch (const Poco::IOException& e) {
      return Error::io("cannot listen on " + options.listen + ": " + e.displayText());
    } catch (const Poco::Exception& e) {
      return Error::tls("cannot set up TLS: " + e.displayText());
    }
  } else {
    try {
      socket = Poco::Net::ServerSocket(address, 128);
    } catch (const Poco::Exception& e) {
      return Error::io("cannot listen on " + options.listen + ": " + e.displayText());
    }
  }

  auto impl = std::make_unique<Impl>();
  try {
    int port = socket.address().port();
    impl->pool = std::make_unique<Poco::ThreadPool>(2, options.max_threads, 30);
    auto* params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(options.max_threads);
    params->setMaxQueued(1024);
    params->setKeepAlive(true);
    params->setMaxKeepAliveRequests(0);  // unlimited
    params->setKeepAliveTimeout(Poco::Timespan(10, 0));
    params->setTimeout(Poco::Timespan(60, 0));
    params->setServerName("astro-api-sim");
    impl->server = std::make_unique<Poco::Net::HTTPServer>(new HandlerFactory(simulator, log),
                                                           *impl->pool, socket, params);
    impl->server->start();
    return std::unique_ptr<SimServer>(new SimServer(std::move(impl), port, tls));
  } catch (const Poco::Exception& e) {
    return Error::io("cannot start serving: " + e.displayText());
  }
}

void SimServer::stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  try {
    impl_->server->stopAll(true);
    impl_->pool->joinAll();
  } catch (const Poco::Exception&) {
    // Stopping is best effort; the process is about to end.
  }
}

}  // namespace tokend::sim
