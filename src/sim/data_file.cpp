#include "sim/data_file.h"

#include "util/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace tokend::sim {

DataFileWriter::DataFileWriter(std::string path, const Organization& org, Logger& log,
                               std::chrono::milliseconds delay)
    : path_(std::move(path)), org_(org), log_(log), delay_(delay) {
  thread_ = std::thread([this] { run(); });
}

DataFileWriter::~DataFileWriter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  Status flushed = flush();
  if (!flushed.ok()) log_.error("data file not saved", {{"error", flushed.error().message}});
}

void DataFileWriter::schedule() {
  {
    std::lock_guard lock(mutex_);
    scheduled_ = true;
  }
  cv_.notify_all();
}

Status DataFileWriter::flush() {
  std::lock_guard lock(write_mutex_);
  uint64_t revision = org_.revision();
  if (revision == saved_revision_) return ok_status();
  Status written = write_file_atomically(path_, org_.encode_data());
  if (written.ok()) saved_revision_ = revision;
  return written;
}

void DataFileWriter::run() {
  std::unique_lock lock(mutex_);
  while (true) {
    cv_.wait(lock, [this] { return stopping_ || scheduled_; });
    if (stopping_) return;
    cv_.wait_for(lock, delay_, [this] { return stopping_; });
    if (stopping_) return;
    scheduled_ = false;
    lock.unlock();
    Status flushed = flush();
    if (!flushed.ok()) log_.error("data file not saved", {{"error", flushed.error().message}});
    lock.lock();
  }
}

}  // namespace tokend::sim
