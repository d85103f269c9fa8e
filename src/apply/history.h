// The run-history recorder shared by `apply` and the daemon's cycles: one
// row per run in the state's history, written the same way by both, so that
// `history` means the same for every row.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "plan/plan.h"
#include "state/store.h"
#include "util/clock.h"
#include "util/log.h"

namespace tokend::apply {

// Records one run. Construct it when the run starts (before planning): the
// run's API calls are counted from then, its refresh included. begin()
// writes the row once the plan is settled (for an interactive apply: once it
// is approved), and the run's duration is measured from there to finish()
// — the time spent applying, never a person's time reading the plan. History is
// bookkeeping: a failure to write it is logged as a warning and never fails
// the run. Not thread-safe; one run at a time per recorder.
class RunRecorder {
 public:
  // `api_requests` returns the process's count of API requests so far (each
  // HTTP exchange, retries included); the run records how many it made.
  // Everything passed in must outlive the recorder.
  RunRecorder(state::StateStore& store, const Clock& clock, const MonotonicClock& steady,
              Logger& logger, std::function<int()> api_requests, std::string command,
              std::string trigger);

  // Writes the run with the plan's counts (result interrupted until
  // finish()). Called at most once; finish() without it writes the row then.
  void begin(const plan::Plan& plan);
  // The run's id in history once begun; 0 before, or when it could not be written.
  int64_t id() const { return record_.id; }
  // Records the end: `failed` changes, `message` for the operator ("" when
  // there is nothing to say). Called at most once.
  void finish(state::RunResult result, int failed, std::string message);

 private:
  state::StateStore& store_;
  const Clock& clock_;
  const MonotonicClock& steady_;
  Logger& logger_;
  std::function<int()> api_requests_;
  const int requests_at_start_;
  SteadyTime begun_at_{};
  bool begun_ = false;
  state::RunRecord record_;
};

}  // namespace tokend::apply
