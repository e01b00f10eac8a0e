// SHA-256 and SHA-1 after FIPS 180-4 (sections 6.1 and 6.2): big-endian message schedule,
// padding with 0x80, zeros and the 64-bit bit length.
#include "contrail/hub/hash.h"

#include <algorithm>
#include <cstring>

namespace contrail::hub {
namespace {

constexpr uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
constexpr uint32_t rotl(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

uint32_t load_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

void store_be32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

constexpr uint32_t kSha256K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

// Buffers `data` into 64-byte blocks for `Hash::block`; shared by both hashes.
template <typename Hash>
void absorb(Hash& h, std::array<uint8_t, 64>& buf, size_t& buf_len, uint64_t& total, const void* data, size_t n,
            void (Hash::*block)(const uint8_t*)) {
  const auto* p = static_cast<const uint8_t*>(data);
  total += n;
  if (buf_len > 0) {
    const size_t take = std::min(n, 64 - buf_len);
    std::memcpy(buf.data() + buf_len, p, take);
    buf_len += take;
    p += take;
    n -= take;
    if (buf_len < 64) return;
    (h.*block)(buf.data());
    buf_len = 0;
  }
  for (; n >= 64; p += 64, n -= 64) (h.*block)(p);
  std::memcpy(buf.data(), p, n);
  buf_len = n;
}

// Appends the padding and the big-endian bit length, processing the last one or two blocks.
template <typename Hash>
void pad(Hash& h, std::array<uint8_t, 64>& buf, size_t buf_len, uint64_t total, void (Hash::*block)(const uint8_t*)) {
  buf[buf_len++] = 0x80;
  if (buf_len > 56) {
    std::memset(buf.data() + buf_len, 0, 64 - buf_len);
    (h.*block)(buf.data());
    buf_len = 0;
  }
  std::memset(buf.data() + buf_len, 0, 56 - buf_len);
  const uint64_t bits = total * 8;
  store_be32(buf.data() + 56, static_cast<uint32_t>(bits >> 32));
  store_be32(buf.data() + 60, static_cast<uint32_t>(bits));
  (h.*block)(buf.data());
}

}  // namespace

std::string to_hex(const uint8_t* p, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = kDigits[p[i] >> 4];
    s[2 * i + 1] = kDigits[p[i] & 15];
  }
  return s;
}

// ---- SHA-256 ----------------------------------------------------------------------------------

Sha256::Sha256()
    : h_{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19} {}

void Sha256::block(const uint8_t* p) {
  uint32_t w[64];  // (64,) message schedule
  for (int t = 0; t < 16; ++t) w[t] = load_be32(p + 4 * t);
  for (int t = 16; t < 64; ++t) {
    const uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
    const uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
    w[t] = w[t - 16] + s0 + w[t - 7] + s1;
  }
  uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];
  for (int t = 0; t < 64; ++t) {
    const uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + kSha256K[t] + w[t];
    const uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    h = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h_[0] += a, h_[1] += b, h_[2] += c, h_[3] += d, h_[4] += e, h_[5] += f, h_[6] += g, h_[7] += h;
}

void Sha256::update(const void* data, size_t n) { absorb(*this, buf_, buf_len_, total_, data, n, &Sha256::block); }

std::array<uint8_t, 32> Sha256::digest() {
  pad(*this, buf_, buf_len_, total_, &Sha256::block);
  std::array<uint8_t, 32> out{};
  for (int i = 0; i < 8; ++i) store_be32(out.data() + 4 * i, h_[i]);
  return out;
}

std::string Sha256::hex_digest() {
  const auto d = digest();
  return to_hex(d.data(), d.size());
}

// ---- SHA-1 ------------------------------------------------------------------------------------

Sha1::Sha1() : h_{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0} {}

void Sha1::block(const uint8_t* p) {
  uint32_t w[80];  // (80,) message schedule
  for (int t = 0; t < 16; ++t) w[t] = load_be32(p + 4 * t);
  for (int t = 16; t < 80; ++t) w[t] = rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
  uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4];
  for (int t = 0; t < 80; ++t) {
    uint32_t f, k;
    if (t < 20) {
      f = (b & c) | (~b & d), k = 0x5a827999;
    } else if (t < 40) {
      f = b ^ c ^ d, k = 0x6ed9eba1;
    } else if (t < 60) {
      f = (b & c) | (b & d) | (c & d), k = 0x8f1bbcdc;
    } else {
      f = b ^ c ^ d, k = 0xca62c1d6;
    }
    const uint32_t tmp = rotl(a, 5) + f + e + k + w[t];
    e = d;
    d = c;
    c = rotl(b, 30);
    b = a;
    a = tmp;
  }
  h_[0] += a, h_[1] += b, h_[2] += c, h_[3] += d, h_[4] += e;
}

void Sha1::update(const void* data, size_t n) { absorb(*this, buf_, buf_len_, total_, data, n, &Sha1::block); }

std::array<uint8_t, 20> Sha1::digest() {
  pad(*this, buf_, buf_len_, total_, &Sha1::block);
  std::array<uint8_t, 20> out{};
  for (int i = 0; i < 5; ++i) store_be32(out.data() + 4 * i, h_[i]);
  return out;
}

std::string Sha1::hex_digest() {
  const auto d = digest();
  return to_hex(d.data(), d.size());
}

GitBlobSha1::GitBlobSha1(uint64_t size) {
  const std::string header = "blob " + std::to_string(size);
  sha_.update(header.data(), header.size() + 1);  // including the terminating NUL
}

}  // namespace contrail::hub
