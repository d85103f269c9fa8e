#include "astro/page_scanner.h"

#include <cstdint>
#include <limits>
#include <string>

#include "util/json_parse.h"

namespace tokend::astro::json {

namespace {

// Unknown values are skipped only this deep (the page, its tokens array, a
// token, its roles and a role take five levels); deeper ones are left to the
// tree decoder and its limit.
constexpr int kMaxSkipDepth = kMaxJsonDepth / 2;

// A cursor over the body. Every reader returns false when the text is not
// what it expects; the scan then gives up.
class Cursor {
 public:
  explicit Cursor(std::string_view text) : text_(text) {}

  void skip_space() {
    while (at_ < text_.size()) {
      const char c = text_[at_];
      if (c != ' ' && c != '\n' && c != '\r' && c != '\t') return;
      ++at_;
    }
  }

  bool at_end() {
    skip_space();
    return at_ == text_.size();
  }

  // Consumes `c` (after whitespace) when it is next.
  bool take(char c) {
    skip_space();
    if (at_ < text_.size() && text_[at_] == c) {
      ++at_;
      return true;
    }
    return false;
  }

  // The next value is JSON null (consumed when it is).
  bool take_null() {
    skip_space();
    if (text_.substr(at_, 4) != "null") return false;
    at_ += 4;
    return true;
  }

  bool string(std::string& out) {
    out.clear();
    if (!take('"')) return false;
    while (at_ < text_.size()) {
      const auto c = static_cast<unsigned char>(text_[at_]);
      if (c == '"') {
        ++at_;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        if (!escape(out)) return false;
        continue;
      }
      if (c < 0x80) {
        // The common case: a run of plain ASCII.
        const std::size_t start = at_;
        while (at_ < text_.size()) {
          const auto d = static_cast<unsigned char>(text_[at_]);
          if (d == '"' || d == '\\' || d < 0x20 || d >= 0x80) break;
          ++at_;
        }
        out.append(text_.substr(start, at_ - start));
        continue;
      }
      if (!utf8_sequence(out)) return false;
    }
    return false;
  }

  // A non-negative integer literal that fits an int (no sign, fraction,
  // exponent or leading zero).
  bool count(int& out) {
    skip_space();
    const std::size_t start = at_;
    std::int64_t value = 0;
    while (at_ < text_.size() && text_[at_] >= '0' && text_[at_] <= '9') {
      value = value * 10 + (text_[at_] - '0');
      if (value > std::numeric_limits<int>::max()) return false;
      ++at_;
    }
    const std::size_t digits = at_ - start;
    if (digits == 0 || (digits > 1 && text_[start] == '0')) return false;
    if (at_ < text_.size() && (text_[at_] == '.' || text_[at_] == 'e' || text_[at_] == 'E'))
      return false;
    out = static_cast<int>(value);
    return true;
  }

  // Any JSON value, not kept.
  bool skip_value(int depth) {
    if (depth > kMaxSkipDepth) return false;
    skip_space();
    if (at_ >= text_.size()) return false;
    const char c = text_[at_];
    if (c == '"') return string(scratch_);
    if (c == '{') {
      ++at_;
      if (take('}')) return true;
      do {
        if (!string(scratch_) || !take(':') || !skip_value(depth + 1)) return false;
      } while (take(','));
      return take('}');
    }
    if (c == '[') {
      ++at_;
      if (take(']')) return true;
      do {
        if (!skip_value(depth + 1)) return false;
      } while (take(','));
      return take(']');
    }
    for (std::string_view literal : {"true", "false", "null"}) {
      if (text_.substr(at_, literal.size()) == literal) {
        at_ += literal.size();
        return true;
      }
    }
    return number();
  }

