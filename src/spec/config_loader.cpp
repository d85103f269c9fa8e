// Loading of the daemon config (product.md §2).
#include <algorithm>
#include <cctype>
#include <climits>
#include <filesystem>
#include <system_error>

#include "spec/delivery.h"
#include "spec/keys.h"
#include "spec/loader.h"
#include "spec/loading.h"
#include "spec/text.h"
#include "spec/toml_document.h"
#include "util/duration.h"
#include "util/log.h"
#include "util/suggest.h"

namespace tokend::spec {

namespace {

namespace fs = std::filesystem;

// [astro] max_response_bytes: from a few small answers to 4 GiB.
constexpr std::int64_t kMinResponseBytes = 4096;
constexpr std::int64_t kMaxResponseBytes = std::int64_t{4} << 30;

// "" or HOST:PORT with a non-empty host ("[::1]" for IPv6) and a port 0..65535.
bool is_listen_address(std::string_view text) {
  if (text.empty()) return true;
  std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) return false;
  std::string_view host = text.substr(0, colon);
  std::string_view port = text.substr(colon + 1);
  if (port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  if (std::stoi(std::string(port)) > 65535) return false;
  if (host.front() == '[') return host.size() > 2 && host.back() == ']';
  return host.find(':') == std::string_view::npos;
}

// Whether a libpq connection string names a password: a "password" keyword
// (key=value form) or a password in a postgresql:// URI's user info or query.
bool dsn_has_password(std::string_view dsn) {
  std::string lower(dsn);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (std::string_view scheme : {"postgresql://", "postgres://"}) {
    if (lower.rfind(scheme, 0) != 0) continue;
    std::string_view rest = std::string_view(lower).substr(scheme.size());
    std::size_t end = rest.find_first_of("/?");
    std::string_view authority = rest.substr(0, end);
    std::size_t at = authority.rfind('@');
    if (at != std::string_view::npos && authority.substr(0, at).find(':') != std::string_view::npos)
      return true;
    std::size_t query = rest.find('?');
    if (query == std::string_view::npos) return false;
    std::string_view params = rest.substr(query + 1);
    while (!params.empty()) {
      std::size_t amp = params.find('&');
      std::string_view param = params.substr(0, amp);
      if (param.rfind("password=", 0) == 0) return true;
      if (amp == std::string_view::npos) break;
      params.remove_prefix(amp + 1);
    }
    return false;
  }
  // key = value pairs, separated by whitespace; values may be quoted.
  std::size_t i = 0;
  while (i < lower.size()) {
    while (i < lower.size() && std::isspace(static_cast<unsigned char>(lower[i]))) ++i;
    std::size_t key_start = i;
    while (i < lower.size() && lower[i] != '=' &&
           !std::isspace(static_cast<unsigned char>(lower[i])))
      ++i;
    std::string_view key = std::string_view(lower).substr(key_start, i - key_start);
    while (i < lower.size() && std::isspace(static_cast<unsigned char>(lower[i]))) ++i;
    if (i < lower.size() && lower[i] == '=') ++i;
    while (i < lower.size() && std::isspace(static_cast<unsigned char>(lower[i]))) ++i;
    if (key == "password") return true;
    if (i < lower.size() && lower[i] == '\'') {
      for (++i; i < lower.size() && lower[i] != '\''; ++i)
        if (lower[i] == '\\') ++i;
      ++i;
    } else {
      while (i < lower.size() && !std::isspace(static_cast<unsigned char>(lower[i]))) ++i;
    }
  }
  return false;
}

bool is_http_url(std::string_view text) {
  for (std::string_view scheme : {"http://", "https://"}) {
    if (text.substr(0, scheme.size()) == scheme && text.size() > scheme.size() &&
        text[scheme.size()] != '/')
      return true;
  }
  return false;
}

class ConfigParser {
 public:
  ConfigParser(const TomlDocument& document, const fs::path& directory, ConfigReading& reading)
      : document_(document), directory_(directory), reading_(reading), config_(reading.config) {}

