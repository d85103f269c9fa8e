#include "support/fault_proxy.h"

#include <Poco/Exception.h>
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
#include <Poco/String.h>
#include <Poco/URI.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>

namespace tokend::testing {

namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

bool same_name(const std::string& a, const std::string& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Headers that describe one hop, never forwarded.
bool hop_header(const std::string& name) {
  for (const char* hop : {"Connection", "Keep-Alive", "Content-Length", "Transfer-Encoding", "Host",
                          "Proxy-Connection", "TE", "Upgrade"})
    if (same_name(name, hop)) return true;
  return false;
}

// `target` (path?query) with query parameter `name` set to `value`.
std::string with_query_param(const std::string& target, const std::string& name,
                             const std::string& value) {
  const size_t q = target.find('?');
  const std::string path = target.substr(0, q);
  std::string query = q == std::string::npos ? "" : target.substr(q + 1);
  std::string out;
  bool replaced = false;
  size_t start = 0;
  while (start <= query.size() && !query.empty()) {
    size_t end = query.find('&', start);
    if (end == std::string::npos) end = query.size();
    std::string pair = query.substr(start, end - start);
    if (pair.substr(0, pair.find('=')) == name) {
      pair = name + "=" + value;
      replaced = true;
    }
    if (!pair.empty()) out += (out.empty() ? "" : "&") + pair;
    start = end + 1;
  }
  if (!replaced) out += (out.empty() ? "" : "&") + name + "=" + value;
  return path + "?" + out;
}

// `body` with the number after "totalCount": replaced by `count`.
std::string with_total_count(std::string body, int64_t count) {
  const std::string key = "\"totalCount\"";
  size_t at = body.find(key);
  if (at == std::string::npos) return body;
  at += key.size();
  while (at < body.size() && (body[at] == ' ' || body[at] == ':')) ++at;
  size_t end = at;
  while (end < body.size() &&
         (body[end] == '-' || std::isdigit(static_cast<unsigned char>(body[end]))))
    ++end;
  body.replace(at, end - at, std::to_string(count));
  return body;
}

ProxyRule rule(ProxyMatch match, ProxyFault fault) {
  ProxyRule r;
  r.match = std::move(match);
  r.fault = fault;
  return r;
}

struct Incoming {
  std::string method;
  std::string target;
  Headers headers;
  std::string body;
};

struct UpstreamAnswer {
  int status = 0;  // 0: no answer
  std::string reason;
  Headers headers;
  std::string body;
};

}  // namespace

ProxyMatch token_listing(const std::string& org_id, int nth) {
  ProxyMatch match{"GET", "/v1/organizations/" + org_id + "/tokens", true, nth};
  match.also_path = "/iam/v1beta1/organizations/" + org_id + "/tokens";
  return match;
}

ProxyMatch token_create(const std::string& org_id, int nth) {
  ProxyMatch match{"POST", "/v1/organizations/" + org_id + "/tokens", true, nth};
  match.also_path = "/iam/v1beta1/organizations/" + org_id + "/tokens";
  return match;
}

ProxyMatch any_request(const std::string& prefix, int nth) {
  return ProxyMatch{"", prefix, false, nth};
}

ProxyRule endless_body(ProxyMatch match) { return rule(std::move(match), ProxyFault::EndlessBody); }

ProxyRule endless_body_huge_length(ProxyMatch match) {
  return rule(std::move(match), ProxyFault::EndlessBodyHugeLength);
}

ProxyRule trickle(ProxyMatch match, std::chrono::milliseconds interval) {
  ProxyRule r = rule(std::move(match), ProxyFault::Trickle);
  r.interval = interval;
  return r;
}

ProxyRule trickle_headers(ProxyMatch match, std::chrono::milliseconds interval) {
  ProxyRule r = rule(std::move(match), ProxyFault::TrickleHeaders);
  r.interval = interval;
  return r;
}

ProxyRule repeat_page(ProxyMatch match) { return rule(std::move(match), ProxyFault::RepeatPage); }

ProxyRule lie_total_count(ProxyMatch match, int64_t total_count) {
  ProxyRule r = rule(std::move(match), ProxyFault::LieTotalCount);
  r.total_count = total_count;
  return r;
}

ProxyRule short_pages(ProxyMatch match, int page_limit) {
  ProxyRule r = rule(std::move(match), ProxyFault::ShortPages);
  r.page_limit = page_limit;
  return r;
}

ProxyRule after_answer(ProxyMatch match, std::function<void()> hook) {
  ProxyRule r = rule(std::move(match), ProxyFault::AfterAnswer);
  r.hook = std::move(hook);
  return r;
}

ProxyRule late_forward(ProxyMatch match, std::chrono::milliseconds delay) {
  ProxyRule r = rule(std::move(match), ProxyFault::LateForward);
  r.delay = delay;
  return r;
}

ProxyRule error_status(ProxyMatch match, int status, std::string retry_after) {
  ProxyRule r = rule(std::move(match), ProxyFault::Status);
  r.status = status;
  r.retry_after = std::move(retry_after);
  return r;
}

ProxyMatch every_nth(ProxyMatch match, int n) {
  match.every = n;
  return match;
}

struct FaultProxy::State {
  std::string upstream_host;
  uint16_t upstream_port = 0;

