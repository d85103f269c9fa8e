// RequestWatch on a socket pair: a read blocked on one end wakes when the
// watch shuts it down at its deadline or on a shutdown, and a finished
// ticket leaves its socket alone.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>

#include "astro/request_watch.h"

using tokend::astro::RequestWatch;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

struct SocketPair {
  int fds[2] = {-1, -1};
  SocketPair() { REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0); }
  ~SocketPair() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
  // Blocks in recv on fds[0]; how long until it returned, and what it returned.
  std::future<std::pair<milliseconds, ssize_t>> read_in_background() {
    return std::async(std::launch::async, [this] {
      const auto start = Clock::now();
      char c;
      const ssize_t got = ::recv(fds[0], &c, 1, 0);
      return std::pair{std::chrono::duration_cast<milliseconds>(Clock::now() - start), got};
    });
  }
};

}  // namespace

TEST_CASE("the watch shuts a socket down at its deadline", "[astro][watch]") {
  RequestWatch watch(nullptr);
  SocketPair pair;
  auto reader = pair.read_in_background();
  RequestWatch::Ticket ticket = watch.watch(pair.fds[0], Clock::now() + milliseconds(150), false);
  REQUIRE(reader.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  const auto [took, got] = reader.get();
  CHECK(got == 0);  // end of stream: shut down
  CHECK(took >= milliseconds(130));
  CHECK(took < milliseconds(1000));
  CHECK(ticket.finish() == RequestWatch::Cut::Deadline);
  CHECK(ticket.finish() == RequestWatch::Cut::None);
}

TEST_CASE("a finished ticket leaves its socket open", "[astro][watch]") {
  RequestWatch watch(nullptr);
  SocketPair pair;
  {
    RequestWatch::Ticket ticket = watch.watch(pair.fds[0], Clock::now() + milliseconds(50), false);
    CHECK(ticket.finish() == RequestWatch::Cut::None);
  }
  // Past the deadline the socket still carries bytes both ways.
  const auto later = Clock::now() + milliseconds(150);
  while (Clock::now() < later) std::this_thread::yield();
  CHECK(::send(pair.fds[1], "x", 1, 0) == 1);
  char c = 0;
  CHECK(::recv(pair.fds[0], &c, 1, 0) == 1);
  CHECK(c == 'x');
  CHECK(::send(pair.fds[0], "y", 1, 0) == 1);
}

TEST_CASE("stop cuts a read at once and a write after its grace", "[astro][watch]") {
  std::atomic<bool> stop{false};
  RequestWatch watch(&stop);
  SocketPair read_pair, write_pair;
  auto reader = read_pair.read_in_background();
  auto writer = write_pair.read_in_background();
  const auto far = Clock::now() + std::chrono::seconds(30);
  RequestWatch::Ticket read = watch.watch(read_pair.fds[0], far, false);
  RequestWatch::Ticket write = watch.watch(write_pair.fds[0], far, true);
  // Neither is cut before stop.
  CHECK(reader.wait_for(milliseconds(100)) == std::future_status::timeout);
  stop = true;
  REQUIRE(reader.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  REQUIRE(writer.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  const auto [read_took, read_got] = reader.get();
  const auto [write_took, write_got] = writer.get();
  CHECK(read_got == 0);
  CHECK(write_got == 0);
  // The read waited 100 ms for stop, the write that plus its grace.
  CHECK(read_took < milliseconds(100) + milliseconds(150));
  CHECK(write_took >= milliseconds(100) + RequestWatch::kWriteGraceOnStop - milliseconds(20));
  CHECK(write_took < milliseconds(100) + RequestWatch::kWriteGraceOnStop + milliseconds(300));
  CHECK(read.finish() == RequestWatch::Cut::Shutdown);
  CHECK(write.finish() == RequestWatch::Cut::Shutdown);
}