  void parse() {
    TableReader top(document_, document_.root(), "", reading_.diagnostics);
    top.report_unknown_keys(config_keys(""));
    if (const toml::value* astro = top.table("astro")) {
      parse_astro(*astro);
    } else if (!top.has("astro")) {
      reading_.diagnostics.push_back(
          Diagnostic{SourcePos{document_.name(), 0, 0},
                     "missing required key \"organization_id\" in [astro]",
                     {}});
    }
    if (const toml::value* specs = top.table("specs")) parse_specs(*specs);
    if (const toml::value* state = top.table("state")) parse_state(*state);
    if (const toml::value* ha = top.table("ha")) parse_ha(*ha);
    if (const toml::value* reconcile = top.table("reconcile")) parse_reconcile(*reconcile);
    if (const toml::value* secrets = top.table("secrets")) parse_secrets(*secrets);
    if (const toml::value* server = top.table("server")) parse_server(*server);
    if (const toml::value* log = top.table("log")) parse_log(*log);
  }

 private:
  TableReader reader(const toml::value& table, std::string context) {
    return TableReader(document_, table, std::move(context), reading_.diagnostics);
  }

  std::string resolve(const std::string& path) const {
    if (path.empty()) return path;
    fs::path p(path);
    if (p.is_absolute()) return p.lexically_normal().string();
    return (directory_ / p).lexically_normal().string();
  }

  // A non-empty path string, resolved against the config's directory.
  std::optional<std::string> path_value(TableReader& table, std::string_view key,
                                        bool allow_empty) {
    std::optional<std::string> value = table.string(key);
    if (!value) return std::nullopt;
    if (value->empty() && !allow_empty) {
      table.error_at_value(key, std::string(key) + " must not be empty");
      return std::nullopt;
    }
    return resolve(*value);
  }

  void parse_astro(const toml::value& astro) {
    TableReader t = reader(astro, "[astro]");
    t.report_unknown_keys(config_keys("astro"));
    if (std::optional<std::string> id = t.string("organization_id")) {
      if (id->empty()) t.error_at_value("organization_id", "organization_id must not be empty");
      config_.organization_id = *id;
    } else if (!t.has("organization_id")) {
      t.error_at_table("missing required key \"organization_id\" in [astro]");
    }
    if (std::optional<std::string> url = t.string("api_url")) {
      if (!is_http_url(*url)) {
        t.error_at_value("api_url",
                         "api_url must be an http:// or https:// URL, got " + in_quotes(*url));
      } else {
        while (url->size() > 1 && url->back() == '/') url->pop_back();
        config_.api_url = *url;
      }
    }
    if (auto version = t.string("api_version")) {
      if (*version == "v1")
        config_.api_version = ApiVersion::V1;
      else if (*version == "v1beta1")
        config_.api_version = ApiVersion::V1Beta1;
      else
        t.error_at_value("api_version", "api_version must be \"v1\" or \"v1beta1\", got " +
                                            in_quotes(*version) +
                                            did_you_mean(*version, {"v1", "v1beta1"}));
    }
    if (auto file = path_value(t, "token_file", true)) config_.token_file = *file;
    if (auto env = t.string("token_env")) config_.token_env = *env;
    if (auto timeout = t.duration("timeout")) {
      if (timeout->count() <= 0)
        t.error_at_value("timeout", "timeout must be greater than 0");
      else
        config_.timeout = *timeout;
    }
    if (auto max_bytes = t.integer("max_response_bytes")) {
      if (*max_bytes < kMinResponseBytes || *max_bytes > kMaxResponseBytes)
        t.error_at_value("max_response_bytes", "max_response_bytes must be between " +
                                                   std::to_string(kMinResponseBytes) + " and " +
                                                   std::to_string(kMaxResponseBytes) + ", got " +
                                                   std::to_string(*max_bytes));
      else
        config_.max_response_bytes = *max_bytes;
    }
    if (auto file = path_value(t, "ca_file", true)) config_.ca_file = *file;
    if (const toml::value* limits = t.table("rate_limits")) {
      TableReader r = reader(*limits, "[astro.rate_limits]");
      r.report_unknown_keys(config_keys("astro.rate_limits"));
      const auto rate = [&r](std::string_view key, double& out) {
        std::optional<double> value = r.number(key);
        if (!value) return;
        if (*value > 0)
          out = *value;
        else
          r.error_at_value(
              key, std::string(key) + " must be greater than 0, got " + literal(*r.find(key)));
      };
      rate("get", config_.rate_limits.get);
      rate("post", config_.rate_limits.post);
      rate("delete", config_.rate_limits.del);
    }
  }

