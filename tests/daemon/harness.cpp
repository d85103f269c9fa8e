#include "daemon/harness.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <thread>

namespace tokend::testing {

std::string workspace_token_toml(const std::string& key, const std::string& name,
                                 const std::string& description) {
  return "[api_token." + key + "]\nname = \"" + name + "\"\ndescription = \"" + description +
         "\"\ntype = \"WORKSPACE\"\nrole = \"WORKSPACE_OWNER\"\n"
         "roles = [{ role = \"WORKSPACE_OWNER\", entity_id = \"" +
         kSimWorkspaceId + "\", entity_type = \"WORKSPACE\" }]\n";
}

// ---- NotifyListener -----------------------------------------------------------

NotifyListener::NotifyListener(const std::string& path) : path_(path) {
  fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error("socket(AF_UNIX) failed");
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof address.sun_path)
    throw std::runtime_error("notify socket path too long: " + path);
  std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path.c_str());
  if (bind(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0)
    throw std::runtime_error("cannot bind notify socket " + path);
}

NotifyListener::~NotifyListener() {
  if (fd_ >= 0) close(fd_);
  std::remove(path_.c_str());
}

void NotifyListener::drain(std::chrono::milliseconds timeout) {
  pollfd pfd{fd_, POLLIN, 0};
  if (poll(&pfd, 1, static_cast<int>(timeout.count())) <= 0) return;
  char buffer[4096];
  for (;;) {
    ssize_t n = recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n <= 0) return;
    messages_.emplace_back(buffer, static_cast<size_t>(n));
  }
}

std::optional<size_t> NotifyListener::wait_for(const std::string& needle, size_t from,
                                               std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    for (size_t i = from; i < messages_.size(); ++i)
      if (messages_[i].find(needle) != std::string::npos) return i;
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return std::nullopt;
    drain(std::min(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now),
                   std::chrono::milliseconds(100)));
  }
}

// ---- DaemonUnderTest ----------------------------------------------------------

DaemonUnderTest::DaemonUnderTest(const SimProcess& sim, DaemonConfig config)
    : bearer_token_(sim.bearer_token()) {
  std::filesystem::create_directories(dir_.file("tokens.d"));
  if (config.api_url.empty()) config.api_url = sim.base_url();
  write_config(config);
}

DaemonUnderTest::~DaemonUnderTest() {
  if (process_ && process_->running()) {
    process_->signal(SIGTERM);
    process_->wait_for_exit(std::chrono::seconds(10));
  }
}

void DaemonUnderTest::write_config(const DaemonConfig& config) {
  serving_ = !config.listen.empty();
  std::string toml =
      "[astro]\norganization_id = \"" + config.organization_id + "\"\napi_url = \"" +
      config.api_url + "\"\ntoken_env = \"" + bearer_env_ + "\"\ntimeout = \"" + config.timeout +
      "\"\n\n[specs]\npaths = [\"tokens.d\"]\n\n[state]\n" + config.state +
      "\n\n"
      "[reconcile]\ninterval = \"" +
      config.interval + "\"\njitter = \"" + config.jitter + "\"\nmode = \"" + config.mode +
      "\"\nparallelism = " + std::to_string(config.parallelism) + "\n\n[secrets]\ndir = \"" +
      config.secrets_dir + "\"\n\n[server]\nlisten = \"" + config.listen +
      "\"\n\n[log]\nlevel = \"info\"\nformat = \"" + config.log_format + "\"\n" + config.extra;
  std::string temporary = dir_.file(".astro-tokend.toml.tmp");
  write_file(temporary, toml);
  std::filesystem::rename(temporary, config_path());
}

void DaemonUnderTest::write_spec(const std::string& file, const std::string& toml) {
  std::string temporary = dir_.file("tokens.d/." + file + ".tmp");
  write_file(temporary, toml);
  std::filesystem::rename(temporary, spec_path(file));
}

RunOptions DaemonUnderTest::run_options() const {
  RunOptions options;
  options.env[bearer_env_] = bearer_token_;
  options.unset_env = {"CREDENTIALS_DIRECTORY", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"};
  options.timeout = std::chrono::seconds(30);
  return options;
}

void DaemonUnderTest::start(const std::string& notify_socket) {
  RunOptions options = run_options();
  if (!notify_socket.empty()) options.env["NOTIFY_SOCKET"] = notify_socket;
  const size_t from = log().size();  // a restart appends to the same log
  process_ = std::make_unique<BackgroundProcess>(
      std::vector<std::string>{TOKEND_BIN, "run", "-c", config_path()}, options,
      dir_.file("stdout.log"), dir_.file("stderr.log"));
  if (!serving_) {
    if (!wait_for_log("msg=\"daemon started\"") && !wait_for_log("\"msg\":\"daemon started\""))
      throw std::runtime_error("the daemon did not start:\n" + log());
    return;
  }
  // The readiness line: msg="serving metrics" listen=127.0.0.1:PORT (or JSON).
  const std::string text_marker = "msg=\"serving metrics\" listen=";
  const std::string json_marker = "\"msg\":\"serving metrics\",\"listen\":\"";
  bool found = eventually(
      [&] {
        std::string text = log();
        size_t at = text.find(text_marker, from);
        size_t skip = text_marker.size();
        if (at == std::string::npos) {
          at = text.find(json_marker, from);
          skip = json_marker.size();
        }
        if (at == std::string::npos) return false;
        size_t begin = at + skip;
        size_t end = text.find_first_of(" \"\n", begin);
        if (end == std::string::npos) return false;
        origin_ = "http://" + text.substr(begin, end - begin);
        return true;
      },
      std::chrono::seconds(10));
  if (!found) throw std::runtime_error("the daemon did not start serving:\n" + log());
}

std::string DaemonUnderTest::log() const {
  std::error_code ec;
  if (!std::filesystem::exists(dir_.file("stderr.log"), ec)) return "";
  return read_file(dir_.file("stderr.log"));
}

std::optional<size_t> DaemonUnderTest::wait_for_log(const std::string& needle, size_t from,
                                                    std::chrono::milliseconds timeout) const {
  std::optional<size_t> found;
  eventually(
      [&] {
        std::string text = log();
        size_t at = from <= text.size() ? text.find(needle, from) : std::string::npos;
        if (at == std::string::npos) return false;
        found = at + needle.size();
        return true;
      },
      timeout);
  return found;
}

size_t DaemonUnderTest::count_in_log(const std::string& needle) const {
  std::string text = log();
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + needle.size()))
    ++count;
  return count;
}

HttpResponse DaemonUnderTest::get(const std::string& path) const {
  HttpOptions options;
  options.timeout = std::chrono::seconds(5);
  return http_request({"GET", origin_ + path, {}, ""}, options);
}

std::optional<double> DaemonUnderTest::metric(const std::string& series) const {
  HttpResponse response = get("/metrics");
  if (response.status != 200) return std::nullopt;
  const std::string& body = response.body;
  std::string prefix = series + " ";
  for (size_t at = 0; at < body.size();) {
    size_t end = body.find('\n', at);
    if (end == std::string::npos) end = body.size();
    if (body.compare(at, prefix.size(), prefix) == 0)
      return std::stod(body.substr(at + prefix.size(), end - at - prefix.size()));
    at = end + 1;
  }
  return std::nullopt;
}

}  // namespace tokend::testing
