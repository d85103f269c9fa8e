#pragma once

#include <string>
#include <string_view>

namespace tokend {

// Lowercase hex SHA-256 of `data`. Used to fingerprint secret values so that
// state can recognise a sink's content without ever storing it.
std::string sha256_hex(std::string_view data);

}  // namespace tokend