  void parse_specs(const toml::value& specs) {
    TableReader t = reader(specs, "[specs]");
    t.report_unknown_keys(config_keys("specs"));
    if (auto cache_dir = path_value(t, "cache_dir", true)) config_.spec_cache_dir = *cache_dir;
    const toml::value* paths = t.array("paths");
    if (!paths) return;
    std::vector<std::string> resolved;
    for (const toml::value& entry : paths->as_array()) {
      if (!entry.is_string() || entry.as_string().str.empty()) {
        reading_.diagnostics.push_back(document_.error_at(
            document_.position_of(entry),
            entry.is_string() ? std::string("paths entries must not be empty")
                              : "paths entries must be strings, got " + describe(entry)));
        continue;
      }
      const std::string& written = entry.as_string().str;
      std::string path = resolve(written);
      std::error_code error;
      fs::file_status status = fs::status(path, error);
      if (!fs::exists(status)) {
        std::string message = "spec path " + in_quotes(written) + " does not exist";
        if (path != written) message += " (resolved to " + in_quotes(path, 400) + ")";
        t.error_at_key("paths", std::move(message));
      } else if (!fs::is_directory(status) && !fs::is_regular_file(status)) {
        t.error_at_key("paths",
                       "spec path " + in_quotes(written) + " is neither a directory nor a file");
      }
      resolved.push_back(std::move(path));
    }
    config_.spec_paths = std::move(resolved);
  }

  void parse_state(const toml::value& state) {
    TableReader t = reader(state, "[state]");
    t.report_unknown_keys(config_keys("state"));
    if (auto backend = t.string("backend")) {
      if (*backend == "sqlite")
        config_.state_backend = StateBackend::Sqlite;
      else if (*backend == "postgres")
        config_.state_backend = StateBackend::Postgres;
      else
        t.error_at_value("backend", "backend must be \"sqlite\" or \"postgres\", got " +
                                        in_quotes(*backend) +
                                        did_you_mean(*backend, {"sqlite", "postgres"}));
    }
    if (auto path = path_value(t, "path", false)) config_.state_path = *path;
    if (auto dsn = t.string("dsn")) {
      if (config_.state_backend != StateBackend::Postgres)
        t.error_at_key("dsn", "dsn is only used with backend = \"postgres\"");
      else if (dsn_has_password(*dsn))
        t.error_at_value("dsn",
                         "dsn must not contain a password: use a passfile (PGPASSFILE) or the "
                         "credential astro-tokend-postgres");
      else
        config_.state_dsn = *dsn;
    }
    if (config_.state_backend == StateBackend::Postgres && !t.has("dsn"))
      t.error_at_table("missing required key \"dsn\" in [state] (backend = \"postgres\")");
    if (config_.state_backend == StateBackend::Postgres && t.has("path"))
      t.error_at_key("path", "path is only used with backend = \"sqlite\"");
  }

  void parse_reconcile(const toml::value& reconcile) {
    TableReader t = reader(reconcile, "[reconcile]");
    t.report_unknown_keys(config_keys("reconcile"));
    if (auto interval = t.duration("interval")) {
      if (interval->count() <= 0)
        t.error_at_value("interval", "interval must be greater than 0");
      else
        config_.interval = *interval;
    }
    if (auto jitter = t.duration("jitter")) config_.jitter = *jitter;
    if (auto mode = t.string("mode")) {
      if (*mode == "apply")
        config_.mode = ReconcileMode::Apply;
      else if (*mode == "plan")
        config_.mode = ReconcileMode::Plan;
      else
        t.error_at_value("mode", "mode must be \"apply\" or \"plan\", got " + in_quotes(*mode) +
                                     did_you_mean(*mode, {"apply", "plan"}));
    }
    if (auto parallelism = t.integer("parallelism")) {
      if (*parallelism < 1 || *parallelism > 64)
        t.error_at_value("parallelism", "parallelism must be between 1 and 64, got " +
                                            std::to_string(*parallelism));
      else
        config_.parallelism = static_cast<int>(*parallelism);
    }
    if (auto max_deletes = t.integer("max_deletes_per_run")) {
      if (*max_deletes < 0 || *max_deletes > INT_MAX)
        t.error_at_value("max_deletes_per_run", "max_deletes_per_run must be 0 or more, got " +
                                                    std::to_string(*max_deletes));
      else
        config_.max_deletes_per_run = static_cast<int>(*max_deletes);
    }
    if (auto max_rotations = t.integer("max_rotations_per_run")) {
      if (*max_rotations < 1 || *max_rotations > INT_MAX)
        t.error_at_value("max_rotations_per_run", "max_rotations_per_run must be 1 or more, got " +
                                                      std::to_string(*max_rotations));
      else
        config_.max_rotations_per_run = static_cast<int>(*max_rotations);
    }
  }

