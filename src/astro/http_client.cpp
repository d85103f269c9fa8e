#include "astro/http_client.h"

#include <Poco/Exception.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SSLException.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/URI.h>

#include <algorithm>
#include <deque>
#include <fstream>
#include <future>
#include <set>
#include <system_error>
#include <thread>
#include <unordered_set>

#include "astro/json.h"
#include "util/wait.h"
#include "version.h"

namespace tokend::astro {

namespace {

constexpr int kPageLimit = 1000;
// Listing pages asked for ahead of the one being read.
constexpr std::size_t kPagesAhead = 3;
// A pooled connection idle for longer than this is closed instead of reused
// (servers commonly drop idle keep-alive connections after 5-60 s).
constexpr std::chrono::seconds kMaxIdle{4};
constexpr const char* kRedacted = "(sensitive value)";

std::string encode_component(const std::string& value) {
  std::string out;
  Poco::URI::encode(value, "/?#[]@!$&'()*+,;=:%\"<>\\^`{|} ", out);
  return out;
}

// JSON Schema lengths count characters, not bytes.
size_t code_points(const std::string& utf8) {
  return static_cast<size_t>(std::count_if(utf8.begin(), utf8.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

// How many pages a listing may take: what totalCount needs at the page size
// the first page showed (the limit asked for, or fewer when the server pages
// shorter), plus slack for tokens created while it runs.
int page_budget(int total_count, int first_page_size, int max_pages, int slack) {
  const int64_t size = std::clamp(first_page_size, 1, kPageLimit);
  const int64_t needed = std::max<int64_t>(total_count, 0) / size + 1 + slack;
  return static_cast<int>(std::min<int64_t>(max_pages, needed));
}

std::string path_only(const std::string& path_and_query) {
  return path_and_query.substr(0, path_and_query.find('?'));
}

Poco::Timespan timespan(std::chrono::milliseconds d) {
  return Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(std::max<int64_t>(1, d.count())) *
                        1000);
}

const std::string& method_name(HttpMethod method) {
  static const std::string get = Poco::Net::HTTPRequest::HTTP_GET;
  static const std::string post = Poco::Net::HTTPRequest::HTTP_POST;
  static const std::string del = Poco::Net::HTTPRequest::HTTP_DELETE;
  switch (method) {
    case HttpMethod::Get:
      return get;
    case HttpMethod::Post:
      return post;
    case HttpMethod::Delete:
      return del;
  }
  return get;
}

// Reads the body of an answer from `in` into `body`: at most `max_bytes`
// (false beyond, with `body` cleared) and no later than `deadline` (throws
// Poco::TimeoutException). Each wait for bytes is bounded by what is left of
// the deadline, so a trickling answer cannot stretch it.
bool read_bounded_body(Poco::Net::HTTPClientSession& session, std::istream& in,
                       std::chrono::steady_clock::time_point deadline, size_t max_bytes,
                       std::string& body) {
  std::streambuf* buffer = in.rdbuf();
  char chunk[65536];
  for (;;) {
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) throw Poco::TimeoutException();
    if (buffer->in_avail() <= 0) {
      // One read from the connection, waiting at most until the deadline.
      session.socket().setReceiveTimeout(
          timespan(std::chrono::duration_cast<std::chrono::milliseconds>(left)));
      if (buffer->sgetc() == std::char_traits<char>::eof()) return true;
    }
    const auto available = std::min<std::streamsize>(buffer->in_avail(), sizeof chunk);
    const std::streamsize got = buffer->sgetn(chunk, available);
    if (got <= 0) return true;
    if (body.size() + static_cast<size_t>(got) > max_bytes) {
      std::string().swap(body);
      return false;
    }
    body.append(chunk, static_cast<size_t>(got));
  }
}

void initialize_ssl_once() {
  static const bool initialized = [] {
    Poco::Net::initializeSSL();
    return true;
  }();
  (void)initialized;
}

}  // namespace

// One keep-alive connection: a Poco session whose connect (and TLS
// handshake) can be performed on its own, so that a failure to connect is
// told apart from a failure after the request left.
class HttpConnection {
 public:
  virtual ~HttpConnection() = default;
  virtual Poco::Net::HTTPClientSession& session() = 0;
  // Connects (and completes the TLS handshake). Throws Poco exceptions.
  virtual void open() = 0;

