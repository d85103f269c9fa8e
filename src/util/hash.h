#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace tokend {

// Lowercase hex SHA-256 of `data`. Used to fingerprint secret values so that
// state can recognise a sink's content without ever storing it.
std::string sha256_hex(std::string_view data);

// SHA-256 over data fed in pieces, for inputs too large to hold at once.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(std::string_view data);
  // Lowercase hex of everything fed so far; call once.
  std::string hex_digest();

 private:
  struct Engine;
  std::unique_ptr<Engine> engine_;
};

}  // namespace tokend
