// Streaming SHA-256 and SHA-1 (for git blob ids) through OpenSSL's EVP digests, used to verify
// downloads (private to src/hub and its tests).
// Contract: update() may be called any number of times with any chunk sizes; hex_digest()
// finalises and may be called once; the result equals the hash of the concatenated chunks.
// Throws contrail::Error naming the algorithm if OpenSSL cannot provide or run the digest.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace contrail::hub {

enum class DigestAlgorithm { Sha256, Sha1 };

class Digest {
 public:
  explicit Digest(DigestAlgorithm algorithm);
  ~Digest();
  Digest(Digest&&) noexcept;
  Digest& operator=(Digest&&) noexcept;

  void update(const void* data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // Lowercase hex of the digest: 64 digits for SHA-256, 40 for SHA-1.
  std::string hex_digest();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
  DigestAlgorithm algorithm_;
};

class Sha256 : public Digest {
 public:
  Sha256() : Digest(DigestAlgorithm::Sha256) {}
};

class Sha1 : public Digest {
 public:
  Sha1() : Digest(DigestAlgorithm::Sha1) {}
};

// git's object id of a blob: sha1("blob <size>\0" + content), fed incrementally. `size` must be the
// exact content length (it is part of the hashed header).
class GitBlobSha1 : public Sha1 {
 public:
  explicit GitBlobSha1(uint64_t size);
};

}  // namespace contrail::hub
