// "Did you mean …?" suggestions for misspelled keys and values. Pure functions.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tokend {

// Edit distance between `a` and `b` (insertions, deletions, substitutions and
// swaps of neighbouring characters cost 1 each), comparing ASCII letters
// without regard to case (so "workspace" is at distance 0 from "WORKSPACE").
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word` when it is close enough to be a plausible
// misspelling (distance at most 1 for short words, a third of the length for
// longer ones); the earliest candidate wins a tie. nullopt when none is close
// or `word` equals a candidate exactly.
std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string_view>& candidates);

// " (did you mean \"x\"?)" for the closest match, or "" when there is none.
// `open`/`close` wrap the suggestion instead of quotes when given (e.g. "[" "]").
std::string did_you_mean(std::string_view word, const std::vector<std::string_view>& candidates,
                         std::string_view open = "\"", std::string_view close = "\"");

}  // namespace tokend
