# Embeds the schema migrations (NNN_words.sql in SCHEMA_DIR) into a C++
# source that defines tokend::state::FUNCTION() (default schema_migrations),
# so that the installed binary needs no source tree. Run at build time by
# CMakeLists.txt, once for schema/ and once for schema/postgres/:
#
#   cmake -DSCHEMA_DIR=<dir> -DOUTPUT=<file.cpp> [-DFUNCTION=<name>] -P embed_migrations.cmake
#
# Fails (and so fails the build) when there is no migration, when a file name
# is not NNN_words.sql, or when the numbers are not 1, 2, 3 … without gaps.
cmake_minimum_required(VERSION 3.25)
if(NOT FUNCTION)
  set(FUNCTION schema_migrations)
endif()

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

file(WRITE "${OUTPUT}" "// Generated from ${SCHEMA_DIR}/*.sql by src/state/embed_migrations.cmake. Do not edit.
#include \"state/migrations.h\"

namespace tokend::state {

namespace {

${literals}const Migration kMigrations[] = {
${entries}};

}  // namespace

std::span<const Migration> ${FUNCTION}() { return kMigrations; }

}  // namespace tokend::state
")
