#include "runtime/runtime.h"

#include <iostream>

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "astro/credentials.h"
#include "astro/http_client.h"
#include "util/files.h"

namespace tokend::runtime {

void RequestCounter::record(astro::Operation op, int http_status) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++counts_[{op, http_status}];
  ++total_;
}

int RequestCounter::total() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return total_;
}

int RequestCounter::count(astro::Operation op) const {
  std::lock_guard<std::mutex> lock(mutex_);
  int n = 0;
  for (const auto& [key, value] : counts_)
    if (key.first == op) n += value;
  return n;
}

std::map<std::pair<astro::Operation, int>, int> RequestCounter::snapshot() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return counts_;
}

apply::Dependencies Runtime::dependencies() {
  return apply::Dependencies{client(), *store_, sink_, clock_, *logger_, hooks_};
}

void Runtime::fence(state::WriterLease& lease) {
  if (store_) store_->fence_writes(lease.epoch());
  if (client_) fenced_client_ = std::make_unique<apply::FencedClient>(*client_, lease);
}

state::LeaseTimings lease_timings(const spec::Config& config) {
  return state::LeaseTimings{config.ha_lease, config.ha_renew, config.ha_retry};
}

state::StoreLocation store_location(const spec::Config& config) {
  state::StoreLocation where;
  where.backend = config.state_backend == spec::StateBackend::Postgres ? state::Backend::Postgres
                                                                       : state::Backend::Sqlite;
  where.path = config.state_path;
  where.dsn = config.state_dsn;
  return where;
}

namespace {

bool uses_state_file(const spec::Config& config) {
  return config.state_backend == spec::StateBackend::Sqlite && config.state_path != ":memory:";
}

// Records the config's organization in a state that records none yet.
Status bind_organization(state::StateStore& store, const spec::Config& config, Logger& logger) {
  auto bound = store.bind_organization(config.organization_id);
  if (!bound.ok()) {
    // Bound to another organization meanwhile: say so as check_organization does.
    Status mismatch = apply::check_organization(store, config.organization_id);
    if (!mismatch.ok()) return mismatch;
    return bound.error();
  }
  if (!*bound) return ok_status();
  if (store.serial() > 0) {
    logger.info("the state recorded no organization; it now belongs to the configured one",
                {{"organization_id", config.organization_id}});
  } else {
    logger.debug("new state bound to its organization",
                 {{"organization_id", config.organization_id}});
  }
  return ok_status();
}

}  // namespace

bool state_exists(const spec::Config& config) {
  std::error_code ec;
  return !uses_state_file(config) || std::filesystem::exists(config.state_path, ec);
}

astro::ApiVersion api_version(const spec::Config& config) {
  return config.api_version == spec::ApiVersion::V1Beta1 ? astro::ApiVersion::V1Beta1
                                                         : astro::ApiVersion::V1;
}

void warn_if_deprecated_api(const spec::Config& config, Logger& logger) {
  if (config.api_version != spec::ApiVersion::V1Beta1) return;
  logger.log(LogLevel::Warn, "astro api v1beta1 is deprecated",
             {{"api_version", "v1beta1"}, {"support_ends", "2027-01"}},
             "Warning: [astro] api_version = \"v1beta1\" speaks the deprecated Astro API, and "
             "v1beta1 support ends in January 2027; set api_version = \"v1\" (the default)");
}

Result<std::unique_ptr<state::WriterLease>> take_writer_lock(const spec::Config& config,
                                                             const std::string& command) {
  if (uses_state_file(config)) {
    if (Status made = make_private_directories(
            std::filesystem::path(config.state_path).parent_path().string());
        !made.ok())
      return made.error();
  }
  return state::acquire_writer(store_location(config), command, lease_timings(config));
}

Result<std::unique_ptr<Runtime>> open_runtime(const spec::Config& config,
                                              const RuntimeOptions& options,
                                              std::ostream& log_stream) {
  std::unique_ptr<Runtime> runtime(new Runtime(options.remember_fingerprints));
  LogFormat format = parse_log_format(config.log_format).value_or(LogFormat::Text);
  if (format == LogFormat::Text && options.human_log) format = LogFormat::Human;
  LogStyle style;
  style.journal = &log_stream == &std::cerr && stderr_is_journal();
  runtime->logger_ = std::make_unique<Logger>(
      log_stream, parse_log_level(config.log_level).value_or(LogLevel::Info), format, style);

  if (options.open_store && options.create_state_dir && uses_state_file(config)) {
    if (Status made = make_private_directories(
            std::filesystem::path(config.state_path).parent_path().string());
        !made.ok())
      return made.error();
  }
  if (options.take_lock) {
    auto lock =
        state::acquire_writer(store_location(config), options.command, lease_timings(config));
    if (!lock.ok()) return lock.error();
    runtime->lock_ = std::move(lock.value());
  }
  if (options.open_store) {
    auto store = state::open_store(store_location(config));
    if (!store.ok()) return store.error();
    runtime->store_ = std::move(store.value());
    const bool bind = options.take_lock || options.bind_organization;
    if (bind || options.need_client) {
      if (Status same = apply::check_organization(*runtime->store_, config.organization_id);
          !same.ok())
        return same.error();
    }
    if (bind) {
      if (Status bound = bind_organization(*runtime->store_, config, *runtime->logger_);
          !bound.ok())
        return bound.error();
    }
  }

  if (options.need_client) {
    warn_if_deprecated_api(config, *runtime->logger_);
    auto token = astro::load_bearer_token({config.token_file, config.token_env});
    if (!token.ok()) return token.error();
    astro::HttpClientOptions client_options;
    client_options.api_url = config.api_url;
    client_options.organization_id = config.organization_id;
    client_options.api_version = api_version(config);
    client_options.bearer_token = std::move(token.value());
    client_options.request_timeout = config.timeout;
    client_options.max_response_bytes = static_cast<size_t>(config.max_response_bytes);
    client_options.stop = options.stop;
    client_options.connect_timeout = std::min(config.timeout, client_options.connect_timeout);
    client_options.ca_file = config.ca_file;
    client_options.rate_limits.get = config.rate_limits.get;
    client_options.rate_limits.post = config.rate_limits.post;
    client_options.rate_limits.delete_ = config.rate_limits.del;
    std::shared_ptr<RequestCounter> counter = runtime->requests_;
    astro::RequestObserver extra = options.observer;
    client_options.observer = [counter, extra](astro::Operation op, int status,
                                               std::chrono::duration<double> elapsed) {
      counter->record(op, status);
      if (extra) extra(op, status, elapsed);
    };
    auto client = astro::HttpClient::create(std::move(client_options), *runtime->logger_);
    if (!client.ok()) return client.error();
    runtime->client_ = std::move(client.value());
  }
  if (runtime->lock_) runtime->fence(*runtime->lock_);
  return runtime;
}

}  // namespace tokend::runtime
