#include "state/pg_lease.h"

#include <limits.h>
#include <unistd.h>

#include "state/pg_connection.h"
#include "util/clock.h"

namespace tokend::state {

namespace {

// The session-level advisory lock of the writer lease (per database).
constexpr const char* kLeaseLockKey = "7285011954302";

std::string host_name() {
  char buffer[HOST_NAME_MAX + 1] = {};
  if (::gethostname(buffer, sizeof buffer - 1) != 0) return "unknown";
  return buffer;
}

std::string single_line(std::string text) {
  for (char& c : text)
    if (c == '\n' || c == '\r') c = ' ';
  return text;
}

std::string millis(std::chrono::milliseconds d) { return std::to_string(d.count()); }

}  // namespace

PgLease::PgLease(std::unique_ptr<PgConnection> conn, const std::string& command,
                 const LeaseTimings& timings)
    : timings_(timings), conn_(std::move(conn)) {
  me_.pid = static_cast<int>(::getpid());
  me_.host = host_name();
  me_.command = single_line(command);
  me_.since = SystemClock().now();
}

Result<std::unique_ptr<PgLease>> PgLease::connect(const std::string& dsn,
                                                  const std::string& command,
                                                  const LeaseTimings& timings) {
  auto conn = PgConnection::open(dsn);
  if (!conn.ok()) return conn.error();
  return std::unique_ptr<PgLease>(new PgLease(std::move(conn.value()), command, timings));
}

PgLease::~PgLease() {
  {
    std::lock_guard lock(renew_mutex_);
    stop_renewing_ = true;
  }
  renew_wake_.notify_all();
  if (renewer_.joinable()) renewer_.join();
  std::lock_guard lock(mutex_);
  release_locked();
}

void PgLease::forget_lost_advisory() {
  if (have_advisory_ && conn_->session() != advisory_session_) have_advisory_ = false;
}

bool PgLease::take_advisory() {
  forget_lost_advisory();
  if (have_advisory_) return true;
  have_advisory_ =
      conn_->exec(std::string("SELECT pg_try_advisory_lock(") + kLeaseLockKey + ")").text(0, 0) ==
      "t";
  advisory_session_ = conn_->session();
  return have_advisory_;
}

void PgLease::unlock_advisory() {
  forget_lost_advisory();
  if (!have_advisory_) return;
  have_advisory_ = false;
  conn_->exec(std::string("SELECT pg_advisory_unlock(") + kLeaseLockKey + ")");
}

Result<bool> PgLease::try_acquire() {
  std::lock_guard lock(mutex_);
  const auto started = std::chrono::steady_clock::now();
  return pg_guarded("taking the writer lease", [&]() -> Result<bool> {
    conn_->ensure();
    take_advisory();
    PgTransaction tx(*conn_);
    forget_lost_advisory();  // BEGIN may have found the session gone
    const bool locked = have_advisory_;
    PgRows row = conn_->exec(
        "SELECT epoch, holder_host, holder_pid, holder_command, holder_since, holder_locked, "
        "expires_at <= now() FROM writer_lease WHERE id = 1 FOR UPDATE");
    if (row.size() != 1) throw PgCorruptRow("the writer lease row is missing");
    const bool holder_locked = row.text(0, 5) == "t";
    const bool expired = row.text(0, 6) == "t";
    if (!(expired || (locked && holder_locked))) {
      LockHolder other;
      other.host = row.text(0, 1);
      other.pid = row.int32(0, 2);
      other.command = row.text(0, 3);
      other.since = Timestamp{std::chrono::seconds{row.int64(0, 4)}};
      tx.commit();
      holder_ = other;
      held_ = false;
      // The holder took over by expiry and lacks the advisory lock: give it back.
      unlock_advisory();
      return false;
    }
    PgRows taken = conn_->exec(
        "UPDATE writer_lease SET epoch = epoch + 1, holder_host = $1, holder_pid = $2, "
        "holder_command = $3, holder_since = $4, holder_locked = $5, "
        "expires_at = now() + $6 * interval '1 millisecond' WHERE id = 1 RETURNING epoch",
        {me_.host, std::to_string(me_.pid), me_.command,
         std::to_string(me_.since.time_since_epoch().count()), have_advisory_ ? "true" : "false",
         millis(timings_.lease)});
    const int64_t epoch = taken.int64(0, 0);
    tx.commit();
    epoch_ = epoch;
    held_ = true;
    deadline_ = started + timings_.lease;
    holder_ = me_;
    return true;
  });
}

Status PgLease::renew() {
  std::lock_guard lock(mutex_);
  if (!held_) return Error::conflict("this process does not hold the writer lease");
  const auto started = std::chrono::steady_clock::now();
  Result<bool> renewed = pg_guarded("renewing the writer lease", [&]() -> Result<bool> {
    conn_->ensure();
    take_advisory();
    PgTransaction tx(*conn_);
    forget_lost_advisory();
    PgRows row = conn_->exec(
        "UPDATE writer_lease SET expires_at = now() + $2 * interval '1 millisecond', "
        "holder_locked = holder_locked OR $3 WHERE id = 1 AND epoch = $1 RETURNING 1",
        {std::to_string(epoch_), millis(timings_.lease), have_advisory_ ? "true" : "false"});
    if (row.size() == 0) {
      PgRows now_held = conn_->exec(
          "SELECT holder_host, holder_pid, holder_command, holder_since FROM writer_lease "
          "WHERE id = 1");
      if (now_held.size() == 1) {
        LockHolder other;
        other.host = now_held.text(0, 0);
        other.pid = now_held.int32(0, 1);
        other.command = now_held.text(0, 2);
        other.since = Timestamp{std::chrono::seconds{now_held.int64(0, 3)}};
        holder_ = other;
      }
      tx.commit();
      return false;
    }
    tx.commit();
    return true;
  });
  if (!renewed.ok()) return renewed.error();
  if (!*renewed) {
    held_ = false;
    try {
      unlock_advisory();
    } catch (const std::exception&) {
      have_advisory_ = false;
    }
    return Error::conflict("lost the writer lease (epoch " + std::to_string(epoch_) + ")" +
                           (holder_ ? " to " + holder_->describe() : std::string()));
  }
  deadline_ = started + timings_.lease;
  return ok_status();
}

void PgLease::release_locked() {
  if (!held_ && !have_advisory_) return;
  try {
    if (held_ && conn_->connected()) {
      conn_->exec(
          "UPDATE writer_lease SET expires_at = '-infinity', holder_locked = false "
          "WHERE id = 1 AND epoch = $1",
          {std::to_string(epoch_)});
    }
    if (conn_->connected()) unlock_advisory();
  } catch (const std::exception&) {
    // The lease expires by itself and the session's lock goes with it.
  }
  held_ = false;
  have_advisory_ = false;
}

void PgLease::release() {
  std::lock_guard lock(mutex_);
  release_locked();
}

bool PgLease::held() const {
  std::lock_guard lock(mutex_);
  return held_;
}

std::chrono::steady_clock::time_point PgLease::deadline() const {
  std::lock_guard lock(mutex_);
  return deadline_;
}

std::optional<LockHolder> PgLease::holder() const {
  std::lock_guard lock(mutex_);
  return holder_;
}

int64_t PgLease::epoch() const {
  std::lock_guard lock(mutex_);
  return epoch_;
}

Status PgLease::check() {
  std::lock_guard lock(mutex_);
  if (!held_) return Error::conflict("this process does not hold the writer lease");
  if (std::chrono::steady_clock::now() >= deadline_) {
    return Error::conflict("the writer lease (epoch " + std::to_string(epoch_) +
                           ") expired before it was renewed");
  }
  Result<bool> still = pg_guarded("checking the writer lease", [&]() -> Result<bool> {
    conn_->ensure();
    PgRows row =
        conn_->exec("SELECT epoch = $1 AND expires_at > now() FROM writer_lease WHERE id = 1",
                    {std::to_string(epoch_)});
    return row.size() == 1 && row.text(0, 0) == "t";
  });
  if (!still.ok()) return still.error();
  if (!*still) {
    held_ = false;
    return Error::conflict("lost the writer lease (epoch " + std::to_string(epoch_) + ")");
  }
  return ok_status();
}

void PgLease::keep_renewed() {
  if (renewer_.joinable()) return;
  renewer_ = std::thread([this] {
    std::unique_lock lock(renew_mutex_);
    std::chrono::milliseconds wait = timings_.renew;
    while (!renew_wake_.wait_for(lock, wait, [this] { return stop_renewing_; })) {
      lock.unlock();
      Status renewed = renew();
      lock.lock();
      if (!renewed.ok() && renewed.error().kind == ErrorKind::Conflict) break;  // lost
      // Renew on schedule; retry sooner after failing to reach the database.
      wait = renewed.ok() ? timings_.renew : timings_.retry;
    }
  });
}

}  // namespace tokend::state
