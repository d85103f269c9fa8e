#pragma once

#include <string>
#include <string_view>

namespace tokend {

// Appends `s` to `out` as a JSON string literal (quotes included), escaping
// quotes, backslashes and control characters; other bytes pass through.
void append_json_string(std::string& out, std::string_view s);

// `s` as a JSON string literal.
std::string json_quote(std::string_view s);

}  // namespace tokend
