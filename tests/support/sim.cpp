#include "support/sim.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <thread>

#include "astro/json.h"

namespace tokend::testing {

namespace {

constexpr const char* kBearerEnv = "TOKEND_SIM_BEARER_TOKEN";

std::string random_bearer_token() {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device device;
  std::string token = "sim-bearer-";
  for (int i = 0; i < 32; ++i) token += kAlphabet[device() % 36];
  return token;
}

[[noreturn]] void unexpected(const std::string& what, const HttpResponse& r) {
  std::string detail = r.status == 0 ? "no answer (" + r.error + ")"
                                     : "HTTP " + std::to_string(r.status) + ": " + r.body;
  throw std::runtime_error("SimControl: " + what + " failed: " + detail);
}

// The full path of `program` found on $PATH, or `program` itself.
std::string find_program(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t colon = dirs.find(':', start);
    std::string dir =
        dirs.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + program;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return program;
}

std::string strip_trailing_slash(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

}  // namespace

sim::FaultRule fail_next(const std::string& operation, int status, int count,
                         int retry_after_seconds) {
  sim::FaultRule rule;
  rule.operation = operation;
  rule.status = status;
  rule.count = count;
  rule.retry_after = retry_after_seconds;
  return rule;
}

sim::FaultRule fail_rate(const std::string& operation, int status, double rate) {
  sim::FaultRule rule;
  rule.operation = operation;
  rule.status = status;
  rule.rate = rate;
  return rule;
}

sim::FaultRule drop_next(const std::string& operation, int count, sim::DropWhen when) {
  sim::FaultRule rule;
  rule.operation = operation;
  rule.drop_count = count;
  rule.drop_when = when;
  return rule;
}

sim::FaultRule add_latency(const std::string& operation, int latency_ms) {
  sim::FaultRule rule;
  rule.operation = operation;
  rule.latency_ms = latency_ms;
  return rule;
}

uint64_t RequestStats::count(const std::string& operation) const {
  auto it = counts.find(operation);
  return it == counts.end() ? 0 : it->second;
}

uint64_t RequestStats::count(const std::string& operation, int status) const {
  auto it = status_counts.find(operation);
  if (it == status_counts.end()) return 0;
  auto s = it->second.find(status);
  return s == it->second.end() ? 0 : s->second;
}

SimControl::SimControl(std::string base_url, HttpOptions http)
    : base_url_(strip_trailing_slash(std::move(base_url))), http_(std::move(http)) {}

HttpResponse SimControl::call(const std::string& method, const std::string& path,
                              const std::string& body) const {
  return http_request({method, base_url_ + path, {}, body}, http_);
}

bool SimControl::healthy() const {
  HttpResponse r = call("GET", "/_sim/health");
  return r.status == 200;
}

RequestStats SimControl::requests() const {
  HttpResponse r = call("GET", "/_sim/requests");
  if (r.status != 200) unexpected("GET /_sim/requests", r);
  RequestStats stats;
  try {
    Poco::JSON::Parser parser;
    auto root = parser.parse(r.body).extract<Poco::JSON::Object::Ptr>();
    stats.total = root->getValue<uint64_t>("total");
    auto counts = root->getObject("counts");
    for (const auto& [operation, n] : *counts) stats.counts[operation] = n.convert<uint64_t>();
    auto status_counts = root->getObject("statusCounts");
    for (const auto& [operation, by_status] : *status_counts) {
      auto object = by_status.extract<Poco::JSON::Object::Ptr>();
      for (const auto& [status, n] : *object)
        stats.status_counts[operation][std::stoi(status)] = n.convert<uint64_t>();
    }
    auto requests = root->getArray("requests");
    for (unsigned i = 0; i < requests->size(); ++i) {
      auto item = requests->getObject(i);
      stats.requests.push_back(
          {item->getValue<uint64_t>("seq"), item->getValue<std::string>("method"),
           item->getValue<std::string>("path"), item->getValue<std::string>("query"),
           item->getValue<std::string>("operation"), item->getValue<int>("status")});
    }
  } catch (const Poco::Exception& e) {
    throw std::runtime_error("SimControl: GET /_sim/requests answered malformed JSON: " +
                             e.displayText());
  }
  return stats;
}

void SimControl::reset_requests() const {
  HttpResponse r = call("DELETE", "/_sim/requests");
  if (r.status != 204) unexpected("DELETE /_sim/requests", r);
}

sim::FaultPlan SimControl::set_faults(const sim::FaultPlan& plan) const {
  HttpResponse r = call("PUT", "/_sim/faults", sim::encode_fault_plan(plan));
  if (r.status != 200) unexpected("PUT /_sim/faults", r);
  auto set = sim::decode_fault_plan(r.body);
  if (!set.ok()) unexpected("PUT /_sim/faults (answer: " + set.error().message + ")", r);
  return *set;
}

sim::FaultPlan SimControl::set_faults(std::vector<sim::FaultRule> rules,
                                      std::optional<uint64_t> random_seed) const {
  return set_faults(sim::FaultPlan{std::move(rules), random_seed});
}

sim::FaultPlan SimControl::faults() const {
  HttpResponse r = call("GET", "/_sim/faults");
  if (r.status != 200) unexpected("GET /_sim/faults", r);
  auto plan = sim::decode_fault_plan(r.body);
  if (!plan.ok()) unexpected("GET /_sim/faults (answer: " + plan.error().message + ")", r);
  return *plan;
}

void SimControl::clear_faults() const {
  HttpResponse r = call("DELETE", "/_sim/faults");
  if (r.status != 204) unexpected("DELETE /_sim/faults", r);
}

astro::ApiToken SimControl::patch_token(const std::string& token_id,
                                        const sim::TokenPatch& patch) const {
  HttpResponse r = call("PATCH", "/_sim/tokens/" + token_id, sim::encode_token_patch(patch));
  if (r.status != 200) unexpected("PATCH /_sim/tokens/" + token_id, r);
  auto token = sim::v1::decode_token(r.body);
  if (!token.ok()) unexpected("PATCH /_sim/tokens (answer: " + token.error().message + ")", r);
  return *token;
}

sim::BulkCreated SimControl::create_tokens(const sim::BulkCreate& request) const {
  HttpResponse r = call("POST", "/_sim/tokens", sim::encode_bulk_create(request));
  if (r.status != 200) unexpected("POST /_sim/tokens", r);
  auto created = sim::decode_bulk_created(r.body);
  if (!created.ok()) unexpected("POST /_sim/tokens (answer: " + created.error().message + ")", r);
  return *created;
}

sim::BulkCreated SimControl::create_tokens(const sim::NewToken& templ, int count,
                                           bool include_values) const {
  std::string body = "{\"template\":" + sim::encode_new_token(templ) +
                     ",\"count\":" + std::to_string(count) +
                     ",\"includeValues\":" + (include_values ? "true" : "false") + "}";
  HttpResponse r = call("POST", "/_sim/tokens", body);
  if (r.status != 200) unexpected("POST /_sim/tokens", r);
  auto created = sim::decode_bulk_created(r.body);
  if (!created.ok()) unexpected("POST /_sim/tokens (answer: " + created.error().message + ")", r);
  return *created;
}

bool SimControl::delete_token(const std::string& token_id) const {
  HttpResponse r = call("DELETE", "/_sim/tokens/" + token_id);
  if (r.status == 404) return false;
  if (r.status != 204) unexpected("DELETE /_sim/tokens/" + token_id, r);
  return true;
}

std::vector<astro::ApiToken> SimControl::tokens() const {
  HttpResponse r = call("GET", "/_sim/tokens");
  if (r.status != 200) unexpected("GET /_sim/tokens", r);
  auto page = sim::v1::decode_token_page(r.body);
  if (!page.ok()) unexpected("GET /_sim/tokens (answer: " + page.error().message + ")", r);
  return std::move(page->tokens);
}

std::optional<astro::ApiToken> SimControl::token(const std::string& token_id) const {
  HttpResponse r = call("GET", "/_sim/tokens/" + token_id);
  if (r.status == 404) return std::nullopt;
  if (r.status != 200) unexpected("GET /_sim/tokens/" + token_id, r);
  auto token = sim::v1::decode_token(r.body);
  if (!token.ok()) unexpected("GET /_sim/tokens (answer: " + token.error().message + ")", r);
  return *token;
}

std::vector<std::string> SimControl::issued_values() const {
  HttpResponse r = call("GET", "/_sim/issued-values");
  if (r.status != 200) unexpected("GET /_sim/issued-values", r);
  auto values = sim::decode_string_list(r.body, "values");
  if (!values.ok())
    unexpected("GET /_sim/issued-values (answer: " + values.error().message + ")", r);
  return *values;
}

SimProcess::SimProcess(SimOptions options) : options_(std::move(options)) {
  if (options_.bearer_token.empty()) options_.bearer_token = random_bearer_token();
  start();
}

SimProcess::~SimProcess() {
  if (process_) stop();
}

void SimProcess::start() {
  std::string port_file = dir_.file("port");
  std::filesystem::remove(port_file);
  std::vector<std::string> argv = {
      TOKEND_SIM_BIN, "--listen",      "127.0.0.1:0",        "--port-file", port_file,
      "--org",        options_.org_id, "--bearer-token-env", kBearerEnv};
  if (!options_.seed_file.empty()) argv.insert(argv.end(), {"--seed", options_.seed_file});
  if (!options_.data_file.empty()) argv.insert(argv.end(), {"--data", options_.data_file});
  if (!options_.rate_limits)
    argv.push_back("--no-rate-limits");
  else if (!options_.rate_limits_spec.empty())
    argv.insert(argv.end(), {"--rate-limits", options_.rate_limits_spec});
  if (!options_.tls_cert.empty() || !options_.tls_key.empty())
    argv.insert(argv.end(), {"--tls-cert", options_.tls_cert, "--tls-key", options_.tls_key});
  if (!options_.serve_v1beta1) argv.insert(argv.end(), {"--api", "v1"});
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());

