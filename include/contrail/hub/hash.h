// Streaming SHA-256 (FIPS 180-4) and SHA-1 (for git blob ids), used to verify downloads.
// Contract: update() may be called any number of times with any chunk sizes; digest() finalises
// and may be called once; the result equals the hash of the concatenated chunks.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace contrail::hub {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  std::array<uint8_t, 32> digest();
  std::string hex_digest();  // 64 lowercase hex digits

 private:
  void block(const uint8_t* p);  // one 64-byte block
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buf_{};  // pending bytes of the current block
  size_t buf_len_ = 0;
  uint64_t total_ = 0;  // bytes hashed so far
};

class Sha1 {
 public:
  Sha1();
  void update(const void* data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  std::array<uint8_t, 20> digest();
  std::string hex_digest();  // 40 lowercase hex digits

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 5> h_;
  std::array<uint8_t, 64> buf_{};
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

// Lowercase hex of `n` bytes.
std::string to_hex(const uint8_t* p, size_t n);

// git's object id of a blob: sha1("blob <size>\0" + content), fed incrementally. `size` must be the
// exact content length (it is part of the hashed header).
class GitBlobSha1 {
 public:
  explicit GitBlobSha1(uint64_t size);
  void update(const void* data, size_t n) { sha_.update(data, n); }
  std::string hex_digest() { return sha_.hex_digest(); }

 private:
  Sha1 sha_;
};

}  // namespace contrail::hub
