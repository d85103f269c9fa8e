#include "util/hash.h"

#include <Poco/DigestEngine.h>
#include <Poco/SHA2Engine.h>

namespace tokend {

std::string sha256_hex(std::string_view data) {
  Poco::SHA2Engine engine(Poco::SHA2Engine::SHA_256);
  engine.update(data.data(), static_cast<unsigned>(data.size()));
  return Poco::DigestEngine::digestToHex(engine.digest());
}

struct Sha256::Engine {
  Poco::SHA2Engine sha{Poco::SHA2Engine::SHA_256};
};

Sha256::Sha256() : engine_(std::make_unique<Engine>()) {}
Sha256::~Sha256() = default;

void Sha256::update(std::string_view data) {
  engine_->sha.update(data.data(), static_cast<unsigned>(data.size()));
}

std::string Sha256::hex_digest() { return Poco::DigestEngine::digestToHex(engine_->sha.digest()); }

}  // namespace tokend
