// Indented JSON text for plan/'s encoders (internal to plan/).
#pragma once

#include <Poco/JSON/Object.h>

#include <string>

namespace tokend::plan {

// `object` stringified with two-space indentation, empty arrays and objects
// written as [] and {}, and a final newline.
std::string indented_json(const Poco::JSON::Object& object);

}  // namespace tokend::plan
