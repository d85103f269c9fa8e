#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace tokend {

// Parses "90s", "5m", "1h", "1h30m", "250ms", "2d"; a bare "0" means zero.
// nullopt when the text is not such a duration (including negative values).
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

// The shortest exact spelling, e.g. 90000ms -> "1m30s", 1500ms -> "1.5s".
std::string format_duration(std::chrono::milliseconds d);

}  // namespace tokend
