#include "apply/history.h"

#include <utility>

namespace tokend::apply {

RunRecorder::RunRecorder(state::StateStore& store, const Clock& clock, const MonotonicClock& steady,
                         Logger& logger, std::function<int()> api_requests, std::string command,
                         std::string trigger)
    : store_(store),
      clock_(clock),
      steady_(steady),
      logger_(logger),
      api_requests_(std::move(api_requests)),
      requests_at_start_(api_requests_ ? api_requests_() : 0) {
  record_.command = std::move(command);
  record_.trigger = std::move(trigger);
  record_.started_at = clock.now();
}

void RunRecorder::begin(const plan::Plan& plan) {
  if (begun_) return;
  begun_ = true;
  begun_at_ = steady_.now();
  plan::Counts counts = plan.counts();
  record_.to_add = counts.add + counts.import;  // the run history counts an import as an addition
  record_.to_change = counts.change;
  record_.to_destroy = counts.destroy;
  record_.to_rotate = counts.rotate;
  record_.result = state::RunResult::Interrupted;
  auto id = store_.begin_run(record_);
  if (id.ok())
    record_.id = *id;
  else
    logger_.warn("cannot record the run in history", {{"error", id.error().describe()}});
}

void RunRecorder::finish(state::RunResult result, int failed, std::string message) {
  if (!begun_) begin(plan::Plan{});
  if (record_.id == 0) return;
  record_.finished_at = clock_.now();
  record_.failed = failed;
  record_.api_calls = api_requests_ ? api_requests_() - requests_at_start_ : 0;
  record_.duration_seconds = std::chrono::duration<double>(steady_.now() - begun_at_).count();
  record_.result = result;
  record_.message = std::move(message);
  if (Status finished = store_.finish_run(record_); !finished.ok())
    logger_.warn("cannot record the run in history", {{"error", finished.error().describe()}});
}

}  // namespace tokend::apply