 private:
  // After a backslash.
  bool escape(std::string& out) {
    if (at_ + 1 >= text_.size()) return false;
    const char e = text_[at_ + 1];
    at_ += 2;
    switch (e) {
      case '"':
        out += '"';
        return true;
      case '\\':
        out += '\\';
        return true;
      case '/':
        out += '/';
        return true;
      case 'b':
        out += '\b';
        return true;
      case 'f':
        out += '\f';
        return true;
      case 'n':
        out += '\n';
        return true;
      case 'r':
        out += '\r';
        return true;
      case 't':
        out += '\t';
        return true;
      case 'u':
        break;
      default:
        return false;
    }
    std::uint32_t code = 0;
    if (!hex4(code)) return false;
    if (code >= 0xDC00 && code <= 0xDFFF) return false;  // a lone low surrogate
    if (code >= 0xD800 && code <= 0xDBFF) {
      std::uint32_t low = 0;
      if (text_.substr(at_, 2) != "\\u") return false;
      at_ += 2;
      if (!hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
      code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
    }
    if (code == 0) return false;  // leave NUL inside a string to the tree decoder
    append_utf8(out, code);
    return true;
  }

  bool hex4(std::uint32_t& code) {
    if (at_ + 4 > text_.size()) return false;
    for (int i = 0; i < 4; ++i) {
      const char h = text_[at_++];
      code <<= 4;
      if (h >= '0' && h <= '9')
        code |= static_cast<std::uint32_t>(h - '0');
      else if (h >= 'a' && h <= 'f')
        code |= static_cast<std::uint32_t>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F')
        code |= static_cast<std::uint32_t>(h - 'A' + 10);
      else
        return false;
    }
    return true;
  }

  static void append_utf8(std::string& out, std::uint32_t code) {
    if (code < 0x80) {
      out += static_cast<char>(code);
    } else if (code < 0x800) {
      out += static_cast<char>(0xC0 | (code >> 6));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
      out += static_cast<char>(0xE0 | (code >> 12));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (code >> 18));
      out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    }
  }

  // One well-formed UTF-8 sequence of two to four bytes (no overlong forms,
  // no surrogates, nothing above U+10FFFF), copied as it is.
  bool utf8_sequence(std::string& out) {
    const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text_[i]); };
    const unsigned char lead = byte(at_);
    std::size_t length = 0;
    std::uint32_t code = 0;
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
      code = lead & 0x1F;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      code = lead & 0x0F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      code = lead & 0x07;
    } else {
      return false;
    }
    if (at_ + length > text_.size()) return false;
    for (std::size_t i = 1; i < length; ++i) {
      const unsigned char next = byte(at_ + i);
      if ((next & 0xC0) != 0x80) return false;
      code = (code << 6) | (next & 0x3F);
    }
    if ((length == 3 && code < 0x800) || (length == 4 && code < 0x10000) || code > 0x10FFFF ||
        (code >= 0xD800 && code <= 0xDFFF))
      return false;
    out.append(text_.substr(at_, length));
    at_ += length;
    return true;
  }

  // A JSON number whose integer part stays well inside 64 bits.
  bool number() {
    const std::size_t start = at_;
    if (at_ < text_.size() && text_[at_] == '-') ++at_;
    const std::size_t int_start = at_;
    while (at_ < text_.size() && text_[at_] >= '0' && text_[at_] <= '9') ++at_;
    const std::size_t digits = at_ - int_start;
    if (digits == 0 || digits > 18 || (digits > 1 && text_[int_start] == '0')) return false;
    if (at_ < text_.size() && text_[at_] == '.') {
      ++at_;
      const std::size_t fraction = at_;
      while (at_ < text_.size() && text_[at_] >= '0' && text_[at_] <= '9') ++at_;
      if (at_ == fraction) return false;
    }
    if (at_ < text_.size() && (text_[at_] == 'e' || text_[at_] == 'E')) {
      ++at_;
      if (at_ < text_.size() && (text_[at_] == '+' || text_[at_] == '-')) ++at_;
      const std::size_t exponent = at_;
      while (at_ < text_.size() && text_[at_] >= '0' && text_[at_] <= '9') ++at_;
      if (at_ == exponent || at_ - exponent > 3) return false;
    }
    return at_ > start;
  }

  std::string_view text_;
  std::size_t at_ = 0;
  std::string scratch_;  // strings skipped
};