  mutable std::mutex mutex;
  std::condition_variable wake;  // stopping, late forwards done
  mutable std::condition_variable late_done;
  bool stopping = false;
  struct ActiveRule {
    ProxyRule rule;
    int selected = 0;  // requests the match selected so far
  };
  std::vector<ActiveRule> rules;
  std::vector<ProxiedRequest> log;
  std::vector<std::thread> late_threads;
  int late_scheduled = 0;
  int late_done_count = 0;
  std::atomic<uint64_t> max_endless_bytes{uint64_t{16} << 30};
  std::atomic<uint64_t> endless_bytes{0};

  // The rules that apply to a request, counting it for each selecting rule.
  std::vector<ProxyRule> select(const Incoming& in) {
    const std::string path = in.target.substr(0, in.target.find('?'));
    std::vector<ProxyRule> applied;
    ProxiedRequest logged{in.method, in.target, {}};
    std::lock_guard<std::mutex> lock(mutex);
    for (ActiveRule& active : rules) {
      const ProxyMatch& m = active.rule.match;
      if (!m.method.empty() && m.method != in.method) continue;
      auto matches = [&](const std::string& wanted) {
        return m.exact ? path == wanted : path.rfind(wanted, 0) == 0;
      };
      if (!matches(m.path_prefix) && (m.also_path.empty() || !matches(m.also_path))) continue;
      ++active.selected;
      if (m.nth != 0 && active.selected != m.nth) continue;
      if (m.every > 0 && active.selected % m.every != 0) continue;
      applied.push_back(active.rule);
      logged.faults.push_back(active.rule.fault);
    }
    log.push_back(std::move(logged));
    return applied;
  }

  // Waits up to `d`; false when the proxy is stopping.
  bool pause(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lock(mutex);
    return !wake.wait_for(lock, d, [this] { return stopping; });
  }

  bool is_stopping() {
    std::lock_guard<std::mutex> lock(mutex);
    return stopping;
  }

  UpstreamAnswer forward(const Incoming& in, const std::string& target) const {
    UpstreamAnswer answer;
    try {
      Poco::Net::HTTPClientSession session(upstream_host, upstream_port);
      session.setTimeout(Poco::Timespan(30, 0));
      Poco::Net::HTTPRequest request(in.method, target, Poco::Net::HTTPMessage::HTTP_1_1);
      for (const auto& [name, value] : in.headers)
        if (!hop_header(name)) request.add(name, value);
      if (!in.body.empty() || in.method == "POST")
        request.setContentLength(static_cast<std::streamsize>(in.body.size()));
      std::ostream& out = session.sendRequest(request);
      out << in.body;
      Poco::Net::HTTPResponse response;
      std::istream& body = session.receiveResponse(response);
      Poco::StreamCopier::copyToString(body, answer.body);
      answer.status = static_cast<int>(response.getStatus());
      answer.reason = response.getReason();
      for (const auto& [name, value] : response)
        if (!hop_header(name)) answer.headers.emplace_back(name, value);
    } catch (const Poco::Exception&) {
      answer.status = 0;
    }
    return answer;
  }
};

namespace {

using State = FaultProxy::State;

void send_answer(Poco::Net::HTTPServerResponse& response, const UpstreamAnswer& answer) {
  response.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(answer.status),
                              answer.reason);
  for (const auto& [name, value] : answer.headers) response.set(name, value);
  if (answer.status == 204 || answer.status == 304) {
    response.send();
    return;
  }
  response.setContentLength(static_cast<std::streamsize>(answer.body.size()));
  response.send() << answer.body;
}

void send_trickle(Poco::Net::HTTPServerResponse& response, const UpstreamAnswer& answer,
                  std::chrono::milliseconds interval, State& state) {
  response.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(answer.status),
                              answer.reason);
  for (const auto& [name, value] : answer.headers) response.set(name, value);
  response.setContentLength(static_cast<std::streamsize>(answer.body.size()));
  std::ostream& out = response.send();
  out.flush();
  for (size_t i = 0; i < answer.body.size(); ++i) {
    if (i > 0 && !state.pause(interval)) return;
    out.put(answer.body[i]);
    out.flush();
    if (!out.good()) return;
  }
}

