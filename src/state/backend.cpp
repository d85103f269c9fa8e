// The backend factories declared in state/store.h.
#include "state/pg_lease.h"
#include "state/pg_store.h"
#include "state/sqlite_store.h"
#include "state/store.h"

namespace tokend::state {

Result<std::unique_ptr<StateStore>> StateStore::open(const std::string& path) {
  auto store = SqliteStore::open(path);
  if (!store.ok()) return store.error();
  return std::unique_ptr<StateStore>(std::move(store.value()));
}

Error organization_conflict(const std::string& recorded, const std::string& wanted) {
  return Error::conflict("the state belongs to organization " + recorded + ", not " + wanted);
}

Result<std::unique_ptr<StateStore>> open_store(const StoreLocation& where) {
  switch (where.backend) {
    case Backend::Sqlite:
      return StateStore::open(where.path);
    case Backend::Postgres: {
      auto store = PgStore::open(where.dsn);
      if (!store.ok()) return store.error();
      return std::unique_ptr<StateStore>(std::move(store.value()));
    }
  }
  return Error::internal("unknown state backend");
}

Result<std::unique_ptr<WriterLease>> acquire_writer(const StoreLocation& where,
                                                    const std::string& command,
                                                    const LeaseTimings& timings) {
  switch (where.backend) {
    case Backend::Sqlite: {
      auto lock = WriterLock::acquire(where.path, command);
      if (!lock.ok()) return lock.error();
      return std::unique_ptr<WriterLease>(std::move(lock.value()));
    }
    case Backend::Postgres: {
      auto lease = PgLease::connect(where.dsn, command, timings);
      if (!lease.ok()) return lease.error();
      auto taken = (*lease)->try_acquire();
      if (!taken.ok()) return taken.error();
      if (!*taken) {
        auto holder = (*lease)->holder();
        return Error::conflict("state is locked by " +
                               (holder ? holder->describe() : std::string("another process")));
      }
      (*lease)->keep_renewed();
      return std::unique_ptr<WriterLease>(std::move(lease.value()));
    }
  }
  return Error::internal("unknown state backend");
}

Result<std::unique_ptr<LeaderLease>> open_leader_lease(const StoreLocation& where,
                                                       const std::string& command,
                                                       const LeaseTimings& timings) {
  if (where.backend != Backend::Postgres) {
    return Error::invalid("leader election needs a shared state (backend = \"postgres\")");
  }
  auto lease = PgLease::connect(where.dsn, command, timings);
  if (!lease.ok()) return lease.error();
  return std::unique_ptr<LeaderLease>(std::move(lease.value()));
}

}  // namespace tokend::state
