// A scripted HTTP server on 127.0.0.1:0 for unit tests of HttpClient: every
// request is recorded and answered by a test-supplied function. Answers can
// be delayed (bounded) or dropped (connection closed without an answer).
#pragma once

#include <Poco/Exception.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace tokend::testing {

struct RecordedRequest {
  std::string method;
  std::string uri;  // path and query as sent
  std::string body;
  std::map<std::string, std::string> headers;  // last value of each header

  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
  std::string path() const { return uri.substr(0, uri.find('?')); }
  // Every value of query parameter `name`, in order.
  std::vector<std::string> query(const std::string& name) const {
    std::vector<std::string> values;
    const auto q = uri.find('?');
    if (q == std::string::npos) return values;
    std::string rest = uri.substr(q + 1);
    size_t start = 0;
    while (start <= rest.size()) {
      size_t end = rest.find('&', start);
      if (end == std::string::npos) end = rest.size();
      const std::string pair = rest.substr(start, end - start);
      const auto eq = pair.find('=');
      if (pair.substr(0, eq) == name)
        values.push_back(eq == std::string::npos ? "" : pair.substr(eq + 1));
      start = end + 1;
    }
    return values;
  }
};

struct Reply {
  int status = 200;
  std::string body = "{}";
  std::map<std::string, std::string> headers;
  bool drop = false;                   // close the connection without answering
  std::chrono::milliseconds delay{0};  // wait before answering (or dropping)
  bool chunked = false;                // Transfer-Encoding: chunked instead of Content-Length
  // > 0: the whole answer, status line and headers first, is written one
  // byte per interval (until the client goes away or the server stops).
  std::chrono::milliseconds trickle{0};
};

class LocalServer {
 public:
  using Handler = std::function<Reply(const RecordedRequest&)>;

  explicit LocalServer(Handler handler) : state_(std::make_shared<State>()) {
    state_->handler = std::move(handler);
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
    port_ = socket.address().port();
    auto params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(16);
    params->setKeepAlive(true);
    server_ = std::make_unique<Poco::Net::HTTPServer>(new Factory(state_), socket, params);
    server_->start();
  }
  // Wakes handlers that are still delaying, stops the server and waits
  // (bounded) until no connection thread runs any more, so that none outlives
  // the test and meets objects destroyed at exit.
  ~LocalServer() {
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      state_->stopping = true;
    }
    state_->wake.notify_all();
    server_->stopAll(true);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (server_->currentThreads() > 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  LocalServer(const LocalServer&) = delete;
  LocalServer& operator=(const LocalServer&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<RecordedRequest> requests() const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->requests;
  }
  size_t request_count() const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->requests.size();
  }
  // TCP connections accepted so far.
  int connections() const { return server_->totalConnections(); }

 private:
  struct State {
    Handler handler;
    mutable std::mutex mutex;
    std::vector<RecordedRequest> requests;
    bool stopping = false;
    std::condition_variable wake;  // signalled when stopping
  };

  class RequestHandler final : public Poco::Net::HTTPRequestHandler {
   public:
    explicit RequestHandler(std::shared_ptr<State> state) : state_(std::move(state)) {}
    void handleRequest(Poco::Net::HTTPServerRequest& request,
                       Poco::Net::HTTPServerResponse& response) override {
      RecordedRequest recorded;
      recorded.method = request.getMethod();
      recorded.uri = request.getURI();
      for (const auto& [name, value] : request) recorded.headers[name] = value;
      Poco::StreamCopier::copyToString(request.stream(), recorded.body);
      {
        std::lock_guard<std::mutex> lock(state_->mutex);
        state_->requests.push_back(recorded);
      }
      Reply reply = state_->handler(recorded);
      if (reply.delay.count() > 0) {
        std::unique_lock<std::mutex> lock(state_->mutex);
        state_->wake.wait_for(lock, reply.delay, [this] { return state_->stopping; });
      }
      if (reply.drop) {
        // Close without an answer: Poco would answer 500 to a throwing handler
        // on a live socket, so shut the socket down first.
        static_cast<Poco::Net::HTTPServerRequestImpl&>(request).socket().shutdown();
        throw Poco::IllegalStateException("dropping the connection on purpose");
      }
      if (reply.trickle.count() > 0) {
        send_trickled(static_cast<Poco::Net::HTTPServerRequestImpl&>(request).socket(), reply);
        throw Poco::IllegalStateException("the answer was written by hand");
      }
      response.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(reply.status));
      for (const auto& [name, value] : reply.headers) response.set(name, value);
      if (reply.status == 204) {
        response.send();
        return;
      }
      response.setContentType("application/json");
      if (reply.chunked)
        response.setChunkedTransferEncoding(true);
      else
        response.setContentLength(static_cast<std::streamsize>(reply.body.size()));
      response.send() << reply.body;
    }

   private:
    void send_trickled(Poco::Net::StreamSocket& socket, const Reply& reply) {
      std::string raw = "HTTP/1.1 " + std::to_string(reply.status) + " " +
                        Poco::Net::HTTPResponse::getReasonForStatus(
                            static_cast<Poco::Net::HTTPResponse::HTTPStatus>(reply.status)) +
                        "\r\nContent-Type: application/json\r\nContent-Length: " +
                        std::to_string(reply.body.size()) + "\r\n\r\n" + reply.body;
      try {
        for (char c : raw) {
          {
            std::unique_lock<std::mutex> lock(state_->mutex);
            if (state_->wake.wait_for(lock, reply.trickle, [this] { return state_->stopping; }))
              break;
          }
          if (socket.sendBytes(&c, 1) != 1) break;
        }
        socket.shutdown();
      } catch (const Poco::Exception&) {
        // The client went away.
      }
    }

    std::shared_ptr<State> state_;
  };

  class Factory final : public Poco::Net::HTTPRequestHandlerFactory {
   public:
    explicit Factory(std::shared_ptr<State> state) : state_(std::move(state)) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(
        const Poco::Net::HTTPServerRequest&) override {
      return new RequestHandler(state_);
    }

   private:
    std::shared_ptr<State> state_;
  };

  std::shared_ptr<State> state_;
  unsigned short port_ = 0;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
};

}  // namespace tokend::testing