  bool reused = false;
  std::chrono::steady_clock::time_point idle_since{};
};

namespace {

template <class PocoSession>
class SessionConnection final : public HttpConnection {
 public:
  template <class... Args>
  explicit SessionConnection(Args&&... args) : session_(std::forward<Args>(args)...) {}
  Poco::Net::HTTPClientSession& session() override { return session_; }
  void open() override { session_.open(); }

 private:
  struct Session final : PocoSession {
    using PocoSession::PocoSession;
    void open() { this->reconnect(); }
  };
  Session session_;
};

}  // namespace

struct HttpClient::Exchange {
  Operation op;
  HttpMethod method;
  std::string path_and_query;
  std::optional<std::string> body;  // JSON
  bool idempotent = true;
};

struct HttpClient::Answer {
  int status = 0;
  std::string reason;
  std::string body;
  std::string retry_after;
};

namespace {

// What one attempt produced: an answer, or how the exchange broke.
struct AttemptResult {
  Delivery delivery = Delivery::Answered;
  bool timed_out = false;
  bool body_timed_out = false;  // the answer began, its body missed the deadline
  bool too_large = false;       // the answer is over max_response_bytes
  bool cut_by_stop = false;     // shut down by the RequestWatch because of a shutdown
  std::string failure;          // transport failure description
};

}  // namespace

Result<std::unique_ptr<HttpClient>> HttpClient::create(HttpClientOptions options, Logger& logger) {
  Poco::URI uri;
  try {
    uri = Poco::URI(options.api_url);
  } catch (const Poco::Exception& e) {
    return Error::invalid("api_url " + options.api_url + " is not a URL: " + e.message());
  }
  const std::string scheme = uri.getScheme();
  if (scheme != "http" && scheme != "https")
    return Error::invalid("api_url " + options.api_url + " must start with https:// or http://");
  if (uri.getHost().empty()) return Error::invalid("api_url " + options.api_url + " has no host");
  if (!uri.getQuery().empty() || !uri.getFragment().empty())
    return Error::invalid("api_url " + options.api_url + " must not have a query or fragment");
  if (options.organization_id.empty()) return Error::invalid("organization_id is empty");
  if (options.retry.max_attempts < 1) options.retry.max_attempts = 1;
  std::string base_path = uri.getPath();
  while (!base_path.empty() && base_path.back() == '/') base_path.pop_back();

  Poco::AutoPtr<Poco::Net::Context> context;
  if (scheme == "https") {
    initialize_ssl_once();
    if (!options.ca_file.empty()) {
      std::ifstream probe(options.ca_file);
      if (!probe) return Error::io("ca_file " + options.ca_file + " cannot be read");
    }
    try {
      Poco::Net::Context::Params params;
      params.caLocation = options.ca_file;
      params.verificationMode = Poco::Net::Context::VERIFY_RELAXED;
      params.loadDefaultCAs = true;
      context = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, params);
      context->disableProtocols(Poco::Net::Context::PROTO_SSLV2 | Poco::Net::Context::PROTO_SSLV3 |
                                Poco::Net::Context::PROTO_TLSV1 |
                                Poco::Net::Context::PROTO_TLSV1_1);
    } catch (const Poco::Exception& e) {
      return Error::tls(
          "cannot set up TLS" +
          (options.ca_file.empty() ? std::string() : " with ca_file " + options.ca_file) + ": " +
          e.displayText());
    }
  }
  const auto port = static_cast<uint16_t>(uri.getPort());
  return std::unique_ptr<HttpClient>(
      new HttpClient(std::move(options), logger, scheme, uri.getHost(), port, base_path, context));
}

HttpClient::HttpClient(HttpClientOptions options, Logger& logger, std::string scheme,
                       std::string host, uint16_t port, std::string base_path,
                       Poco::AutoPtr<Poco::Net::Context> tls_context)
    : options_(std::move(options)),
      logger_(logger),
      scheme_(std::move(scheme)),
      host_(std::move(host)),
      port_(port),
      tokens_prefix_(base_path + (options_.api_version == ApiVersion::V1 ? "/v1" : "/iam/v1beta1") +
                     "/organizations/" + encode_component(options_.organization_id)),
      lookups_prefix_(base_path +
                      (options_.api_version == ApiVersion::V1 ? "/v1" : "/platform/v1beta1") +
                      "/organizations/" + encode_component(options_.organization_id)),
      user_agent_(std::string("astro-tokend/") + kVersion),
      tls_context_(std::move(tls_context)),
      limiter_(options_.rate_limits, {},
               [stop = options_.stop](RateLimiter::TimePoint until) {
                 sleep_until_unless_stopped(until, stop);
               }),
      random_(std::random_device{}()) {}

HttpClient::~HttpClient() = default;

std::unique_ptr<HttpConnection> HttpClient::new_connection() {
  std::unique_ptr<HttpConnection> connection;
  if (tls_context_)
    connection = std::make_unique<SessionConnection<Poco::Net::HTTPSClientSession>>(host_, port_,
                                                                                    tls_context_);
  else
    connection = std::make_unique<SessionConnection<Poco::Net::HTTPClientSession>>(host_, port_);
  Poco::Net::HTTPClientSession& session = connection->session();
  session.setTimeout(timespan(options_.connect_timeout), timespan(options_.request_timeout),
                     timespan(options_.request_timeout));
  session.setKeepAlive(true);
  // Reuse is decided here (kMaxIdle, the server's Connection header), never by
  // a silent reconnect inside Poco.
  session.setKeepAliveTimeout(Poco::Timespan(24 * 3600, 0));
  return connection;
}

// Closes every idle connection past kMaxIdle, wherever it sits in the pool:
// the newest are reused first, so older ones would otherwise stay open (and
// hold a socket the server has long closed) until the pool ran dry.
static void close_stale_connections(std::vector<std::unique_ptr<HttpConnection>>& idle) {
  const auto now = std::chrono::steady_clock::now();
  std::erase_if(idle, [&](const std::unique_ptr<HttpConnection>& connection) {
    return now - connection->idle_since >= kMaxIdle;
  });
}

std::unique_ptr<HttpConnection> HttpClient::take_connection(bool fresh) {
  if (!fresh) {
    std::lock_guard<std::mutex> lock(pool_mutex_);
    close_stale_connections(idle_);
    while (!idle_.empty()) {
      std::unique_ptr<HttpConnection> connection = std::move(idle_.back());
      idle_.pop_back();
      if (connection->session().connected()) {
        connection->reused = true;
        return connection;
      }
    }
  }
  return new_connection();
}

void HttpClient::return_connection(std::unique_ptr<HttpConnection> connection) {
  connection->idle_since = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(pool_mutex_);
  close_stale_connections(idle_);
  if (idle_.size() < options_.max_idle_connections) idle_.push_back(std::move(connection));
}

void HttpClient::close_idle_connections() {
  std::vector<std::unique_ptr<HttpConnection>> closing;
  {
    std::lock_guard<std::mutex> lock(pool_mutex_);
    closing.swap(idle_);
  }
  // Closed here, outside the lock: a TLS close may write to the socket.
}

double HttpClient::unit_random() {
  std::lock_guard<std::mutex> lock(random_mutex_);
  return std::uniform_real_distribution<double>(0.0, 1.0)(random_);
}

Error HttpClient::scrubbed(Error error) const {
  const std::string& secret = options_.bearer_token.reveal();
  if (secret.empty()) return error;
  for (std::string* text : {&error.message, &error.request_id}) {
    for (size_t at = text->find(secret); at != std::string::npos; at = text->find(secret, at))
      text->replace(at, secret.size(), kRedacted);
  }
  return error;
}

Result<HttpClient::Answer> HttpClient::perform(const Exchange& exchange) {
  const std::string op_name(to_string(exchange.op));
  const std::string& method = method_name(exchange.method);
  const std::string where = host_ + ":" + std::to_string(port_);
  bool free_retry_left = true;  // one immediate retry when a reused connection turns out stale

  const auto stopped = [&] { return Error::unavailable(op_name + ": not sent, shutting down"); };

  for (int attempt = 1; attempt <= options_.retry.max_attempts;) {
    limiter_.acquire(exchange.method);
    // Shutdown ends the retries of a request, never its first attempt: a
    // change the engine has started is sent and its outcome committed.
    if (attempt > 1 && options_.stop && options_.stop->load()) return stopped();
    const auto started = std::chrono::steady_clock::now();
    const auto deadline = started + options_.request_timeout;
    const auto time_left = [&deadline] {
      return timespan(std::max(std::chrono::milliseconds(1),
                               std::chrono::duration_cast<std::chrono::milliseconds>(
                                   deadline - std::chrono::steady_clock::now())));
    };
    std::unique_ptr<HttpConnection> connection = take_connection(!exchange.idempotent);
    const bool reused = connection->reused;
    AttemptResult result;
    Answer answer;
    bool keep_alive = false;

    // Phase 1: connect. A failure here means the request never left.
    if (!connection->session().connected()) {
      try {
        connection->open();
      } catch (const Poco::Net::SSLException& e) {
        result.delivery = Delivery::TlsFailed;
        result.failure = e.displayText();
      } catch (const Poco::TimeoutException&) {
        result.delivery = Delivery::NotSent;
        result.failure = "connect timed out";
      } catch (const Poco::Exception& e) {
        result.delivery = Delivery::NotSent;
        result.failure = e.displayText();
      } catch (const std::exception& e) {
        result.delivery = Delivery::NotSent;
        result.failure = e.what();
      }
    }
    // Phase 2: send and receive. A failure here may come after the server acted.
    if (result.failure.empty()) {
      bool answer_began = false;
      RequestWatch::Ticket ticket;
      try {
        Poco::Net::HTTPClientSession& session = connection->session();
        ticket = watch_.watch(session.socket().impl()->sockfd(), deadline,
                              exchange.method != HttpMethod::Get);
        session.socket().setSendTimeout(time_left());
        session.socket().setReceiveTimeout(time_left());
        Poco::Net::HTTPRequest request(method, exchange.path_and_query,
                                       Poco::Net::HTTPMessage::HTTP_1_1);
        request.setKeepAlive(true);
        request.set("User-Agent", user_agent_);
        request.set("Accept", "application/json");
        request.set("Authorization", "Bearer " + options_.bearer_token.reveal());
        if (exchange.body) {
          request.setContentType("application/json");
          request.setContentLength(static_cast<std::streamsize>(exchange.body->size()));
        } else if (exchange.method == HttpMethod::Post) {
          request.setContentLength(0);
        }
        std::ostream& out = session.sendRequest(request);
        if (exchange.body) out << *exchange.body;
        out.flush();
        Poco::Net::HTTPResponse response;
        session.socket().setReceiveTimeout(time_left());
        std::istream& in = session.receiveResponse(response);
        answer_began = true;
        const bool declared_too_large =
            response.hasContentLength() &&
            static_cast<uint64_t>(response.getContentLength64()) > options_.max_response_bytes;
        if (declared_too_large ||
            !read_bounded_body(session, in, deadline, options_.max_response_bytes, answer.body)) {
          result.too_large = true;
          result.delivery = Delivery::LostAfterSend;
          result.failure = "the answer is larger than max_response_bytes (" +
                           std::to_string(options_.max_response_bytes) + " bytes)";
        } else if (response.hasContentLength() &&
                   answer.body.size() < static_cast<uint64_t>(response.getContentLength64())) {
          throw Poco::IOException("the answer ended early");
        }
        answer.status = static_cast<int>(response.getStatus());
        answer.reason = response.getReason();
        answer.retry_after = response.get("Retry-After", "");
        keep_alive = response.getKeepAlive();
      } catch (const Poco::TimeoutException&) {
        result.timed_out = true;
      } catch (const Poco::Exception& e) {
        result.delivery = Delivery::LostAfterSend;
        result.failure = e.displayText();
      } catch (const std::exception& e) {
        result.delivery = Delivery::LostAfterSend;
        result.failure = e.what();
      }
      // A socket the watch shut down fails however Poco notices it (an early
      // end, a reset, even a body that looks complete): the cut decides.
      switch (ticket.finish()) {
        case RequestWatch::Cut::None:
          break;
        case RequestWatch::Cut::Deadline:
          result.timed_out = true;
          break;
        case RequestWatch::Cut::Shutdown:
          result.delivery = Delivery::LostAfterSend;
          result.cut_by_stop = true;
          result.failure = "cut short by shutdown";
          keep_alive = false;
          break;
      }
      if (result.timed_out && !result.cut_by_stop) {
        result.delivery = Delivery::LostAfterSend;
        result.body_timed_out = answer_began;
        result.failure =
            (answer_began ? "the answer did not arrive whole within " : "no answer within ") +
            std::to_string(options_.request_timeout.count()) + "ms";
        keep_alive = false;
      }
    }

    const auto elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::steady_clock::now() - started)
                                .count();
    if (options_.observer)
      options_.observer(exchange.op, result.failure.empty() ? answer.status : 0,
                        std::chrono::steady_clock::now() - started);
    logger_.debug("astro api request",
                  {{"op", op_name},
                   {"method", method},
                   {"path", path_only(exchange.path_and_query)},
                   {"status", result.failure.empty() ? LogValue(answer.status) : LogValue("none")},
                   {"attempt", attempt},
                   {"ms", elapsed_ms}});

    if (result.failure.empty()) {
      if (keep_alive) return_connection(std::move(connection));
    } else {
      connection.reset();
      if (result.cut_by_stop) {
        if (exchange.idempotent)
          return scrubbed(Error::unavailable(op_name + ": " + result.failure));
        return scrubbed(Error::ambiguous(
            op_name + ": outcome unknown, the request may have taken effect: " + result.failure));
      }
      if (reused && exchange.idempotent && !result.timed_out && !result.too_large &&
          result.delivery == Delivery::LostAfterSend && free_retry_left) {
        // The server had closed the idle connection; this says nothing about the server.
        free_retry_left = false;
        logger_.debug("astro api connection was stale, reconnecting", {{"op", op_name}});
        continue;
      }
    }

    Verdict verdict = judge_attempt(exchange.idempotent, result.delivery, answer.status);
    if (verdict == Verdict::Retry && (result.too_large || result.body_timed_out)) {
      // Asking again would read the same answer: give up now.
      if (result.too_large) return scrubbed(Error::internal(op_name + ": " + result.failure));
      return scrubbed(Error::unavailable(op_name + ": " + result.failure + " from " + where));
    }
    auto answer_error = [&](ErrorKind kind, const std::string& prefix) {
      std::string message = prefix;
      std::string request_id;
      if (auto body = json::decode_error(answer.body)) {
        message += json::describe(*body);
        request_id = body->request_id;
      } else {
        message += "HTTP " + std::to_string(answer.status) +
                   (answer.reason.empty() ? "" : " " + answer.reason);
      }
      return scrubbed(Error{kind, op_name + ": " + message, request_id, answer.status});
    };

    switch (verdict) {
      case Verdict::Success:
        return answer;
      case Verdict::Fail:
        if (result.delivery == Delivery::TlsFailed)
          return scrubbed(Error::tls(op_name + ": TLS handshake with " + where +
                                     " failed: " + result.failure +
                                     " (the server certificate is not trusted or does not "
                                     "match; set ca_file to a bundle with its CA)"));
        return answer_error(error_kind_for_status(answer.status), "");
      case Verdict::Ambiguous:
        if (result.failure.empty())
          return answer_error(ErrorKind::Ambiguous,
                              "outcome unknown, the request may have taken effect: ");
        return scrubbed(Error::ambiguous(op_name +
                                         ": outcome unknown, the request may have taken "
                                         "effect: " +
                                         result.failure));
      case Verdict::Retry:
        break;
    }

    // Retry, if allowed.
    std::chrono::milliseconds wait = backoff_delay(options_.retry, attempt, unit_random());
    std::string reason =
        result.failure.empty() ? "HTTP " + std::to_string(answer.status) : result.failure;
    if (answer.status == 429) {
      if (auto asked = parse_retry_after(answer.retry_after, std::chrono::system_clock::now())) {
        if (*asked > options_.retry.max_retry_after)
          return answer_error(ErrorKind::RateLimited, "rate limited, the API asks to wait " +
                                                          std::to_string(asked->count() / 1000) +
                                                          "s: ");
        wait = *asked;
      }
      if (attempt == options_.retry.max_attempts) return answer_error(ErrorKind::RateLimited, "");
      limiter_.pause(exchange.method, wait);
    } else if (attempt == options_.retry.max_attempts) {
      if (result.failure.empty()) return answer_error(ErrorKind::Unavailable, "");
      const std::string prefix = result.delivery == Delivery::NotSent
                                     ? "cannot connect to " + where + ": "
                                     : "no answer from " + where + ": ";
      return scrubbed(Error::unavailable(op_name + ": " + prefix + result.failure + " (after " +
                                         std::to_string(attempt) + " attempts)"));
    }
    const std::string shown_reason = scrubbed(Error::internal(reason)).message;
    logger_.log(
        LogLevel::Warn, "astro api request failed, retrying",
        {{"op", op_name},
         {"reason", shown_reason},
         {"attempt", attempt},
         {"wait_ms", static_cast<int64_t>(wait.count())}},
        retry_sentence(op_name, wait, shown_reason, attempt + 1, options_.retry.max_attempts));
    if (answer.status != 429 &&
        !sleep_until_unless_stopped(std::chrono::steady_clock::now() + wait, options_.stop))
      return stopped();
    ++attempt;
  }
  return Error::internal(op_name + ": retry loop ended without an outcome");
}

