// Vector traits of AVX2 + FMA + F16C (8 floats per vector) for the ISA-generic kernel templates
// (kernels/*_simd.h). Include only from translation units compiled with the AVX2 flags.
//
// The traits of every ISA offer the same members (kernels/simd_avx512.h has the AVX-512 ones):
//   V, D, M        f32 vector, f64 accumulator vector, tail mask; kW floats per vector
//   tail(rem)      mask of the first min(rem, kW) lanes (rem >= 0)
//   load, store, load_tail (0 past the mask), load_tail_or (fill past it), store_tail, broadcast
//   arithmetic     set1, zero, add, sub, mul, div, fmadd (a*b+c), fmsub (a*b-c), fnmadd (c-a*b),
//                  min, max, abs, select_lt (a < b ? x : y), copy_sign, zero_past, round
//                  (those spelt alike in every ISA come from CONTRAIL_SIMD_PREFIXED_OPS)
//   reductions     hsum, hmax, hsum4 (four vectors -> 4 sums), hsum_d
//   f64 sums       zero_d, add_d, add_widened (both halves into one accumulator), add_halves (low/high halves into two)
//   scale_pow2     p * 2^n for integral n in [-150, 128], overflow and subnormals rounded correctly
// ODR: everything lives in the anonymous namespace, so each ISA's translation units get their own
// copy and no inline function compiled with these flags can be picked for another ISA.
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "kernels/simd_common.h"

namespace contrail::kernels {
namespace {

struct Avx2 {
  CONTRAIL_SIMD_PREFIXED_OPS(_mm256, __m256, __m256d, 8)
  using M = __m256i;  // tail mask

  static M tail(int64_t rem) {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(rem < kW ? rem : kW)), lanes);
  }
  static V load_tail(const float* p, M m) { return _mm256_maskload_ps(p, m); }
  static V load_tail_or(const float* p, M m, V fill) {
    return _mm256_blendv_ps(fill, _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
  }
  static void store_tail(float* p, M m, V v) { _mm256_maskstore_ps(p, m, v); }
  static V broadcast(const float* p) { return _mm256_broadcast_ss(p); }

  static V abs(V a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  static V select_lt(V a, V b, V x, V y) { return _mm256_blendv_ps(y, x, _mm256_cmp_ps(a, b, _CMP_LT_OQ)); }
  // |r| with the sign of s (r >= 0).
  static V copy_sign(V r, V s) { return _mm256_or_ps(r, _mm256_and_ps(_mm256_set1_ps(-0.0f), s)); }
  static V zero_past(M m, V v) { return _mm256_and_ps(v, _mm256_castsi256_ps(m)); }
  static V round(V v) { return _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }

  static float hsum(V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static float hmax(V v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // [sum(a), sum(b), sum(c), sum(d)]
  static __m128 hsum4(V a, V b, V c, V d) {
    const __m256 abcd = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
  }

  static double hsum_d(D v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
  }
  static D add_widened(D acc, V v) {
    acc = _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    return _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
  }
  static void add_halves(D& lo, D& hi, V v) {
    lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
  }

  // 2^n applied as two factors 2^(n/2) * 2^(n - n/2), so that overflow to inf and subnormal
  // results come out right.
  static V scale_pow2(V p, V n) {
    const __m256i ni = _mm256_cvtps_epi32(n);
    const __m256i n1 = _mm256_srai_epi32(ni, 1);
    const __m256i n2 = _mm256_sub_epi32(ni, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
  }

  // RoPE of kW / 2 adjacent pairs row[2i .. 2i + kW) with cos[i ..], sin[i ..]: for v = [a0 b0 a1
  // b1 ...], cc = [c0 c0 c1 c1 ...], ss = [s0 s0 ...] and the pair-swapped w = [b0 a0 ...],
  // fmaddsub(v, cc, w * ss) = [a0 c0 - b0 s0, b0 c0 + a0 s0, ...].
  static void rope_adjacent_pairs(float* row2i, const float* cos, const float* sin) {
    const __m256i dup = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
    const __m256 cc = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(cos)), dup);
    const __m256 ss = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(sin)), dup);
    const __m256 v = _mm256_loadu_ps(row2i);
    _mm256_storeu_ps(row2i, _mm256_fmaddsub_ps(v, cc, _mm256_mul_ps(_mm256_permute_ps(v, 0xB1), ss)));
  }
};

}  // namespace
}  // namespace contrail::kernels
