#include "daemon/process_metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace tokend::daemon {

namespace {

std::optional<double> number(std::string_view text) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// A small file of /proc read whole; "" when it cannot be read.
std::string read_proc_file(const char* path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return in ? text.str() : std::string();
}

}  // namespace

std::optional<ProcessSample> parse_proc_stat(std::string_view stat, double ticks_per_second,
                                             double page_size, double boot_time) {
  // "pid (comm) state ppid …": comm may hold spaces and parentheses, so the
  // fields are counted from the last ')'. Field 3 (state) is then index 0.
  const size_t close = stat.rfind(')');
  if (close == std::string_view::npos || ticks_per_second <= 0) return std::nullopt;
  std::vector<std::string_view> fields;
  std::string_view rest = stat.substr(close + 1);
  while (!rest.empty()) {
    const size_t start = rest.find_first_not_of(" \n");
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    const size_t end = std::min(rest.find_first_of(" \n"), rest.size());
    fields.push_back(rest.substr(0, end));
    rest.remove_prefix(end);
  }
  // utime (14), stime (15), starttime (22), vsize (23), rss (24).
  constexpr size_t kUtime = 14 - 3, kStime = 15 - 3, kStart = 22 - 3, kVsize = 23 - 3,
                   kRss = 24 - 3;
  if (fields.size() <= kRss) return std::nullopt;
  auto utime = number(fields[kUtime]);
  auto stime = number(fields[kStime]);
  auto start = number(fields[kStart]);
  auto vsize = number(fields[kVsize]);
  auto rss = number(fields[kRss]);
  if (!utime || !stime || !start || !vsize || !rss) return std::nullopt;
  ProcessSample sample;
  sample.cpu_seconds = (*utime + *stime) / ticks_per_second;
  sample.virtual_bytes = *vsize;
  sample.resident_bytes = *rss * page_size;
  sample.start_time_seconds = boot_time + *start / ticks_per_second;
  return sample;
}

std::optional<double> parse_boot_time(std::string_view proc_stat) {
  std::istringstream lines{std::string(proc_stat)};
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("btime ", 0) == 0) return number(std::string_view(line).substr(6));
  }
  return std::nullopt;
}

void collect_process_metrics(MetricsRegistry& registry) {
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  const std::optional<double> boot = parse_boot_time(read_proc_file("/proc/stat"));
  if (boot) {
    if (auto sample = parse_proc_stat(read_proc_file("/proc/self/stat"), ticks, page, *boot)) {
      registry.set_total(metric::kProcessCpu, {}, sample->cpu_seconds);
      registry.set(metric::kProcessResident, {}, sample->resident_bytes);
      registry.set(metric::kProcessVirtual, {}, sample->virtual_bytes);
      registry.set(metric::kProcessStartTime, {}, sample->start_time_seconds);
    }
  }
  std::error_code error;
  size_t open = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", error), end; !error && it != end;
       it.increment(error))
    ++open;
  // The iterator's own descriptor is counted too, as other clients count it.
  if (!error) registry.set(metric::kProcessOpenFds, {}, static_cast<double>(open));
  struct rlimit limit {};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
    registry.set(metric::kProcessMaxFds, {}, static_cast<double>(limit.rlim_cur));
}

}  // namespace tokend::daemon