Result<TokenListing> HttpClient::list_tokens() {
  TokenListing listing;
  std::unordered_set<std::string> seen;
  std::string repeated;  // the first id listed on two pages
  int offset = 0;
  int first_total = -1, last_total = -1;
  int budget = kMaxPages;
  // Oldest first: tokens created while the listing runs land on later pages
  // instead of shifting the ones not yet read.
  const auto request_page = [this](int at) {
    return perform({Operation::ListApiTokens, HttpMethod::Get,
                    tokens_prefix_ + "/tokens?offset=" + std::to_string(at) +
                        "&limit=" + std::to_string(kPageLimit) + "&sorts=createdAt:asc",
                    std::nullopt, true});
  };
  // Once a page's counts say where the following pages start and that there
  // are more, the next pages are asked for while this one is read, each at
  // the offset a page-by-page listing would use when every page is as long
  // as this one: one page ahead after the first page, one more after each
  // page as long as the one before it, up to kPagesAhead. So a listing sends
  // the requests of a page-by-page listing; only a page whose length differs
  // from that of a run of equal pages before it (or a totalCount that
  // shrinks) wastes the requests sent after it, which are then waited for
  // and dropped. Requests in flight are waited for on every way out.
  std::deque<std::pair<int, std::future<Result<Answer>>>> ahead;  // by offset
  std::size_t previous_count = 0;
  std::size_t equal_pages = 0;  // pages in a row as long as the one before
  for (int page = 0; page < budget; ++page) {
    if (!ahead.empty() && ahead.front().first != offset) ahead.clear();
    Result<Answer> answer = [&] {
      if (ahead.empty()) return request_page(offset);
      Result<Answer> asked = ahead.front().second.get();
      ahead.pop_front();
      return asked;
    }();
    if (!answer.ok()) return answer.error();
    // Asks for pages of `count` tokens from `start` on (after those asked
    // for already) until `depth` are in flight, none at or past totalCount
    // or beyond `pages` pages.
    const auto ask_ahead = [&](int total_count, std::size_t count, std::size_t depth, int64_t start,
                               int pages) {
      int64_t next =
          ahead.empty() ? start : int64_t{ahead.back().first} + static_cast<int64_t>(count);
      while (count > 0 && next < total_count && ahead.size() < depth &&
             page + 1 + static_cast<int>(ahead.size()) < pages) {
        try {
          ahead.emplace_back(static_cast<int>(next),
                             std::async(std::launch::async, request_page, static_cast<int>(next)));
        } catch (const std::system_error&) {
          return;  // no thread to spare: the next page is asked for after this one
        }
        next += static_cast<int64_t>(count);
      }
    };
    // As soon as the counts are read: the next page. Once the page turns out
    // to advance the listing: up to `depth`.
    std::size_t depth = 1;
    const auto counted = [&](int total_count, std::size_t count) {
      const int pages =
          page == 0 ? page_budget(total_count, static_cast<int>(count), kMaxPages, kPageSlack)
                    : budget;
      equal_pages = page > 0 && count == previous_count ? equal_pages + 1 : 1;
      previous_count = count;
      depth = std::min(kPagesAhead, equal_pages);
      ask_ahead(total_count, count, 1, int64_t{offset} + static_cast<int64_t>(count), pages);
    };
    auto decoded = json::decode_token_page(answer->body, options_.api_version, counted);
    if (!decoded.ok())
      return Error{ErrorKind::Internal,
                   "ListApiTokens: unexpected answer: " + decoded.error().message, "",
                   answer->status};
    const int received = static_cast<int>(decoded->tokens.size());
    if (first_total < 0) {
      first_total = decoded->total_count;
      budget = page_budget(first_total, received, kMaxPages, kPageSlack);
    }
    last_total = decoded->total_count;
    size_t fresh = 0;
    for (ApiToken& token : decoded->tokens) {
      // Tokens deleted between pages shift later ones onto pages already
      // read; never report one twice.
      if (seen.insert(token.id).second) {
        listing.tokens.push_back(std::move(token));
        ++fresh;
      } else if (repeated.empty()) {
        repeated = token.id;
      }
    }
    offset += received;
    if (offset >= decoded->total_count) {
      const size_t held = listing.tokens.size();
      if (!repeated.empty())
        listing.problem = "token " + repeated + " was listed on two pages";
      else if (held < static_cast<size_t>(std::max(first_total, 0)))
        listing.problem = "the pages held " + std::to_string(held) +
                          " tokens, but the first said totalCount " + std::to_string(first_total);
      else if (last_total != first_total)
        listing.problem = "totalCount changed from " + std::to_string(first_total) + " to " +
                          std::to_string(last_total) + " between pages";
      listing.consistent = listing.problem.empty();
      return listing;
    }
    if (received == 0)
      return Error::internal(
          "ListApiTokens: the API reported " + std::to_string(decoded->total_count) +
          " tokens but returned an empty page at offset " + std::to_string(offset));
    if (fresh == 0)
      return Error::internal("ListApiTokens: the page at offset " +
                             std::to_string(offset - received) +
                             " lists only tokens already listed; the listing does not advance");
    ask_ahead(decoded->total_count, static_cast<std::size_t>(received), depth, offset, budget);
  }
  return Error::internal("ListApiTokens: gave up after " + std::to_string(budget) +
                         " pages (totalCount " + std::to_string(first_total) + ")");
}