// Reads the members of one object, calling `member(key)` with the cursor at
// each value; `member` consumes the value or returns false.
template <typename Member>
bool members(Cursor& in, std::string& key, Member&& member) {
  if (!in.take('{')) return false;
  if (in.take('}')) return true;
  do {
    if (!in.string(key) || !in.take(':') || !member(key)) return false;
  } while (in.take(','));
  return in.take('}');
}

// Reads the elements of one array, calling `element()` with the cursor at
// each; `element` consumes it or returns false.
template <typename Element>
bool elements(Cursor& in, Element&& element) {
  if (!in.take('[')) return false;
  if (in.take(']')) return true;
  do {
    if (!element()) return false;
  } while (in.take(','));
  return in.take(']');
}

// Marks field `bit` seen; false when it was seen before (a repeated field is
// left to the tree decoder, whose last value wins).
bool first_time(unsigned& seen, unsigned bit) {
  if (seen & bit) return false;
  seen |= bit;
  return true;
}

class PageScan {
 public:
  PageScan(std::string_view body, ApiVersion version) : in_(body), v1_(version == ApiVersion::V1) {}

  std::optional<TokenPage> run() {
    TokenPage page;
    unsigned seen = 0;
    const bool read = members(in_, key_, [&](const std::string& key) {
      if (key == "limit") return first_time(seen, 1) && in_.count(page.limit);
      if (key == "offset") return first_time(seen, 2) && in_.count(page.offset);
      if (key == "totalCount") return first_time(seen, 4) && in_.count(page.total_count);
      if (key == "tokens") return first_time(seen, 8) && tokens(page.tokens);
      return in_.skip_value(1);
    });
    if (!read || seen != 15 || !in_.at_end()) return std::nullopt;
    return page;
  }

 private:
  bool tokens(std::vector<ApiToken>& out) {
    return elements(in_, [&] {
      ApiToken token;
      if (!this->token(token)) return false;
      out.push_back(std::move(token));
      return true;
    });
  }

  bool time(Timestamp& out) {
    if (!in_.string(value_)) return false;
    const std::optional<Timestamp> parsed = parse_rfc3339(value_);
    if (!parsed) return false;
    out = *parsed;
    return true;
  }

  // An optional field: null is absent.
  bool optional_time(std::optional<Timestamp>& out) {
    if (in_.take_null()) return true;
    Timestamp t{};
    if (!time(t)) return false;
    out = t;
    return true;
  }

  bool token_type(EntityType& out) {
    if (!in_.string(value_)) return false;
    const std::optional<EntityType> type = parse_token_type(value_);
    if (!type) return false;
    out = *type;
    return true;
  }

