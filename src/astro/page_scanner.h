// The fast path of decoding a ListApiTokens answer: one pass over the body
// straight into ApiToken values, without a JSON parse tree. A listing of
// 10,000 tokens is ten pages of about half a megabyte each; building Poco
// JSON trees for them cost more than everything else a no-op plan does.
//
// The scanner takes only what it is sure of: a well-formed page whose fields
// have the types the schema says, each known field at most once, strings in
// valid UTF-8, integers in range, nesting well inside kMaxJsonDepth. On
// anything else it gives up (nullopt) and the caller decodes the body through
// the parse tree (json::decode_token_page), which reports the problem exactly
// as it always has. So the scanner never decides that a body is wrong, and
// when it succeeds its page is the one the tree decoder would produce (the
// fuzz target api_json and the tests compare the two).
#pragma once

#include <optional>
#include <string_view>

#include "astro/json.h"

namespace tokend::astro::json {

std::optional<TokenPage> scan_token_page(std::string_view body, ApiVersion version);

}  // namespace tokend::astro::json