namespace {
Result<ApiToken> decode_single(const std::string& body, ApiVersion version, Operation op,
                               int status, bool must_carry_value) {
  auto token = json::decode_token(body, version);
  const std::string op_name(to_string(op));
  // For create and rotate the call took effect; an unreadable answer loses
  // the new value, which the caller must resolve like any ambiguous outcome.
  const ErrorKind kind = must_carry_value ? ErrorKind::Ambiguous : ErrorKind::Internal;
  if (!token.ok())
    return Error{kind, op_name + ": unexpected answer: " + token.error().message, "", status};
  if (must_carry_value && token->token.empty())
    return Error{kind, op_name + ": the answer carries no token value", "", status};
  return token;
}
}  // namespace

Result<ApiToken> HttpClient::get_token(const std::string& token_id) {
  if (token_id.empty()) return Error::invalid("GetApiToken: empty token id");
  auto answer =
      perform({Operation::GetApiToken, HttpMethod::Get,
               tokens_prefix_ + "/tokens/" + encode_component(token_id), std::nullopt, true});
  if (!answer.ok()) return answer.error();
  return decode_single(answer->body, options_.api_version, Operation::GetApiToken, answer->status,
                       false);
}

Result<ApiToken> HttpClient::create_token(const CreateTokenRequest& request) {
  // Never send what the contract forbids (CreateApiTokenRequest).
  if (request.expiry_period_in_days &&
      (*request.expiry_period_in_days < 1 || *request.expiry_period_in_days > 3650))
    return Error::invalid("CreateApiToken: tokenExpiryPeriodInDays must be between 1 and 3650");
  if (options_.api_version == ApiVersion::V1Beta1 && request.kind != TokenKind::Standard)
    return Error::invalid("CreateApiToken: the v1beta1 API cannot create a " +
                          std::string(to_string(request.kind)) +
                          " token; set api_version = \"v1\"");
  auto answer = perform({Operation::CreateApiToken, HttpMethod::Post, tokens_prefix_ + "/tokens",
                         json::encode_create_request(request, options_.api_version), false});
  if (!answer.ok()) return answer.error();
  return decode_single(answer->body, options_.api_version, Operation::CreateApiToken,
                       answer->status, true);
}