  bool token(ApiToken& t) {
    // Bits of the fields seen; kRequired must all be there.
    enum : unsigned {
      kId = 1u << 0,
      kName = 1u << 1,
      kDescription = 1u << 2,
      kType = 1u << 3,
      kKind = 1u << 4,
      kShortToken = 1u << 5,
      kCreated = 1u << 6,
      kUpdated = 1u << 7,
      kStart = 1u << 8,
      kEnd = 1u << 9,
      kLastUsed = 1u << 10,
      kLastRotated = 1u << 11,
      kExpiry = 1u << 12,
      kToken = 1u << 13,
      kRoles = 1u << 14,
    };
    unsigned required =
        kId | kName | kDescription | kType | kShortToken | kCreated | kUpdated | kStart;
    if (v1_) required |= kKind;
    unsigned seen = 0;
    const bool read = members(in_, key_, [&](const std::string& key) {
      if (key == "id") return first_time(seen, kId) && in_.string(t.id);
      if (key == "name") return first_time(seen, kName) && in_.string(t.name);
      if (key == "description") return first_time(seen, kDescription) && in_.string(t.description);
      if (key == (v1_ ? "scope" : "type")) return first_time(seen, kType) && token_type(t.type);
      if (v1_ && key == "kind") {
        if (!first_time(seen, kKind) || !in_.string(value_)) return false;
        const std::optional<TokenKind> kind = parse_token_kind(value_);
        if (kind) t.kind = *kind;
        return kind.has_value();
      }
      if (v1_ && key == "lastRotatedAt")
        return first_time(seen, kLastRotated) && optional_time(t.last_rotated_at);
      if (key == "shortToken") return first_time(seen, kShortToken) && in_.string(t.short_token);
      if (key == "createdAt") return first_time(seen, kCreated) && time(t.created_at);
      if (key == "updatedAt") return first_time(seen, kUpdated) && time(t.updated_at);
      if (key == "startAt") return first_time(seen, kStart) && time(t.start_at);
      if (key == "endAt") return first_time(seen, kEnd) && optional_time(t.end_at);
      if (key == "lastUsedAt") return first_time(seen, kLastUsed) && optional_time(t.last_used_at);
      if (key == "expiryPeriodInDays") {
        if (!first_time(seen, kExpiry)) return false;
        if (in_.take_null()) return true;
        int days = 0;
        if (!in_.count(days)) return false;
        t.expiry_period_in_days = days;
        return true;
      }
      if (key == "token") {
        if (!first_time(seen, kToken)) return false;
        if (in_.take_null()) return true;
        if (!in_.string(value_)) return false;
        t.token = SecretValue(value_);
        return true;
      }
      if (key == "roles") {
        if (!first_time(seen, kRoles)) return false;
        if (in_.take_null()) return true;
        return roles(t.roles);
      }
      return in_.skip_value(3);
    });
    if (!read || (seen & required) != required) return false;
    t.roles = normalize_roles(std::move(t.roles));
    return true;
  }

  bool roles(RoleSet& out) {
    return elements(in_, [&] {
      Role role;
      if (!this->role(role)) return false;
      out.push_back(std::move(role));
      return true;
    });
  }

  bool role(Role& out) {
    enum : unsigned { kRole = 1, kEntityId = 2, kEntityType = 4, kDeployment = 8 };
    std::string role_name, entity_id, deployment_id;
    EntityType type = EntityType::Organization;
    unsigned seen = 0;
    const bool read = members(in_, key_, [&](const std::string& key) {
      if (key == "role") return first_time(seen, kRole) && in_.string(role_name);
      if (key == "entityId") return first_time(seen, kEntityId) && in_.string(entity_id);
      if (key == "entityType") {
        if (!first_time(seen, kEntityType) || !in_.string(value_)) return false;
        const std::optional<EntityType> parsed =
            v1_ ? parse_entity_type(value_) : parse_token_type(value_);
        if (parsed) type = *parsed;
        return parsed.has_value();
      }
      if (v1_ && key == "deploymentId") {
        if (!first_time(seen, kDeployment)) return false;
        return in_.take_null() || in_.string(deployment_id);
      }
      return in_.skip_value(5);
    });
    if (!read || (seen & (kRole | kEntityId | kEntityType)) != (kRole | kEntityId | kEntityType))
      return false;
    // As the tree decoder: deploymentId means something on DAG roles only.
    if (!is_dag_entity(type)) deployment_id.clear();
    out = Role(std::move(role_name), std::move(entity_id), type, std::move(deployment_id));
    return true;
  }

  Cursor in_;
  const bool v1_;
  std::string key_;    // the member name being read
  std::string value_;  // an enum or time string being read
};

}  // namespace

std::optional<TokenPage> scan_token_page(std::string_view body, ApiVersion version) {
  return PageScan(body, version).run();
}

}  // namespace tokend::astro::json
