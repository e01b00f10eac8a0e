// AVX-512 helpers shared by matmul_avx512.cpp and matmul_avx512vnni.cpp: the 16x16 transpose of
// the panel packing, the masked stores of a packed tile, and q8_0 loads (two 32-value blocks per
// 512-bit vector, with their scales spread to match). Include only from translation units compiled
// with the AVX-512 flags. Everything here has internal linkage (anonymous namespace), so each ISA
// file gets its own copy and no inline function crosses ISA boundaries (ODR).
#pragma once
#include <cstdint>

#include "contrail/core/dtype.h"
#include "kernels/simd_avx512.h"

namespace contrail::kernels {
namespace {

// In-place transpose of a 16x16 matrix of 32-bit elements held as 16 row vectors (f32 weights, or
// int32 words of packed bytes through the bit casts below).
inline void transpose16(__m512 (&r)[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {  // interleave row pairs: per 128-bit lane, columns (4L, 4L+1) and (4L+2, 4L+3)
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // r[4i + c], lane L: column 4L + c of rows 4i .. 4i+3
    const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
    r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  for (int c = 0; c < 4; ++c) {  // 4x4 transpose of 128-bit lanes: out[4L + c] lane i = r[4i + c] lane L
    const __m512 u0 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x44);  // lanes r[c].0 r[c].1 r[4+c].0 r[4+c].1
    const __m512 u1 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xee);  // lanes 2, 3 likewise
    const __m512 u2 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x44);
    const __m512 u3 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xee);
    t[c] = _mm512_shuffle_f32x4(u0, u2, 0x88);
    t[4 + c] = _mm512_shuffle_f32x4(u0, u2, 0xdd);
    t[8 + c] = _mm512_shuffle_f32x4(u1, u3, 0x88);
    t[12 + c] = _mm512_shuffle_f32x4(u1, u3, 0xdd);
  }
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}

inline void transpose16(__m512i (&r)[16]) {
  __m512 f[16];
  for (int i = 0; i < 16; ++i) f[i] = _mm512_castsi512_ps(r[i]);
  transpose16(f);
  for (int i = 0; i < 16; ++i) r[i] = _mm512_castps_si512(f[i]);
}

// y[0, n_cols) (+)= acc[v] for the vectors v of one output row of a packed tile (n_cols <= 16 *
// kV; '+' when accumulate), with masked stores past n_cols.
template <int kV>
void store_tile_row(float* y, const __m512 (&acc)[kV], int64_t n_cols, bool accumulate) {
  for (int v = 0; v < kV; ++v) {
    const int64_t cols = n_cols - 16 * v;
    if (cols <= 0) break;
    const __mmask16 m = Avx512::tail(cols);
    float* yp = y + 16 * v;
    _mm512_mask_storeu_ps(yp, m, accumulate ? _mm512_add_ps(_mm512_maskz_loadu_ps(m, yp), acc[v]) : acc[v]);
  }
}

// ---- q8_0 loads: two 32-value blocks per 512-bit vector, with their scales spread to match ------------

// Quantized values of blocks b, b+1 of one row (upper half zero when !two).
inline __m512i load_w_pair(const BlockQ8_0* blk, bool two) {
  const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[0].qs));
  const __m256i hi = two ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[1].qs)) : _mm256_setzero_si256();
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

// Spreads two f32 scales over lanes [0, 8) and [8, 16).
inline __m512 spread_pair(__m128 d01) {
  const __m512i idx = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(d01));
}

// The f16 scales of blocks b, b+1 (second 0 when !two), spread as spread_pair().
inline __m512 load_w_scales(const BlockQ8_0* blk, bool two) {
  const uint32_t bits = uint32_t{blk[0].d} | (two ? uint32_t{blk[1].d} << 16 : 0u);
  return spread_pair(_mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(bits))));
}

inline __m512i load_x_pair(const int8_t* p, bool two) {
  return two ? _mm512_loadu_si512(p) : _mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

inline __m512 load_x_scales(const float* d, bool two) {
  return spread_pair(two ? _mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(d))) : _mm_load_ss(d));
}

}  // namespace
}  // namespace contrail::kernels