Result<ApiToken> HttpClient::update_token(const std::string& token_id,
                                          const UpdateTokenRequest& request) {
  if (token_id.empty()) return Error::invalid("UpdateApiToken: empty token id");
  // UpdateApiTokenRequest: name 1..256 characters, description at most 500.
  if (request.name.empty() || code_points(request.name) > 256)
    return Error::invalid("UpdateApiToken: name must be 1 to 256 characters");
  if (code_points(request.description) > 500)
    return Error::invalid("UpdateApiToken: description must be at most 500 characters");
  auto answer = perform({Operation::UpdateApiToken, HttpMethod::Post,
                         tokens_prefix_ + "/tokens/" + encode_component(token_id),
                         json::encode_update_request(request), true});
  if (!answer.ok()) return answer.error();
  return decode_single(answer->body, options_.api_version, Operation::UpdateApiToken,
                       answer->status, false);
}

Status HttpClient::update_token_roles(const std::string& token_id, const RoleSet& roles) {
  if (token_id.empty()) return Error::invalid("UpdateApiTokenRoles: empty token id");
  // The contract requires at least one role (UpdateApiTokenRolesRequest.roles minItems 1).
  if (roles.empty()) return Error::invalid("UpdateApiTokenRoles: a token needs at least one role");
  for (const Role& role : roles) {
    if (role.entity_type != EntityType::Dag && role.entity_type != EntityType::DagTag) continue;
    const std::string which =
        std::string(to_string(role.entity_type)) + " role " + role.role + " on " + role.entity_id;
    if (options_.api_version == ApiVersion::V1Beta1)
      return Error::invalid("UpdateApiTokenRoles: the v1beta1 API cannot hold the " + which +
                            "; set api_version = \"v1\"");
    if (role.deployment_id.empty())
      return Error::invalid("UpdateApiTokenRoles: the " + which + " names no deployment_id");
  }
  auto answer = perform({Operation::UpdateApiTokenRoles, HttpMethod::Post,
                         tokens_prefix_ + "/tokens/" + encode_component(token_id) + "/roles",
                         json::encode_roles_request(roles, options_.api_version), true});
  if (!answer.ok()) return answer.error();
  return ok_status();
}

