#include "daemon/text.h"

#include <cstdio>
#include <ctime>

#include "util/duration.h"

namespace tokend::daemon {

using std::chrono::milliseconds;

std::string clock_text(Timestamp t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buffer[16];
  std::strftime(buffer, sizeof buffer, "%H:%M:%SZ", &tm);
  return buffer;
}

std::string seconds_text(double seconds) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.3fs", seconds);
  return buffer;
}

std::string rounded_duration(milliseconds d) {
  return format_duration(d >= milliseconds(10000)
                             ? std::chrono::duration_cast<std::chrono::seconds>(d)
                             : std::chrono::duration_cast<milliseconds>(d / 100 * 100));
}

std::string position_text(const spec::SourcePos& pos) {
  std::string out = pos.file;
  if (pos.line > 0) out += ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column);
  return out;
}

std::string counts_text(const plan::Counts& counts) {
  std::string imported = counts.import > 0 ? std::to_string(counts.import) + " imported, " : "";
  return imported + std::to_string(counts.add) + " added, " + std::to_string(counts.change) +
         " changed, " + std::to_string(counts.destroy) + " destroyed, " +
         std::to_string(counts.rotate) + " rotated";
}

}  // namespace tokend::daemon
