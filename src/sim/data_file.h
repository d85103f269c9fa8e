// Persistence of the simulator's tokens in the --data file (never their
// secret values; see Organization::encode_data()).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "sim/org.h"
#include "util/log.h"
#include "util/result.h"

namespace tokend::sim {

// Keeps the data file in step with an Organization without work per change:
// schedule() (cheap, non-blocking) arms a write `delay` later, so a burst of
// changes costs one snapshot. A write failure is logged and retried on the
// next change. Thread-safe. The destructor writes whatever is still pending.
class DataFileWriter {
 public:
  DataFileWriter(std::string path, const Organization& org, Logger& log,
                 std::chrono::milliseconds delay = std::chrono::milliseconds(250));
  ~DataFileWriter();
  DataFileWriter(const DataFileWriter&) = delete;
  DataFileWriter& operator=(const DataFileWriter&) = delete;

  void schedule();
  // Writes now when the organization changed since the last write.
  Status flush();

 private:
  void run();

  const std::string path_;
  const Organization& org_;
  Logger& log_;
  const std::chrono::milliseconds delay_;

  std::mutex write_mutex_;  // serializes flush()
  uint64_t saved_revision_ = UINT64_MAX;

  std::mutex mutex_;
  std::condition_variable cv_;
  bool scheduled_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace tokend::sim
