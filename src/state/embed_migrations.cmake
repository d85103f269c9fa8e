# Embeds the schema migrations (schema/NNN_words.sql) into a C++ source that
# defines tokend::state::schema_migrations(), so that the installed binary
# needs no source tree. Run at build time by CMakeLists.txt:
#
#   cmake -DSCHEMA_DIR=<dir> -DOUTPUT=<file.cpp> -P embed_migrations.cmake
#
# Fails (and so fails the build) when there is no migration, when a file name
# is not NNN_words.sql, or when the numbers are not 1, 2, 3 … without gaps.
cmake_minimum_required(VERSION 3.25)

file(GLOB sql_files "${SCHEMA_DIR}/*.sql")
list(SORT sql_files)
if(NOT sql_files)
  message(FATAL_ERROR "no schema migrations in ${SCHEMA_DIR}")
endif()

string(REPEAT "[0-9a-f]" 48 line_of_hex)  # 24 bytes per source line
set(literals "")
set(entries "")
set(expected 1)
foreach(sql_file IN LISTS sql_files)
  get_filename_component(file_name "${sql_file}" NAME)
  if(NOT file_name MATCHES "^([0-9][0-9][0-9])_[a-z0-9_]+\\.sql$")
    message(FATAL_ERROR "${sql_file}: a migration file is named NNN_words.sql (lowercase)")
  endif()
  string(REGEX REPLACE "^0+" "" version "${CMAKE_MATCH_1}")
  if(NOT version STREQUAL expected)
    message(FATAL_ERROR "${sql_file}: expected migration number ${expected}")
  endif()

  file(READ "${sql_file}" hex HEX)
  string(REGEX REPLACE "(${line_of_hex})" "\\1\n" hex "${hex}")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "\\\\x\\1" hex "${hex}")
  string(REPLACE "\n" "\"\n    \"" hex "${hex}")
  string(APPEND literals "constexpr char kMigration${version}[] =\n    \"${hex}\";\n\n")
  string(APPEND entries
    "    {${version}, \"${file_name}\", {kMigration${version}, sizeof kMigration${version} - 1}},\n")
  math(EXPR expected "${expected} + 1")
endforeach()

file(WRITE "${OUTPUT}" "// Generated from schema/*.sql by src/state/embed_migrations.cmake. Do not edit.
#include \"state/migrations.h\"

namespace tokend::state {

namespace {

${literals}const Migration kMigrations[] = {
${entries}};

}  // namespace

std::span<const Migration> schema_migrations() { return kMigrations; }

}  // namespace tokend::state
")
