// AVX2 + FMA + F16C matmul kernels (compiled with -mavx2 -mfma -mf16c; called only when
// isa_supported(Isa::Avx2)). Numerics: contrail/kernels/matmul.h.
//
// Same structure as the AVX-512 kernels (see matmul_avx512.cpp) with 8-lane vectors and smaller
// register tiles for the 16 ymm registers: few tokens stream weight rows one at a time; many
// tokens go through panels of rows (f16 / bf16 converted once) and kRows x kTokens register
// tiles. q8_0: one block per vector, |qw| * sign(qx, qw) through vpmaddubsw.
//
// ODR: everything but the entry points lives in the anonymous namespace; no std function templates
// and no contrail inline functions are used here.
#include "kernels/simd_avx2.h"
// (the traits first: the generic kernels are written against them)
#include "contrail/core/dtype.h"
#include "kernels/isa_kernels.h"
#include "kernels/matmul_simd.h"

namespace contrail::kernels {
namespace {

constexpr int kRows = 4;    // weight rows per panel register tile
constexpr int kTokens = 3;  // tokens per register tile: 12 accumulators + 4 weight vectors
using Stream = StreamConfig<kTokens, 16 * 1024>;

// n (< 8) halves from p, zero-padded to 8.
__m128i load_halves_tail(const uint16_t* p, int64_t n) {
  uint16_t buf[8] = {};
  for (int64_t i = 0; i < n; ++i) buf[i] = p[i];
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(buf));
}

// Weight element types: load(p, valid) reads 8 consecutive weights as f32, only the first `valid`
// (<= 8) with the rest 0.
struct F32W {
  using T = float;
  static constexpr bool kIsF32 = true;
  static __m256 load(const float* p, int64_t valid) {
    return valid == 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, Avx2::tail(valid));
  }
};
template <class Convert>
struct HalfW {
  using T = uint16_t;
  static constexpr bool kIsF32 = false;
  static __m256 load(const uint16_t* p, int64_t valid) {
    return Convert::to_f32(valid == 8 ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)) : load_halves_tail(p, valid));
  }
};
struct F16ToF32 {
  static __m256 to_f32(__m128i h) { return _mm256_cvtph_ps(h); }
};
struct BF16ToF32 {
  static __m256 to_f32(__m128i h) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)); }
};
using F16W = HalfW<F16ToF32>;
using BF16W = HalfW<BF16ToF32>;

// ---- f32 / f16 / bf16, many tokens -------------------------------------------------------------------

// sums[r][t] = sum_k w[r][k] * x[t * n_in + k] for r < kRows, t < NT.
//   w: kRows f32 row pointers, (n_in) each; x: (NT, n_in) f32 token rows.
template <int NT>
void panel_tile(const float* const (&w)[kRows], const float* x, int64_t n_in, float (&sums)[kRows][kTokens]) {
  __m256 acc[1][kRows][NT];
  zero_all(acc, _mm256_setzero_ps());
  const auto step = [&](int64_t k, int64_t valid) {
    __m256 wv[kRows];
    for (int r = 0; r < kRows; ++r) wv[r] = F32W::load(w[r] + k, valid);
    for (int t = 0; t < NT; ++t) {
      const __m256 xv = F32W::load(x + t * n_in + k, valid);
      for (int r = 0; r < kRows; ++r) acc[0][r][t] = _mm256_fmadd_ps(wv[r], xv, acc[0][r][t]);
    }
  };
  int64_t k = 0;
  for (; k + 8 <= n_in; k += 8) step(k, 8);
  if (k < n_in) step(k, n_in - k);
  sum_sets<Avx2>(acc, sums);
}

// y[t, row0 + i] for i < n_rows and every token, from the f32 rows panel + i * n_in.
//   panel: (n_rows, n_in). Token blocks are the outer loop so each block of x rows is reused by
// every row tile; a tile short of kRows rows repeats its last row (computed, not stored).
void panel_times_tokens(const float* panel, int64_t n_rows, int64_t row0, const MatmulArgs& a) {
  for (int64_t t0 = 0; t0 < a.n_tokens; t0 += kTokens) {
    const int nt = static_cast<int>(a.n_tokens - t0 < kTokens ? a.n_tokens - t0 : kTokens);
    const float* x = a.x + t0 * a.n_in;  // (nt, n_in)
    for (int64_t r0 = 0; r0 < n_rows; r0 += kRows) {
      const int nr = static_cast<int>(n_rows - r0 < kRows ? n_rows - r0 : kRows);
      const float* w[kRows];
      for (int r = 0; r < kRows; ++r) w[r] = panel + (r0 + (r < nr ? r : nr - 1)) * a.n_in;
      float sums[kRows][kTokens];
      with_count<kTokens>(nt, [&]<int NT>() { panel_tile<NT>(w, x, a.n_in, sums); });
      for (int t = 0; t < nt; ++t)
        for (int r = 0; r < nr; ++r) a.y[(t0 + t) * a.n_out + row0 + r0 + r] = sums[r][t];
    }
  }
}