// Writes the answer by hand on the raw socket, a byte per interval, then
// closes it; false when the client went away or the proxy stopped first.
void send_trickled_whole(Poco::Net::StreamSocket& socket, const UpstreamAnswer& answer,
                         std::chrono::milliseconds interval, State& state) {
  std::string raw = "HTTP/1.1 " + std::to_string(answer.status) + " " + answer.reason + "\r\n";
  for (const auto& [name, value] : answer.headers)
    if (Poco::icompare(name, "Content-Length") != 0) raw += name + ": " + value + "\r\n";
  raw += "Content-Length: " + std::to_string(answer.body.size()) + "\r\n\r\n" + answer.body;
  try {
    for (size_t i = 0; i < raw.size(); ++i) {
      if (i > 0 && !state.pause(interval)) break;
      if (socket.sendBytes(&raw[i], 1) != 1) break;
    }
    socket.shutdown();
  } catch (const Poco::Exception&) {
    // The client went away.
  }
}

void send_endless(Poco::Net::HTTPServerResponse& response, bool huge_length, State& state) {
  response.setStatus(Poco::Net::HTTPResponse::HTTP_OK);
  response.setContentType("application/json");
  if (huge_length)
    response.setContentLength64(Poco::Int64{1} << 40);
  else
    response.setChunkedTransferEncoding(true);
  std::ostream& out = response.send();
  const std::string opening = "{\"tokens\":[";
  const std::string item =
      "{\"id\":\"clendless000000000000000\",\"name\":\"endless\",\"description\":\"\"},";
  std::string chunk;
  while (chunk.size() < 65536) chunk += item;
  out << opening;
  uint64_t sent = opening.size();
  state.endless_bytes += opening.size();
  while (out.good() && sent < state.max_endless_bytes.load() && !state.is_stopping()) {
    out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    out.flush();
    if (!out.good()) break;
    sent += chunk.size();
    state.endless_bytes += chunk.size();
  }
}

class ProxyHandler final : public Poco::Net::HTTPRequestHandler {
 public:
  explicit ProxyHandler(std::shared_ptr<State> state) : state_(std::move(state)) {}

  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) override {
    Incoming in;
    in.method = request.getMethod();
    in.target = request.getURI();
    for (const auto& [name, value] : request) in.headers.emplace_back(name, value);
    Poco::StreamCopier::copyToString(request.stream(), in.body);
    const std::vector<ProxyRule> rules = state_->select(in);

    std::string target = in.target;
    std::optional<std::chrono::milliseconds> trickle_every;
    std::optional<std::chrono::milliseconds> trickle_whole_every;
    std::optional<int64_t> total_count;
    std::vector<const ProxyRule*> hooks;
    for (const ProxyRule& r : rules) {
      switch (r.fault) {
        case ProxyFault::EndlessBody:
        case ProxyFault::EndlessBodyHugeLength:
          send_endless(response, r.fault == ProxyFault::EndlessBodyHugeLength, *state_);
          return;
        case ProxyFault::Status: {
          UpstreamAnswer refused;
          refused.status = r.status;
          refused.reason = Poco::Net::HTTPResponse::getReasonForStatus(
              static_cast<Poco::Net::HTTPResponse::HTTPStatus>(r.status));
          refused.headers.emplace_back("Content-Type", "application/json");
          if (!r.retry_after.empty()) refused.headers.emplace_back("Retry-After", r.retry_after);
          refused.body = "{\"message\":\"injected by the fault proxy\",\"statusCode\":" +
                         std::to_string(r.status) + "}";
          send_answer(response, refused);
          return;
        }
        case ProxyFault::LateForward:
          schedule_late(in, target, r.delay);
          // Close without an answer: Poco would answer 500 to a throwing
          // handler on a live socket, so shut the socket down first.
          static_cast<Poco::Net::HTTPServerRequestImpl&>(request).socket().shutdown();
          throw Poco::IllegalStateException("dropping the connection on purpose");
        case ProxyFault::Trickle:
          trickle_every = r.interval;
          break;
        case ProxyFault::TrickleHeaders:
          trickle_whole_every = r.interval;
          break;
        case ProxyFault::RepeatPage:
          target = with_query_param(target, "offset", "0");
          break;
        case ProxyFault::ShortPages:
          target = with_query_param(target, "limit", std::to_string(r.page_limit));
          break;
        case ProxyFault::LieTotalCount:
          total_count = r.total_count;
          break;
        case ProxyFault::AfterAnswer:
          hooks.push_back(&r);
          break;
      }
    }

    UpstreamAnswer answer = state_->forward(in, target);
    if (answer.status == 0) {
      static_cast<Poco::Net::HTTPServerRequestImpl&>(request).socket().shutdown();
      throw Poco::IllegalStateException("the simulator did not answer");
    }
    if (total_count) answer.body = with_total_count(std::move(answer.body), *total_count);
    for (const ProxyRule* r : hooks)
      if (r->hook) r->hook();
    if (trickle_whole_every) {
      send_trickled_whole(static_cast<Poco::Net::HTTPServerRequestImpl&>(request).socket(), answer,
                          *trickle_whole_every, *state_);
      throw Poco::IllegalStateException("the answer was written by hand");
    }
    if (trickle_every)
      send_trickle(response, answer, *trickle_every, *state_);
    else
      send_answer(response, answer);
  }

 private:
  void schedule_late(const Incoming& in, const std::string& target,
                     std::chrono::milliseconds delay) {
    std::lock_guard<std::mutex> lock(state_->mutex);
    if (state_->stopping) return;
    ++state_->late_scheduled;
    std::shared_ptr<State> state = state_;
    state_->late_threads.emplace_back([state, in, target, delay] {
      if (!state->pause(delay)) return;
      state->forward(in, target);
      std::lock_guard<std::mutex> done_lock(state->mutex);
      ++state->late_done_count;
      state->late_done.notify_all();
    });
  }

  std::shared_ptr<State> state_;
};