  // [ha]: retry < renew < lease, each reported at the value that breaks it.
  void parse_ha(const toml::value& ha) {
    TableReader t = reader(ha, "[ha]");
    t.report_unknown_keys(config_keys("ha"));
    bool valid = true;
    for (auto [key, field] :
         {std::pair{"lease", &config_.ha_lease}, std::pair{"renew", &config_.ha_renew},
          std::pair{"retry", &config_.ha_retry}}) {
      if (auto value = t.duration(key)) {
        if (value->count() <= 0) {
          t.error_at_value(key, std::string(key) + " must be greater than 0");
          valid = false;
        } else {
          *field = *value;
        }
      }
    }
    if (!valid) return;
    if (config_.ha_renew >= config_.ha_lease) {
      const char* key = t.has("renew") ? "renew" : "lease";
      t.error_at_value(key, "renew (" + format_duration(config_.ha_renew) +
                                ") must be shorter than lease (" +
                                format_duration(config_.ha_lease) + ")");
    }
    if (config_.ha_retry >= config_.ha_renew) {
      const char* key = t.has("retry") ? "retry" : "renew";
      t.error_at_value(key, "retry (" + format_duration(config_.ha_retry) +
                                ") must be shorter than renew (" +
                                format_duration(config_.ha_renew) + ")");
    }
  }

  void parse_secrets(const toml::value& secrets) {
    TableReader t = reader(secrets, "[secrets]");
    t.report_unknown_keys(config_keys("secrets"));
    if (auto dir = path_value(t, "dir", false)) config_.secrets_dir = *dir;
    if (auto mode = read_sink_mode(t)) config_.sink_mode = *mode;
    if (auto group = read_sink_group(t)) config_.sink_group = *group;
    if (auto hook = read_on_delivery(t)) config_.on_delivery = std::move(*hook);
    if (auto timeout = t.duration("hook_timeout")) {
      if (timeout->count() <= 0)
        t.error_at_value("hook_timeout", "hook_timeout must be greater than 0");
      else
        config_.hook_timeout = *timeout;
    }
  }

  void parse_server(const toml::value& server) {
    TableReader t = reader(server, "[server]");
    t.report_unknown_keys(config_keys("server"));
    if (auto listen = t.string("listen")) {
      if (!is_listen_address(*listen))
        t.error_at_value("listen",
                         "listen must be \"\" or HOST:PORT such as \"127.0.0.1:9464\", got " +
                             in_quotes(*listen));
      else
        config_.listen = *listen;
    }
  }

  void parse_log(const toml::value& log) {
    TableReader t = reader(log, "[log]");
    t.report_unknown_keys(config_keys("log"));
    if (auto level = t.string("level")) {
      if (!parse_log_level(*level))
        t.error_at_value("level", "level must be one of debug, info, warn, error, got " +
                                      in_quotes(*level) +
                                      did_you_mean(*level, {"debug", "info", "warn", "error"}));
      else
        config_.log_level = *level;
    }
    if (auto format = t.string("format")) {
      if (!parse_log_format(*format))
        t.error_at_value("format", "format must be \"text\" or \"json\", got " +
                                       in_quotes(*format) +
                                       did_you_mean(*format, {"text", "json"}));
      else
        config_.log_format = *format;
    }
  }

  const TomlDocument& document_;
  fs::path directory_;
  ConfigReading& reading_;
  Config& config_;
};

}  // namespace

ConfigReading read_config(const std::string& path) {
  ConfigReading reading;
  std::error_code error;
  fs::path absolute = fs::absolute(fs::path(path), error);
  if (error) absolute = fs::path(path);
  absolute = absolute.lexically_normal();
  reading.config.path = absolute.string();
  std::optional<TomlDocument> document =
      TomlDocument::load(absolute.string(), display_path(absolute.string()), reading.diagnostics);
  if (!document) return reading;
  reading.parsed = true;
  ConfigParser(*document, absolute.parent_path(), reading).parse();
  sort_by_position(reading.diagnostics.begin(), reading.diagnostics.end());
  return reading;
}

Loaded<Config> load_config(const std::string& path) {
  Loaded<Config> loaded;
  try {
    ConfigReading reading = read_config(path);
    loaded.diagnostics = std::move(reading.diagnostics);
    if (loaded.diagnostics.empty()) loaded.value = std::move(reading.config);
  } catch (const std::exception& error) {
    loaded.value.reset();
    loaded.diagnostics.push_back(internal_error(path, error));
  }
  return loaded;
}

}  // namespace tokend::spec
