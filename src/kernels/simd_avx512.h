// Vector traits of AVX-512 F/BW/VL/DQ (16 floats per vector) for the ISA-generic kernel templates
// (kernels/*_simd.h), with the members listed in kernels/simd_avx2.h. Include only from
// translation units compiled with the AVX-512 flags.
// ODR: everything lives in the anonymous namespace (see kernels/simd_avx2.h).
#pragma once
#include <cstdint>

#include "kernels/immintrin_avx512.h"
#include "kernels/simd_common.h"

namespace contrail::kernels {
namespace {

struct Avx512 {
  CONTRAIL_SIMD_PREFIXED_OPS(_mm512, __m512, __m512d, 16)
  using M = __mmask16;  // tail mask

  static M tail(int64_t rem) { return static_cast<__mmask16>((1u << (rem < kW ? rem : kW)) - 1u); }
  static V load_tail(const float* p, M m) { return _mm512_maskz_loadu_ps(m, p); }
  static V load_tail_or(const float* p, M m, V fill) { return _mm512_mask_loadu_ps(fill, m, p); }
  static void store_tail(float* p, M m, V v) { _mm512_mask_storeu_ps(p, m, v); }
  static V broadcast(const float* p) { return _mm512_set1_ps(*p); }

  static V abs(V a) { return _mm512_abs_ps(a); }
  static V select_lt(V a, V b, V x, V y) { return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), y, x); }
  static V copy_sign(V r, V s) { return _mm512_or_ps(r, _mm512_and_ps(_mm512_set1_ps(-0.0f), s)); }
  static V zero_past(M m, V v) { return _mm512_maskz_mov_ps(m, v); }
  static V round(V v) { return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }

  static float hsum(V v) { return _mm512_reduce_add_ps(v); }
  static float hmax(V v) { return _mm512_reduce_max_ps(v); }
  // [sum(a), sum(b), sum(c), sum(d)], through the lane-wise sums of the 256-bit halves.
  static __m128 hsum4(V a, V b, V c, V d) {
    const auto fold = [](V v) { return _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)); };
    const __m256 abcd = _mm256_hadd_ps(_mm256_hadd_ps(fold(a), fold(b)), _mm256_hadd_ps(fold(c), fold(d)));
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
  }

  static double hsum_d(D v) { return _mm512_reduce_add_pd(v); }
  static D add_widened(D acc, V v) {
    acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
    return _mm512_add_pd(acc, _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)));
  }
  static void add_halves(D& lo, D& hi, V v) {
    lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
    hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)));
  }

  // scalef(p, n) = p * 2^n, which rounds overflow to inf and subnormal results correctly.
  static V scale_pow2(V p, V n) { return _mm512_scalef_ps(p, n); }

  // RoPE of kW / 2 adjacent pairs (see Avx2::rope_adjacent_pairs).
  static void rope_adjacent_pairs(float* row2i, const float* cos, const float* sin) {
    const __m512i dup = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    const __m512 cc = _mm512_permutexvar_ps(dup, _mm512_castps256_ps512(_mm256_loadu_ps(cos)));
    const __m512 ss = _mm512_permutexvar_ps(dup, _mm512_castps256_ps512(_mm256_loadu_ps(sin)));
    const __m512 v = _mm512_loadu_ps(row2i);
    _mm512_storeu_ps(row2i, _mm512_fmaddsub_ps(v, cc, _mm512_mul_ps(_mm512_permute_ps(v, 0xB1), ss)));
  }
};

}  // namespace
}  // namespace contrail::kernels