class ProxyHandlerFactory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit ProxyHandlerFactory(std::shared_ptr<State> state) : state_(std::move(state)) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new ProxyHandler(state_);
  }

 private:
  std::shared_ptr<State> state_;
};

}  // namespace

FaultProxy::FaultProxy(const std::string& upstream) : state_(std::make_shared<State>()) {
  std::signal(SIGPIPE, SIG_IGN);
  Poco::URI uri(upstream);
  if (uri.getScheme() != "http" || uri.getHost().empty())
    throw std::runtime_error("FaultProxy: upstream must be http://HOST:PORT, got " + upstream);
  state_->upstream_host = uri.getHost();
  state_->upstream_port = uri.getPort();
  try {
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
    port_ = socket.address().port();
    auto params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(32);
    params->setMaxQueued(64);
    params->setKeepAlive(true);
    server_ =
        std::make_unique<Poco::Net::HTTPServer>(new ProxyHandlerFactory(state_), socket, params);
    server_->start();
  } catch (const Poco::Exception& e) {
    throw std::runtime_error("FaultProxy: cannot listen on 127.0.0.1: " + e.displayText());
  }
}

FaultProxy::~FaultProxy() {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->stopping = true;
  }
  state_->wake.notify_all();
  server_->stopAll(true);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (server_->currentThreads() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::vector<std::thread> late;
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    late.swap(state_->late_threads);
  }
  for (std::thread& thread : late) thread.join();
}

std::string FaultProxy::url() const { return "http://127.0.0.1:" + std::to_string(port_); }

int FaultProxy::port() const { return port_; }

void FaultProxy::set_rules(std::vector<ProxyRule> rules) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->rules.clear();
  for (ProxyRule& r : rules) state_->rules.push_back(State::ActiveRule{std::move(r), 0});
}

std::vector<ProxiedRequest> FaultProxy::requests() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->log;
}

size_t FaultProxy::request_count(const std::string& prefix) const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return static_cast<size_t>(
      std::count_if(state_->log.begin(), state_->log.end(),
                    [&](const ProxiedRequest& r) { return r.target.rfind(prefix, 0) == 0; }));
}

uint64_t FaultProxy::endless_bytes_sent() const { return state_->endless_bytes.load(); }

int FaultProxy::late_forwards_done() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->late_done_count;
}

bool FaultProxy::wait_late_forwards(std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(state_->mutex);
  return state_->late_done.wait_for(
      lock, timeout, [this] { return state_->late_done_count >= state_->late_scheduled; });
}

void FaultProxy::set_max_endless_bytes(uint64_t bytes) { state_->max_endless_bytes = bytes; }

}  // namespace tokend::testing
