// RequestWatch: bounds the exchanges in flight from outside the threads that
// run them. Poco's socket timeouts bound each read, not an answer whose
// status line and headers arrive one byte at a time, and nothing wakes a
// read when the daemon shuts down. A request therefore registers its socket
// with its deadline; one thread per watch shuts the socket down
// (shutdown(2), which wakes a blocked read or write at once) when
//   - the deadline passes (Cut::Deadline), or
//   - `stop` is raised (Cut::Shutdown): a read at once, a write after
//     kWriteGraceOnStop, so that an answer already on its way is still taken.
//
//   RequestWatch watch(&stop);
//   RequestWatch::Ticket ticket = watch.watch(socket.sockfd(), deadline, /*write=*/false);
//   … send, receive …
//   if (ticket.finish() != RequestWatch::Cut::None) … the exchange was cut …
//
// A ticket must be finished (or destroyed) before its socket is closed: the
// watch never touches a descriptor after that. Thread-safe; the thread starts
// with the first ticket and is joined by the destructor.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <thread>

namespace tokend::astro {

class RequestWatch {
 public:
  enum class Cut { None, Deadline, Shutdown };
  using Clock = std::chrono::steady_clock;
  // How long a write in flight may still take once `stop` is raised.
  static constexpr std::chrono::milliseconds kWriteGraceOnStop{500};

  // `stop` may be null (only deadlines cut) and must outlive the watch.
  explicit RequestWatch(const std::atomic<bool>* stop);
  ~RequestWatch();
  RequestWatch(const RequestWatch&) = delete;
  RequestWatch& operator=(const RequestWatch&) = delete;

  class Ticket {
   public:
    Ticket() = default;
    Ticket(Ticket&& other) noexcept;
    Ticket& operator=(Ticket&& other) noexcept;
    ~Ticket();
    // Ends the watch of this exchange; says whether (and why) it was cut.
    // Later calls answer Cut::None.
    Cut finish();

   private:
    friend class RequestWatch;
    Ticket(RequestWatch* watch, uint64_t id) : watch_(watch), id_(id) {}
    RequestWatch* watch_ = nullptr;
    uint64_t id_ = 0;
  };

  Ticket watch(int fd, Clock::time_point deadline, bool write);

 private:
  struct Entry {
    int fd;
    Clock::time_point deadline;
    bool write;
    Clock::time_point stop_cut{Clock::time_point::max()};  // set once stop is seen
    Cut cut = Cut::None;
  };

  Cut finish(uint64_t id);
  void run();

  const std::atomic<bool>* stop_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<uint64_t, Entry> entries_;
  uint64_t next_id_ = 1;
  bool closing_ = false;
  std::thread thread_;
};

}  // namespace tokend::astro
