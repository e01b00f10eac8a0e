// SHA-256 and SHA-1 through OpenSSL's libcrypto (EVP message digests).
#include "hub/hash.h"

#include <fmt/format.h>
#include <openssl/evp.h>

#include "contrail/core/error.h"

namespace contrail::hub {
namespace {

const char* algorithm_name(DigestAlgorithm a) { return a == DigestAlgorithm::Sha256 ? "sha256" : "sha1"; }

[[noreturn]] void fail(DigestAlgorithm a, const char* step) {
  throw Error(fmt::format("{}: OpenSSL {} failed", algorithm_name(a), step));
}

}  // namespace

struct Digest::Ctx {
  EVP_MD_CTX* md = nullptr;
  bool finished = false;
  ~Ctx() { EVP_MD_CTX_free(md); }
};

Digest::Digest(DigestAlgorithm algorithm) : ctx_(std::make_unique<Ctx>()), algorithm_(algorithm) {
  ctx_->md = EVP_MD_CTX_new();
  if (ctx_->md == nullptr) fail(algorithm_, "EVP_MD_CTX_new");
  const EVP_MD* md = algorithm == DigestAlgorithm::Sha256 ? EVP_sha256() : EVP_sha1();
  if (md == nullptr || EVP_DigestInit_ex(ctx_->md, md, nullptr) != 1) fail(algorithm_, "EVP_DigestInit_ex");
}

Digest::~Digest() = default;
Digest::Digest(Digest&&) noexcept = default;
Digest& Digest::operator=(Digest&&) noexcept = default;

void Digest::update(const void* data, size_t n) {
  if (ctx_->finished)
    throw Error(fmt::format("{}: update() after hex_digest() (the digest is final)", algorithm_name(algorithm_)));
  if (n > 0 && EVP_DigestUpdate(ctx_->md, data, n) != 1) fail(algorithm_, "EVP_DigestUpdate");
}

std::string Digest::hex_digest() {
  if (ctx_->finished)
    throw Error(fmt::format("{}: hex_digest() called twice (the digest is final)", algorithm_name(algorithm_)));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx_->md, md, &len) != 1) fail(algorithm_, "EVP_DigestFinal_ex");
  ctx_->finished = true;
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex(2 * len, '0');
  for (unsigned int i = 0; i < len; ++i) {
    hex[2 * i] = kDigits[md[i] >> 4];
    hex[2 * i + 1] = kDigits[md[i] & 15];
  }
  return hex;
}

GitBlobSha1::GitBlobSha1(uint64_t size) {
  const std::string header = "blob " + std::to_string(size);
  update(header.data(), header.size() + 1);  // including the terminating NUL
}

}  // namespace contrail::hub
