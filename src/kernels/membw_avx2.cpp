// AVX2 read_sum_u64 kernel (compiled with -mavx2; called only when active_isa() >= Avx2).
// Contract: contrail/kernels/membw.h. ODR: only the entry point is outside the anonymous
// namespace; no std templates.
#include <immintrin.h>

#include "kernels/isa_kernels.h"

namespace contrail::kernels {
namespace {

constexpr size_t kLanes = 4;            // uint64 per 256-bit vector
constexpr size_t kStep = 8 * kLanes;    // uint64 per iteration: 8 vectors = 256 bytes

uint64_t hsum(__m256i v) {
  const __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  return static_cast<uint64_t>(_mm_cvtsi128_si64(s)) + static_cast<uint64_t>(_mm_extract_epi64(s, 1));
}

}  // namespace

uint64_t read_sum_u64_avx2(const uint64_t* p, size_t n) {
  // Eight independent accumulators: enough loads in flight to saturate a core's memory pipe.
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  size_t i = 0;
  for (; i + kStep <= n; i += kStep) {
    const __m256i* v = reinterpret_cast<const __m256i*>(p + i);
    a0 = _mm256_add_epi64(a0, _mm256_loadu_si256(v + 0));
    a1 = _mm256_add_epi64(a1, _mm256_loadu_si256(v + 1));
    a2 = _mm256_add_epi64(a2, _mm256_loadu_si256(v + 2));
    a3 = _mm256_add_epi64(a3, _mm256_loadu_si256(v + 3));
    a4 = _mm256_add_epi64(a4, _mm256_loadu_si256(v + 4));
    a5 = _mm256_add_epi64(a5, _mm256_loadu_si256(v + 5));
    a6 = _mm256_add_epi64(a6, _mm256_loadu_si256(v + 6));
    a7 = _mm256_add_epi64(a7, _mm256_loadu_si256(v + 7));
  }
  for (; i + kLanes <= n; i += kLanes) a0 = _mm256_add_epi64(a0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
  a0 = _mm256_add_epi64(_mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)),
                        _mm256_add_epi64(_mm256_add_epi64(a4, a5), _mm256_add_epi64(a6, a7)));
  uint64_t sum = hsum(a0);
  for (; i < n; ++i) sum += p[i];
  return sum;
}

}  // namespace contrail::kernels
