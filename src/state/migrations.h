// The schema migrations compiled into the binary from schema/NNN_words.sql
// and schema/postgres/NNN_words.sql (generated at build time by
// embed_migrations.cmake). Internal to state/; tests use it to build
// databases of an older schema version.
#pragma once

#include <span>
#include <string_view>

namespace tokend::state {

struct Migration {
  int version;                 // NNN of the file name; the schema version after it is applied
  std::string_view file_name;  // "001_init.sql"
  std::string_view sql;        // the file's exact content
};

// Every migration in ascending version order: versions 1, 2, … without gaps.
// The data is static; the span is valid for the life of the program.
std::span<const Migration> schema_migrations();
// The PostgreSQL migrations, likewise; number N has the semantics of the
// SQLite migration N.
std::span<const Migration> postgres_migrations();

}  // namespace tokend::state
