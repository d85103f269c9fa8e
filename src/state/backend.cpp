// The backend factories declared in state/store.h.
#include "state/sqlite_store.h"
#include "state/store.h"

namespace tokend::state {

Result<std::unique_ptr<StateStore>> StateStore::open(const std::string& path) {
  auto store = SqliteStore::open(path);
  if (!store.ok()) return store.error();
  return std::unique_ptr<StateStore>(std::move(store.value()));
}

Result<std::unique_ptr<StateStore>> open_store(const StoreLocation& where) {
  switch (where.backend) {
    case Backend::Sqlite:
      return StateStore::open(where.path);
    case Backend::Postgres:
      break;
  }
  return Error::invalid("the postgres state backend is not available in this build");
}

Result<std::unique_ptr<WriterLease>> acquire_writer(const StoreLocation& where,
                                                    const std::string& command) {
  switch (where.backend) {
    case Backend::Sqlite: {
      auto lock = WriterLock::acquire(where.path, command);
      if (!lock.ok()) return lock.error();
      return std::unique_ptr<WriterLease>(std::move(lock.value()));
    }
    case Backend::Postgres:
      break;
  }
  return Error::invalid("the postgres state backend is not available in this build");
}

}  // namespace tokend::state