// panel: (n_rows, n_in) f32 <- weight rows w0: (n_rows, n_in) of type W::T.
template <class W>
void convert_panel(const typename W::T* w0, int64_t n_rows, int64_t n_in, float* panel) {
  const int64_t n = n_rows * n_in;  // rows are contiguous in both
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) _mm256_storeu_ps(panel + k, W::load(w0 + k, 8));
  if (k < n) _mm256_maskstore_ps(panel + k, Avx2::tail(n - k), W::load(w0 + k, n - k));
}

template <class W>
void matmul_float(const MatmulArgs& a) {
  if (a.n_tokens <= kTokens)
    return with_count<kTokens>(a.n_tokens, [&]<int NT>() { stream_rows<Avx2, W, Stream, NT>(a); });
  const auto* w = static_cast<const typename W::T*>(a.w);  // (n_out, n_in)
  const int64_t panel_rows = a.scratch_floats / a.n_in;  // >= 1
  for (int64_t p0 = a.row_begin; p0 < a.row_end; p0 += panel_rows) {
    const int64_t np = a.row_end - p0 < panel_rows ? a.row_end - p0 : panel_rows;
    if constexpr (W::kIsF32) {
      panel_times_tokens(w + p0 * a.n_in, np, p0, a);  // f32 rows serve as their own panel
    } else {
      convert_panel<W>(w + p0 * a.n_in, np, a.n_in, a.scratch);
      panel_times_tokens(a.scratch, np, p0, a);
    }
  }
}

// ---- q8_0 ----------------------------------------------------------------------------------------------

// The q8_0 block step (QTile in kernels/matmul_simd.h): one block per vector, |qw| * sign(qx, qw)
// through vpmaddubsw.
struct QStep {
  static constexpr int kStep = 1;
  static constexpr int sets(int n) { return n >= 4 ? 1 : n >= 2 ? 2 : 4; }
  const __m256i ones16 = _mm256_set1_epi16(1);

  template <int NR, int NT>
  void step(const BlockQ8_0* const (&w)[NR], int64_t b, bool, const int8_t* xq, const float* xd, int64_t n_in,
            __m256 (&acc)[NR][NT]) const {
    const int64_t nb = n_in / kQ8_0Block;
    __m256i wq[NR], wabs[NR];  // qw and |qw| (as unsigned bytes: -128 -> 128)
    __m256 wd[NR];
    for (int r = 0; r < NR; ++r) {
      wq[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[r][b].qs));
      wabs[r] = _mm256_sign_epi8(wq[r], wq[r]);
      wd[r] = _mm256_set1_ps(_cvtsh_ss(w[r][b].d));
    }
    for (int t = 0; t < NT; ++t) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + t * n_in + b * kQ8_0Block));
      const __m256 xs = _mm256_broadcast_ss(xd + t * nb + b);
      for (int r = 0; r < NR; ++r) {
        // qx * sign(qw), 0 where qw == 0 (where |qw| is 0 too); |qw| <= 128, |qx| <= 127: a pair
        // of products fits int16 without saturating.
        const __m256i xsigned = _mm256_sign_epi8(xv, wq[r]);
        const __m256i sumi = _mm256_madd_epi16(_mm256_maddubs_epi16(wabs[r], xsigned), ones16);
        acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_mul_ps(wd[r], xs), acc[r][t]);
      }
    }
  }
};
using Q8Tile = QTile<Avx2, QStep, 4, 2>;  // 4 rows x 2 tokens

void quantize_act_q8_0(const float* x, int64_t n, int8_t* qs, float* d) {
  const __m256 sign_bit = _mm256_set1_ps(-0.0f);
  for (int64_t b = 0; b < n / kQ8_0Block; ++b) {
    __m256 v[4];  // the block's 32 values
    for (int i = 0; i < 4; ++i) v[i] = _mm256_loadu_ps(x + b * kQ8_0Block + 8 * i);
    __m256 m = _mm256_andnot_ps(sign_bit, v[0]);
    for (int i = 1; i < 4; ++i) m = _mm256_max_ps(m, _mm256_andnot_ps(sign_bit, v[i]));
    __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    d[b] = _cvtsh_ss(_cvtss_sh(amax / 127.0f, _MM_FROUND_TO_NEAREST_INT));
    const __m256 id = _mm256_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
    constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    __m256i q[4];
    for (int i = 0; i < 4; ++i) q[i] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[i], id), kRound));
    // Saturating packs interleave 128-bit halves; the permute restores element order.
    const __m256i q16a = _mm256_packs_epi32(q[0], q[1]);
    const __m256i q16b = _mm256_packs_epi32(q[2], q[3]);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const __m256i q8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(q16a, q16b), order);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs + b * kQ8_0Block), q8);
  }
}

}  // namespace

constinit const MatmulKernels kMatmulAvx2{matmul_float<F32W>, matmul_float<F16W>, matmul_float<BF16W>,
                                          matmul_q8_0<Q8Tile, 2>, quantize_act_q8_0};

}  // namespace contrail::kernels
