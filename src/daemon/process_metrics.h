// The process_* metrics every Prometheus client exports, read from Linux's
// /proc/self at scrape time: CPU time, memory, file descriptors, start time.
#pragma once

#include <optional>
#include <string_view>

#include "daemon/metrics.h"

namespace tokend::daemon {

struct ProcessSample {
  double cpu_seconds = 0;         // user + system time
  double resident_bytes = 0;      // resident set size
  double virtual_bytes = 0;       // virtual memory size
  double start_time_seconds = 0;  // Unix time the process started
};

// Reads /proc/self/stat's text (`stat`): utime, stime, starttime (in clock
// ticks), vsize (bytes) and rss (pages); `boot_time` is /proc/stat's btime.
// nullopt when the text does not have those fields. Pure.
std::optional<ProcessSample> parse_proc_stat(std::string_view stat, double ticks_per_second,
                                             double page_size, double boot_time);

// The "btime N" line of /proc/stat's text; nullopt when absent. Pure.
std::optional<double> parse_boot_time(std::string_view proc_stat);

// Sets process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds (entries of /proc/self/fd),
// process_max_fds (the soft RLIMIT_NOFILE) and process_start_time_seconds.
// A value that cannot be read is left out of this scrape. Thread-safe.
void collect_process_metrics(MetricsRegistry& registry);

}  // namespace tokend::daemon