Result<ApiToken> HttpClient::rotate_token(const std::string& token_id) {
  if (token_id.empty()) return Error::invalid("RotateApiToken: empty token id");
  auto answer = perform({Operation::RotateApiToken, HttpMethod::Post,
                         tokens_prefix_ + "/tokens/" + encode_component(token_id) + "/rotate",
                         std::nullopt, false});
  if (!answer.ok()) return answer.error();
  return decode_single(answer->body, options_.api_version, Operation::RotateApiToken,
                       answer->status, true);
}

Status HttpClient::delete_token(const std::string& token_id) {
  if (token_id.empty()) return Error::invalid("DeleteApiToken: empty token id");
  auto answer =
      perform({Operation::DeleteApiToken, HttpMethod::Delete,
               tokens_prefix_ + "/tokens/" + encode_component(token_id), std::nullopt, true});
  if (!answer.ok()) return answer.error();
  return ok_status();
}

Result<std::vector<std::string>> HttpClient::existing_workspaces(
    const std::vector<std::string>& ids) {
  return existing(Operation::ListWorkspaces, "workspaces", "workspaceIds", ids);
}

Result<std::vector<std::string>> HttpClient::existing_deployments(
    const std::vector<std::string>& ids) {
  return existing(Operation::ListDeployments, "deployments", "deploymentIds", ids);
}

