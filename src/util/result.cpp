#include "util/result.h"

namespace tokend {

std::string_view to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::NotFound:
      return "NotFound";
    case ErrorKind::Invalid:
      return "Invalid";
    case ErrorKind::Unauthorized:
      return "Unauthorized";
    case ErrorKind::Forbidden:
      return "Forbidden";
    case ErrorKind::Conflict:
      return "Conflict";
    case ErrorKind::RateLimited:
      return "RateLimited";
    case ErrorKind::Unavailable:
      return "Unavailable";
    case ErrorKind::Ambiguous:
      return "Ambiguous";
    case ErrorKind::Tls:
      return "Tls";
    case ErrorKind::Corrupt:
      return "Corrupt";
    case ErrorKind::Io:
      return "Io";
    case ErrorKind::Internal:
      return "Internal";
  }
  return "Internal";
}

std::string Error::describe() const {
  std::string out = message;
  if (http_status != 0 || !request_id.empty()) {
    out += " (";
    if (http_status != 0) out += "HTTP " + std::to_string(http_status);
    if (!request_id.empty()) {
      if (http_status != 0) out += ", ";
      out += "requestId " + request_id;
    }
    out += ")";
  }
  return out;
}

}  // namespace tokend
