#include "spec/model.h"

#include <algorithm>

#include "spec/text.h"

namespace tokend::spec {

std::string Diagnostic::format() const {
  std::string out = pos.file;
  if (pos.line > 0) {
    out += ":" + std::to_string(pos.line);
    if (pos.column > 0) out += ":" + std::to_string(pos.column);
  }
  out += ": error: " + printable_line(message) + "\n";
  if (pos.line > 0 && !source_line.empty()) {
    std::string shown = printable_line(source_line);
    out += "    " + shown + "\n";
    if (pos.column > 0) {
      // The caret sits under the column-th byte; count what precedes it in
      // code points so it lines up on a terminal.
      std::string_view before =
          std::string_view(source_line)
              .substr(0, std::min(source_line.size(), static_cast<std::size_t>(pos.column - 1)));
      std::string pad;
      for (char c : printable_line(before)) {
        if (c == '\t')
          pad += '\t';
        else if ((static_cast<unsigned char>(c) & 0xC0) != 0x80)
          pad += ' ';
      }
      out += "    " + pad + "^\n";
    }
  }
  return out;
}

bool Lifecycle::ignores(std::string_view attribute) const {
  for (const std::string& name : ignore_changes) {
    if (name == "all" || name == attribute) return true;
  }
  return false;
}

}  // namespace tokend::spec
