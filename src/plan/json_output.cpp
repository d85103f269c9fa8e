#include "plan/json_output.h"

#include <sstream>

namespace tokend::plan {

std::string indented_json(const Poco::JSON::Object& object) {
  std::ostringstream raw;
  object.stringify(raw, 2);
  const std::string text = raw.str();
  // Poco writes an empty container as an opening bracket, a line break and
  // indentation, then the closing bracket. A raw line break never occurs
  // inside a JSON string, so such a run is always structural.
  std::string out;
  out.reserve(text.size() + 1);
  for (size_t i = 0; i < text.size(); ++i) {
    out += text[i];
    if (text[i] != '[' && text[i] != '{') continue;
    const char closer = text[i] == '[' ? ']' : '}';
    size_t j = i + 1;
    bool line_break = false;
    while (j < text.size() && (text[j] == ' ' || text[j] == '\n')) line_break |= text[j++] == '\n';
    if (line_break && j < text.size() && text[j] == closer) {
      out += closer;
      i = j;
    }
  }
  out += '\n';
  return out;
}

}  // namespace tokend::plan
