#include "astro/request_watch.h"

#include <sys/socket.h>

#include <algorithm>

#include "util/wait.h"

namespace tokend::astro {

RequestWatch::RequestWatch(const std::atomic<bool>* stop) : stop_(stop) {}

RequestWatch::~RequestWatch() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closing_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

RequestWatch::Ticket::Ticket(Ticket&& other) noexcept : watch_(other.watch_), id_(other.id_) {
  other.watch_ = nullptr;
}

RequestWatch::Ticket& RequestWatch::Ticket::operator=(Ticket&& other) noexcept {
  if (this != &other) {
    finish();
    watch_ = other.watch_;
    id_ = other.id_;
    other.watch_ = nullptr;
  }
  return *this;
}

RequestWatch::Ticket::~Ticket() { finish(); }

RequestWatch::Cut RequestWatch::Ticket::finish() {
  if (!watch_) return Cut::None;
  RequestWatch* watch = watch_;
  watch_ = nullptr;
  return watch->finish(id_);
}

RequestWatch::Ticket RequestWatch::watch(int fd, Clock::time_point deadline, bool write) {
  uint64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    id = next_id_++;
    entries_.emplace(id, Entry{fd, deadline, write});
    if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
  }
  changed_.notify_all();
  return Ticket(this, id);
}

RequestWatch::Cut RequestWatch::finish(uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return Cut::None;
  const Cut cut = it->second.cut;
  entries_.erase(it);
  return cut;
}

void RequestWatch::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!closing_) {
    const auto now = Clock::now();
    const bool stopping = stop_ && stop_->load();
    bool uncut = false;
    Clock::time_point next = Clock::time_point::max();
    for (auto& [id, entry] : entries_) {
      if (entry.cut != Cut::None) continue;
      if (stopping && entry.stop_cut == Clock::time_point::max())
        entry.stop_cut = entry.write ? now + kWriteGraceOnStop : now;
      const Cut due = now >= entry.deadline   ? Cut::Deadline
                      : now >= entry.stop_cut ? Cut::Shutdown
                                              : Cut::None;
      if (due != Cut::None) {
        // Under the lock: the ticket is not finished, so the descriptor is open.
        entry.cut = due;
        ::shutdown(entry.fd, SHUT_RDWR);
        continue;
      }
      uncut = true;
      next = std::min({next, entry.deadline, entry.stop_cut});
    }
    if (!uncut) {
      changed_.wait(lock);
      continue;
    }
    // The stop flag is a plain atomic: look at it again soon.
    if (!stopping && stop_) next = std::min(next, now + kStopCheckInterval);
    changed_.wait_until(lock, next);
  }
}

}  // namespace tokend::astro
