#include "model/token.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>

namespace tokend {

namespace {
constexpr std::string_view kAddressPrefix = "astro_api_token.";

// Digits only: no sign, no spaces.
bool parse_int(std::string_view text, int& out) {
  if (text.empty()) return false;
  for (char c : text)
    if (c < '0' || c > '9') return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size();
}
}  // namespace

std::string_view to_string(EntityType type) {
  switch (type) {
    case EntityType::Organization:
      return "ORGANIZATION";
    case EntityType::Workspace:
      return "WORKSPACE";
    case EntityType::Deployment:
      return "DEPLOYMENT";
    case EntityType::Dag:
      return "DAG";
    case EntityType::DagTag:
      return "DAG_TAG";
  }
  return "ORGANIZATION";
}

std::optional<EntityType> parse_entity_type(std::string_view text) {
  if (text == "ORGANIZATION") return EntityType::Organization;
  if (text == "WORKSPACE") return EntityType::Workspace;
  if (text == "DEPLOYMENT") return EntityType::Deployment;
  if (text == "DAG") return EntityType::Dag;
  if (text == "DAG_TAG") return EntityType::DagTag;
  return std::nullopt;
}

bool is_dag_entity(EntityType type) {
  return type == EntityType::Dag || type == EntityType::DagTag;
}

bool is_token_type(EntityType type) {
  return type == EntityType::Organization || type == EntityType::Workspace ||
         type == EntityType::Deployment;
}

std::optional<EntityType> parse_token_type(std::string_view text) {
  std::optional<EntityType> type = parse_entity_type(text);
  if (type && !is_token_type(*type)) return std::nullopt;
  return type;
}

std::string_view to_string(TokenKind kind) {
  switch (kind) {
    case TokenKind::Standard:
      return "STANDARD";
    case TokenKind::DirectAccess:
      return "DIRECT_ACCESS";
  }
  return "STANDARD";
}

std::optional<TokenKind> parse_token_kind(std::string_view text) {
  if (text == "STANDARD") return TokenKind::Standard;
  if (text == "DIRECT_ACCESS") return TokenKind::DirectAccess;
  return std::nullopt;
}

bool roles_normalized(const RoleSet& roles) {
  return std::adjacent_find(roles.begin(), roles.end(),
                            [](const Role& a, const Role& b) { return !(a < b); }) == roles.end();
}

bool same_roles(const RoleSet& a, const RoleSet& b) {
  if (roles_normalized(a) && roles_normalized(b)) return a == b;
  return normalize_roles(a) == normalize_roles(b);
}

RoleSet normalize_roles(RoleSet roles) {
  if (roles_normalized(roles)) return roles;
  std::sort(roles.begin(), roles.end());
  roles.erase(std::unique(roles.begin(), roles.end()), roles.end());
  return roles;
}

std::optional<Role> primary_role(const RoleSet& roles, EntityType type) {
  std::optional<Role> found;
  for (const Role& r : roles) {
    if (r.entity_type != type) continue;
    if (found) return std::nullopt;
    found = r;
  }
  return found;
}

std::string format_rfc3339(Timestamp t) {
  using namespace std::chrono;
  const sys_days day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss<seconds> time{t - day};
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(time.hours().count()), static_cast<int>(time.minutes().count()),
                static_cast<int>(time.seconds().count()));
  return buf;
}

std::optional<Timestamp> parse_rfc3339(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS
  if (s.size() < 20) return std::nullopt;
  int year, month, day, hour, minute, second;
  if (s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      s[13] != ':' || s[16] != ':')
    return std::nullopt;
  if (!parse_int(s.substr(0, 4), year) || !parse_int(s.substr(5, 2), month) ||
      !parse_int(s.substr(8, 2), day) || !parse_int(s.substr(11, 2), hour) ||
      !parse_int(s.substr(14, 2), minute) || !parse_int(s.substr(17, 2), second))
    return std::nullopt;
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60)
    return std::nullopt;
  std::string_view rest = s.substr(19);
  if (!rest.empty() && rest.front() == '.') {
    size_t i = 1;
    while (i < rest.size() && rest[i] >= '0' && rest[i] <= '9') ++i;
    if (i == 1) return std::nullopt;
    rest = rest.substr(i);
  }
  int offset_seconds = 0;
  if (rest == "Z" || rest == "z") {
    offset_seconds = 0;
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
    int oh, om;
    if (!parse_int(rest.substr(1, 2), oh) || !parse_int(rest.substr(4, 2), om)) return std::nullopt;
    offset_seconds = (oh * 3600 + om * 60) * (rest[0] == '+' ? 1 : -1);
  } else {
    return std::nullopt;
  }
  using namespace std::chrono;
  year_month_day ymd{std::chrono::year{year}, std::chrono::month{static_cast<unsigned>(month)},
                     std::chrono::day{static_cast<unsigned>(day)}};
  if (!ymd.ok()) return std::nullopt;
  sys_seconds t =
      sys_days{ymd} + hours{hour} + minutes{minute} + seconds{second} - seconds{offset_seconds};
  // An offset must not carry the instant out of the four-digit years it is written in.
  const std::chrono::year utc_year = year_month_day{floor<days>(t)}.year();
  if (utc_year < std::chrono::year{1} || utc_year > std::chrono::year{9999}) return std::nullopt;
  return t;
}

std::ostream& operator<<(std::ostream& out, const SecretValue&) {
  return out << "(sensitive value)";
}

std::string address_for_key(std::string_view key) {
  std::string address(kAddressPrefix);
  address += key;
  return address;
}

std::optional<std::string> key_for_address(std::string_view address) {
  if (address.size() <= kAddressPrefix.size() ||
      address.substr(0, kAddressPrefix.size()) != kAddressPrefix)
    return std::nullopt;
  return std::string(address.substr(kAddressPrefix.size()));
}

}  // namespace tokend