Result<std::vector<std::string>> HttpClient::existing(Operation op, const std::string& collection,
                                                      const std::string& filter,
                                                      const std::vector<std::string>& ids) {
  std::vector<std::string> wanted;
  std::set<std::string> unique;
  for (const std::string& id : ids)
    if (unique.insert(id).second) wanted.push_back(id);
  if (wanted.empty()) return wanted;

  std::string filter_query;
  if (wanted.size() <= kMaxIdsPerQuery)
    for (const std::string& id : wanted) filter_query += "&" + filter + "=" + encode_component(id);

  const std::string op_name(to_string(op));
  std::unordered_set<std::string> found;
  int offset = 0;
  int budget = kMaxPages;
  for (int page = 0; page < budget; ++page) {
    auto answer =
        perform({op, HttpMethod::Get,
                 lookups_prefix_ + "/" + collection + "?offset=" + std::to_string(offset) +
                     "&limit=" + std::to_string(kPageLimit) + filter_query,
                 std::nullopt, true});
    if (!answer.ok()) return answer.error();
    auto decoded = json::decode_id_page(answer->body, collection);
    if (!decoded.ok())
      return Error{ErrorKind::Internal, op_name + ": unexpected answer: " + decoded.error().message,
                   "", answer->status};
    const int received = static_cast<int>(decoded->ids.size());
    if (page == 0) budget = page_budget(decoded->total_count, received, kMaxPages, kPageSlack);
    found.insert(decoded->ids.begin(), decoded->ids.end());
    offset += received;
    if (offset >= decoded->total_count) {
      std::vector<std::string> existing_ids;
      for (const std::string& id : wanted)
        if (found.count(id)) existing_ids.push_back(id);
      return existing_ids;
    }
    if (received == 0)
      return Error::internal(op_name + ": the API reported " +
                             std::to_string(decoded->total_count) + " " + collection +
                             " but returned an empty page at offset " + std::to_string(offset));
  }
  return Error::internal(op_name + ": gave up after " + std::to_string(budget) + " pages");
}

}  // namespace tokend::astro
