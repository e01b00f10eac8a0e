// Deterministic pseudo-random numbers for sampling: xoshiro256** (Blackman & Vigna, 2018) whose
// 256-bit state is filled from a 64-bit seed by four splitmix64 steps.
// Contract: the stream is a pure function of the seed, defined by integer arithmetic only, so it
// is bit-identical on every run, compiler and machine (no std:: engines or distributions, whose
// outputs are implementation-defined).
#pragma once
#include <cstdint>

namespace contrail {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { reseed(seed); }

  // Restarts the stream: state = splitmix64(seed) x 4.
  void reseed(uint64_t seed);

  // Next 64 random bits (xoshiro256**).
  uint64_t next_u64();

  // Uniform double in [0, 1): the top 53 bits of next_u64() times 2^-53 (every value is a
  // multiple of 2^-53; 1.0 is never returned). Consumes exactly one next_u64().
  double uniform();

 private:
  uint64_t s_[4];  // xoshiro256** state; never all zero (splitmix64 cannot produce that)
};

}  // namespace contrail
