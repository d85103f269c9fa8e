#include "util/hash.h"

#include <openssl/evp.h>

#include <array>
#include <stdexcept>

namespace tokend {

namespace {

std::string to_hex(const unsigned char* digest, unsigned int size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex(static_cast<std::size_t>(size) * 2, '0');
  for (unsigned int i = 0; i < size; ++i) {
    hex[2 * i] = kDigits[digest[i] >> 4];
    hex[2 * i + 1] = kDigits[digest[i] & 0xf];
  }
  return hex;
}

}  // namespace

// OpenSSL's SHA-256 uses the CPU's SHA extensions where there are any: spec
// files of several megabytes and thousands of sinks are hashed on every load.
std::string sha256_hex(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), digest.data(), &size, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("SHA-256 is not available");
  return to_hex(digest.data(), size);
}

struct Sha256::Engine {
  EVP_MD_CTX* context = EVP_MD_CTX_new();
  ~Engine() { EVP_MD_CTX_free(context); }
};

Sha256::Sha256() : engine_(std::make_unique<Engine>()) {
  if (!engine_->context || EVP_DigestInit_ex(engine_->context, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("SHA-256 is not available");
}
Sha256::~Sha256() = default;

void Sha256::update(std::string_view data) {
  EVP_DigestUpdate(engine_->context, data.data(), data.size());
}

std::string Sha256::hex_digest() {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  EVP_DigestFinal_ex(engine_->context, digest.data(), &size);
  return to_hex(digest.data(), size);
}

}  // namespace tokend
