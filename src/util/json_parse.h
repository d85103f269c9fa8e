// Parsing JSON that comes from outside the process (API answers, plan files,
// request bodies, data files) without trusting the parser with hostile
// input. Poco::JSON::Parser recurses once per nesting level and stores an
// integer literal beyond 64 bits as a wrapped-around value, so every reader
// of outside JSON goes through parse_json(), which first checks the text
// (without recursion) and refuses:
//   - arrays and objects nested deeper than kMaxJsonDepth;
//   - integer literals beyond the 64-bit range (below INT64_MIN, above
//     UINT64_MAX), which Poco would store wrapped around.
// Both are reported with their line and column.
#pragma once

#include <Poco/Dynamic/Var.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "util/result.h"

namespace tokend {

inline constexpr int kMaxJsonDepth = 64;

// The first place where `text` breaks the limits above, as
// "nesting deeper than 64 levels at line 3, column 17" or
// "integer 123... out of range at line 1, column 9"; nullopt when it keeps
// them. Strings are skipped (with their escapes); anything else that is not
// JSON is left for the parser to report. Linear in the size of `text`, no
// recursion, no allocation beyond the message.
std::optional<std::string> json_limit_problem(std::string_view text, int max_depth = kMaxJsonDepth);

// Checks `text` with json_limit_problem(), then parses it with
// Poco::JSON::Parser (depth limit set as well). On failure Error Invalid
// whose message describes the problem alone ("nesting deeper than …", or the
// parser's message), for the caller to prefix. Never throws.
Result<Poco::Dynamic::Var> parse_json(std::string_view text);

}  // namespace tokend
