// How the daemon spells times, durations and counts in its log lines and in
// STATUS=. Internal to daemon/.
#pragma once

#include <chrono>
#include <string>

#include "model/token.h"
#include "plan/plan.h"
#include "spec/model.h"

namespace tokend::daemon {

// "14:03:07Z" (UTC, to the second).
std::string clock_text(Timestamp t);
// "0.412s".
std::string seconds_text(double seconds);
// "5m", "20s", or "2.4s" below ten seconds (tenths).
std::string rounded_duration(std::chrono::milliseconds d);
// "FILE:LINE:COL", or "FILE" when the line is unknown.
std::string position_text(const spec::SourcePos& pos);
// "1 added, 0 changed, 2 destroyed, 0 rotated", led by "N imported, " when
// there are imports.
std::string counts_text(const plan::Counts& counts);

}  // namespace tokend::daemon
