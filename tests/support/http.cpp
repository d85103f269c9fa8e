#include "support/http.h"

#include <Poco/Exception.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/NetSSL.h>
#include <Poco/StreamCopier.h>
#include <Poco/URI.h>

#include <mutex>
#include <stdexcept>

namespace tokend::testing {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

std::unique_ptr<Poco::Net::HTTPClientSession> open_session(const Poco::URI& origin,
                                                           const HttpOptions& options) {
  Poco::Timespan timeout(
      std::chrono::duration_cast<std::chrono::microseconds>(options.timeout).count());
  std::unique_ptr<Poco::Net::HTTPClientSession> session;
  if (origin.getScheme() == "https") {
    static std::once_flag ssl_once;
    std::call_once(ssl_once, [] { Poco::Net::initializeSSL(); });
    Poco::Net::Context::Params params;
    params.caLocation = options.ca_file;
    params.loadDefaultCAs = options.ca_file.empty();
    params.verificationMode = Poco::Net::Context::VERIFY_RELAXED;
    Poco::Net::Context::Ptr context =
        new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, params);
    session = std::make_unique<Poco::Net::HTTPSClientSession>(origin.getHost(), origin.getPort(),
                                                              context);
  } else if (origin.getScheme() == "http") {
    session = std::make_unique<Poco::Net::HTTPClientSession>(origin.getHost(), origin.getPort());
  } else {
    throw std::invalid_argument("unsupported URL scheme: " + origin.getScheme());
  }
  session->setTimeout(timeout, timeout, timeout);
  session->setKeepAlive(true);
  return session;
}

HttpResponse exchange(Poco::Net::HTTPClientSession& session, const std::string& method,
                      const std::string& target, const std::string& body,
                      const HttpHeaders& headers) {
  HttpResponse result;
  try {
    Poco::Net::HTTPRequest request(method, target, Poco::Net::HTTPMessage::HTTP_1_1);
    bool has_content_type = false;
    for (const auto& [name, value] : headers) {
      request.add(name, value);
      has_content_type = has_content_type || iequals(name, "Content-Type");
    }
    if (!body.empty()) {
      if (!has_content_type) request.setContentType("application/json");
      request.setContentLength(static_cast<std::streamsize>(body.size()));
    } else if (method == "POST" || method == "PUT" || method == "PATCH") {
      request.setContentLength(0);
    }
    std::ostream& out = session.sendRequest(request);
    if (!body.empty()) out.write(body.data(), static_cast<std::streamsize>(body.size()));
    Poco::Net::HTTPResponse response;
    std::istream& in = session.receiveResponse(response);
    Poco::StreamCopier::copyToString(in, result.body);
    result.status = static_cast<int>(response.getStatus());
    for (const auto& [name, value] : response) result.headers.emplace_back(name, value);
  } catch (const Poco::TimeoutException& e) {
    result = HttpResponse{};
    result.error = "timed out: " + e.displayText();
    result.timed_out = true;
    session.reset();
  } catch (const Poco::Exception& e) {
    result = HttpResponse{};
    result.error = e.displayText();
    session.reset();
  } catch (const std::exception& e) {
    result = HttpResponse{};
    result.error = e.what();
    session.reset();
  }
  return result;
}

std::string target_of(const Poco::URI& uri) {
  std::string target = uri.getPathEtc();
  return target.empty() ? "/" : target;
}

}  // namespace

std::optional<std::string> HttpResponse::header(std::string_view name) const {
  for (const auto& [n, v] : headers)
    if (iequals(n, name)) return v;
  return std::nullopt;
}

HttpResponse http_request(const HttpRequest& request, const HttpOptions& options) {
  try {
    Poco::URI uri(request.url);
    auto session = open_session(uri, options);
    session->setKeepAlive(false);
    return exchange(*session, request.method, target_of(uri), request.body, request.headers);
  } catch (const Poco::Exception& e) {
    HttpResponse result;
    result.error = e.displayText();
    return result;
  } catch (const std::exception& e) {
    HttpResponse result;
    result.error = e.what();
    return result;
  }
}

struct HttpConnection::Impl {
  Poco::URI origin;
  HttpOptions options;
  std::unique_ptr<Poco::Net::HTTPClientSession> session;
};

HttpConnection::HttpConnection(const std::string& origin, HttpOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->origin = Poco::URI(origin);
  impl_->options = std::move(options);
}

HttpConnection::~HttpConnection() = default;

HttpResponse HttpConnection::request(const std::string& method, const std::string& target,
                                     const std::string& body, const HttpHeaders& headers) {
  try {
    if (!impl_->session) impl_->session = open_session(impl_->origin, impl_->options);
  } catch (const std::exception& e) {
    HttpResponse result;
    result.error = e.what();
    return result;
  }
  HttpResponse result = exchange(*impl_->session, method, target, body, headers);
  if (result.status == 0) impl_->session.reset();
  return result;
}

HttpHeaders bearer_header(const std::string& token) {
  return {{"Authorization", "Bearer " + token}};
}

}  // namespace tokend::testing
