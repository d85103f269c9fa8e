#include "state/records.h"

namespace tokend::state {

std::string_view to_string(RunResult result) {
  switch (result) {
    case RunResult::Ok:
      return "ok";
    case RunResult::NoOp:
      return "no-op";
    case RunResult::Planned:
      return "planned";
    case RunResult::Failed:
      return "failed";
    case RunResult::Refused:
      return "refused";
    case RunResult::Interrupted:
      return "interrupted";
  }
  return "interrupted";
}

std::optional<RunResult> parse_run_result(std::string_view text) {
  for (RunResult result : {RunResult::Ok, RunResult::NoOp, RunResult::Planned, RunResult::Failed,
                           RunResult::Refused, RunResult::Interrupted})
    if (to_string(result) == text) return result;
  return std::nullopt;
}

}  // namespace tokend::state
