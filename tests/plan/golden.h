// Golden files under tests/data/plan/: compared byte for byte; regenerated
// instead when TOKEND_UPDATE_GOLDEN=1 is set in the environment.
#pragma once

#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace tokend::plan::testing {

inline std::string golden_path(const std::string& name) {
  return std::string(TOKEND_SOURCE_DIR) + "/tests/data/plan/" + name;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

inline void check_golden(const std::string& name, const std::string& actual) {
  const std::string path = golden_path(name);
  const char* update = std::getenv("TOKEND_UPDATE_GOLDEN");
  if (update != nullptr && std::string(update) == "1") {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << actual;
    out.close();
    REQUIRE(out.good());
  }
  std::ifstream probe(path);
  INFO("golden file " << path << " (set TOKEND_UPDATE_GOLDEN=1 to regenerate)");
  REQUIRE(probe.good());
  CHECK(read_file(path) == actual);
}

// Replaces every occurrence of `from` in `text` with `to`.
inline std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

}  // namespace tokend::plan::testing
