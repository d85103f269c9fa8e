// Small text helpers for spec loading and diagnostics: UTF-8 checks, code
// point counts and safe quoting of operator input inside messages.
// Pure functions; no I/O.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace tokend::spec {

// Byte offset of the first byte that does not belong to a well-formed UTF-8
// sequence (overlong forms, surrogates and code points above U+10FFFF are
// ill-formed), or nullopt when `text` is valid UTF-8.
std::optional<std::size_t> first_invalid_utf8(std::string_view text);

// Number of Unicode code points in `text`. Precondition: `text` is valid UTF-8.
std::size_t code_point_count(std::string_view text);

// `text` with every byte that could disturb a terminal (control characters
// other than tab, bytes of invalid UTF-8) replaced by '?'. Same length in
// bytes as the input, so byte columns keep their meaning.
std::string printable_line(std::string_view text);

// `text` in double quotes, with quotes, backslashes and control characters
// escaped and anything beyond `max_chars` code points cut to "...".
std::string in_quotes(std::string_view text, std::size_t max_chars = 80);

}  // namespace tokend::spec
