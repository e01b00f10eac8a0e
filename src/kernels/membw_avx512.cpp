// AVX-512 read_sum_u64 kernel (compiled with -mavx512f ...; called only when active_isa() is
// Avx512). Contract: contrail/kernels/membw.h. ODR: only the entry point is outside the anonymous
// namespace; no std templates.
#include <immintrin.h>

#include "kernels/isa_kernels.h"

namespace contrail::kernels {
namespace {

constexpr size_t kLanes = 8;            // uint64 per 512-bit vector
constexpr size_t kStep = 8 * kLanes;    // uint64 per iteration: 8 vectors = 512 bytes = 8 lines

}  // namespace

uint64_t read_sum_u64_avx512(const uint64_t* p, size_t n) {
  // Eight independent accumulators, one 64-byte line each per iteration.
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  size_t i = 0;
  for (; i + kStep <= n; i += kStep) {
    const uint64_t* q = p + i;
    a0 = _mm512_add_epi64(a0, _mm512_loadu_si512(q + 0 * kLanes));
    a1 = _mm512_add_epi64(a1, _mm512_loadu_si512(q + 1 * kLanes));
    a2 = _mm512_add_epi64(a2, _mm512_loadu_si512(q + 2 * kLanes));
    a3 = _mm512_add_epi64(a3, _mm512_loadu_si512(q + 3 * kLanes));
    a4 = _mm512_add_epi64(a4, _mm512_loadu_si512(q + 4 * kLanes));
    a5 = _mm512_add_epi64(a5, _mm512_loadu_si512(q + 5 * kLanes));
    a6 = _mm512_add_epi64(a6, _mm512_loadu_si512(q + 6 * kLanes));
    a7 = _mm512_add_epi64(a7, _mm512_loadu_si512(q + 7 * kLanes));
  }
  for (; i + kLanes <= n; i += kLanes) a0 = _mm512_add_epi64(a0, _mm512_loadu_si512(p + i));
  if (i < n) {  // last 1..7 words with a masked load (masked-off lanes read nothing)
    const __mmask8 m = static_cast<__mmask8>((1u << (n - i)) - 1);
    a0 = _mm512_add_epi64(a0, _mm512_maskz_loadu_epi64(m, p + i));
  }
  a0 = _mm512_add_epi64(_mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)),
                        _mm512_add_epi64(_mm512_add_epi64(a4, a5), _mm512_add_epi64(a6, a7)));
  // Horizontal sum through memory (_mm512_reduce_add_epi64 trips a false -Wuninitialized in GCC 12).
  alignas(64) uint64_t lanes[kLanes];
  _mm512_store_si512(lanes, a0);
  uint64_t sum = 0;
  for (uint64_t lane : lanes) sum += lane;
  return sum;
}

}  // namespace contrail::kernels