  RunOptions run;
  run.env[kBearerEnv] = options_.bearer_token;
  process_ = std::make_unique<BackgroundProcess>(argv, run, "", dir_.file("sim.stderr"));

  auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
  while (true) {
    if (auto port = wait_for_file(port_file, std::chrono::milliseconds(20))) {
      port_ = std::stoi(*port);
      break;
    }
    if (!process_->running()) {
      process_.reset();
      throw std::runtime_error("astro-api-sim exited before serving:\n" + stderr_text());
    }
    if (std::chrono::steady_clock::now() > deadline) {
      process_.reset();
      throw std::runtime_error("astro-api-sim did not write its port file in time:\n" +
                               stderr_text());
    }
  }
  bool tls = !options_.tls_cert.empty();
  base_url_ = std::string(tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_);
}

std::string SimProcess::v1_url() const {
  return base_url_ + "/v1/organizations/" + options_.org_id;
}

std::string SimProcess::iam_url() const {
  return base_url_ + "/iam/v1beta1/organizations/" + options_.org_id;
}

std::string SimProcess::platform_url() const {
  return base_url_ + "/platform/v1beta1/organizations/" + options_.org_id;
}

std::string SimProcess::stderr_text() const { return read_file(dir_.file("sim.stderr")); }

int SimProcess::stop(std::chrono::milliseconds timeout) {
  if (!process_) return -1;
  int code = -1;
  process_->signal(SIGTERM);
  if (auto result = process_->wait_for_exit(timeout)) {
    code = result->exit_code;
  } else {
    process_->signal(SIGKILL);
    process_->wait_for_exit(std::chrono::seconds(5));
  }
  process_.reset();
  return code;
}

void SimProcess::restart() {
  stop();
  start();
}

bool SimProcess::running() { return process_ && process_->running(); }

SimControl SimProcess::control() const {
  HttpOptions http;
  http.ca_file = options_.ca_file;
  return SimControl(base_url_, http);
}

HttpResponse SimProcess::api(const std::string& method, const std::string& path,
                             const std::string& body) const {
  HttpOptions http;
  http.ca_file = options_.ca_file;
  return http_request({method, base_url_ + path, bearer_header(options_.bearer_token), body}, http);
}

TestTls make_test_tls(const std::string& dir) {
  TestTls tls{dir + "/ca.pem", dir + "/server.pem", dir + "/server.key"};
  std::string ca_key = dir + "/ca.key";
  std::string csr = dir + "/server.csr";
  std::string extensions = dir + "/server.ext";
  write_file(extensions,
             "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
             "basicConstraints=critical,CA:FALSE\n"
             "keyUsage=critical,digitalSignature,keyEncipherment\n"
             "extendedKeyUsage=serverAuth\n");
  const std::vector<std::vector<std::string>> steps = {
      {"openssl",
       "req",
       "-x509",
       "-newkey",
       "ec",
       "-pkeyopt",
       "ec_paramgen_curve:prime256v1",
       "-nodes",
       "-keyout",
       ca_key,
       "-out",
       tls.ca_file,
       "-days",
       "2",
       "-subj",
       "/CN=astro-tokend throwaway test CA",
       "-addext",
       "basicConstraints=critical,CA:TRUE",
       "-addext",
       "keyUsage=critical,keyCertSign,cRLSign"},
      {"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
       "-keyout", tls.key_file, "-out", csr, "-subj", "/CN=localhost"},
      {"openssl", "x509", "-req", "-in", csr, "-CA", tls.ca_file, "-CAkey", ca_key,
       "-CAcreateserial", "-out", tls.cert_file, "-days", "2", "-extfile", extensions},
  };
  for (auto step : steps) {
    step[0] = find_program("openssl");
    ProcessResult result = run_process(step, {.env = {},
                                              .unset_env = {},
                                              .cwd = dir,
                                              .stdin_data = "",
                                              .timeout = std::chrono::seconds(60)});
    if (result.exit_code != 0)
      throw std::runtime_error("openssl " + step[1] + " failed: " + result.err);
  }
  return tls;
}

}  // namespace tokend::testing
