// AVX2 + FMA + F16C matmul kernels (compiled with -mavx2 -mfma -mf16c; called only when
// isa_supported(Isa::Avx2)). Numerics: contrail/kernels/matmul.h.
//
// Same structure as the AVX-512 kernels with 8-lane vectors and smaller register tiles (16 ymm
// registers): f32 / f16 / bf16 tiles of kRows weight rows x up to kTokens tokens, f16 / bf16
// weights converted panel by panel when more than kTokens tokens share them; q8_0 one block per
// vector with |w| * sign(x, w) through vpmaddubsw.
//
// ODR: everything but the entry points lives in the anonymous namespace; no std templates and no
// contrail inline functions are used here.
#include <immintrin.h>

#include "contrail/core/dtype.h"
#include "contrail/kernels/matmul.h"

namespace contrail::kernels {
namespace {

constexpr int kRows = 4;    // weight rows per register tile
constexpr int kTokens = 3;  // tokens per register tile: 12 accumulators + 4 weight vectors

// Lanes [0, n) set, n in [0, 8], for maskload.
__m256i first_lanes(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Weight element types: load 8 consecutive weights as f32; load_tail reads only the first n
// (< 8) and zero-fills the rest.
struct F32W {
  using T = float;
  static constexpr bool kIsF32 = true;
  static __m256 load(const float* p) { return _mm256_loadu_ps(p); }
  static __m256 load_tail(const float* p, int64_t n) { return _mm256_maskload_ps(p, first_lanes(n)); }
};
struct F16W {
  using T = uint16_t;
  static constexpr bool kIsF32 = false;
  static __m256 load(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static __m256 load_tail(const uint16_t* p, int64_t n) {
    uint16_t buf[8] = {};
    for (int64_t i = 0; i < n; ++i) buf[i] = p[i];
    return load(buf);
  }
};
struct BF16W {
  using T = uint16_t;
  static constexpr bool kIsF32 = false;
  static __m256 load(const uint16_t* p) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  static __m256 load_tail(const uint16_t* p, int64_t n) {
    uint16_t buf[8] = {};
    for (int64_t i = 0; i < n; ++i) buf[i] = p[i];
    return load(buf);
  }
};

// sums[r][t] = sum_k w[r][k] * x[t * n_in + k] for r < kRows, t < NT.
//   w: kRows row pointers, (n_in) each; x: (NT, n_in) f32 token rows.
template <class W, int NT>
void tile(const typename W::T* const (&w)[kRows], const float* x, int64_t n_in, float (&sums)[kRows][kTokens]) {
  __m256 acc[kRows][NT];
  for (auto& row : acc)
    for (__m256& v : row) v = _mm256_setzero_ps();
  // valid == 8 except for the row's last partial vector.
  const auto step = [&](int64_t k, int64_t valid) {
    __m256 wv[kRows];
    for (int r = 0; r < kRows; ++r) wv[r] = valid == 8 ? W::load(w[r] + k) : W::load_tail(w[r] + k, valid);
    for (int t = 0; t < NT; ++t) {
      const float* xp = x + t * n_in + k;
      const __m256 xv = valid == 8 ? _mm256_loadu_ps(xp) : _mm256_maskload_ps(xp, first_lanes(valid));
      for (int r = 0; r < kRows; ++r) acc[r][t] = _mm256_fmadd_ps(wv[r], xv, acc[r][t]);
    }
  };
  int64_t k = 0;
  for (; k + 8 <= n_in; k += 8) step(k, 8);
  if (k < n_in) step(k, n_in - k);
  for (int r = 0; r < kRows; ++r)
    for (int t = 0; t < NT; ++t) sums[r][t] = hsum(acc[r][t]);
}

template <class W>
void tile_n(int nt, const typename W::T* const (&w)[kRows], const float* x, int64_t n_in,
            float (&sums)[kRows][kTokens]) {
  static_assert(kTokens == 3);
  switch (nt) {
    case 1: tile<W, 1>(w, x, n_in, sums); break;
    case 2: tile<W, 2>(w, x, n_in, sums); break;
    default: tile<W, 3>(w, x, n_in, sums); break;
  }
}

// y[t, row0 + i] for i < n_rows and every token, from the weight rows w0 + i * n_in.
//   w0: (n_rows, n_in) weights of type W::T (the matrix itself or a converted panel).
// Token blocks are the outer loop so each block of x rows is reused by every row tile; a tile
// short of kRows rows repeats its last row (computed, not stored).
template <class W>
void rows_times_tokens(const typename W::T* w0, int64_t n_rows, int64_t row0, const MatmulArgs& a) {
  for (int64_t t0 = 0; t0 < a.n_tokens; t0 += kTokens) {
    const int nt = static_cast<int>(a.n_tokens - t0 < kTokens ? a.n_tokens - t0 : kTokens);
    for (int64_t r0 = 0; r0 < n_rows; r0 += kRows) {
      const int nr = static_cast<int>(n_rows - r0 < kRows ? n_rows - r0 : kRows);
      const typename W::T* w[kRows];
      for (int r = 0; r < kRows; ++r) w[r] = w0 + (r0 + (r < nr ? r : nr - 1)) * a.n_in;
      float sums[kRows][kTokens];
      tile_n<W>(nt, w, a.x + t0 * a.n_in, a.n_in, sums);
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
  for (; k + 8 <= n; k += 8) _mm256_storeu_ps(panel + k, W::load(w0 + k));
  if (k < n) _mm256_maskstore_ps(panel + k, first_lanes(n - k), W::load_tail(w0 + k, n - k));
}

template <class W>
void matmul_float(const MatmulArgs& a) {
  const auto* w = static_cast<const typename W::T*>(a.w);  // (n_out, n_in)
  if (a.n_tokens <= kTokens) {  // one token block: stream each weight row once, convert on the fly
    rows_times_tokens<W>(w + a.row_begin * a.n_in, a.row_end - a.row_begin, a.row_begin, a);
    return;
  }
  const int64_t panel_rows = W::kIsF32 ? matmul_panel_rows(a.n_in * 4) : a.panel_rows;
  for (int64_t p0 = a.row_begin; p0 < a.row_end; p0 += panel_rows) {
    const int64_t np = a.row_end - p0 < panel_rows ? a.row_end - p0 : panel_rows;
    if constexpr (W::kIsF32) {
      rows_times_tokens<F32W>(w + p0 * a.n_in, np, p0, a);  // f32 rows serve as their own panel
    } else {
      convert_panel<W>(w + p0 * a.n_in, np, a.n_in, a.panel);
      rows_times_tokens<F32W>(a.panel, np, p0, a);
    }
  }
}

// ---- q8_0 ------------------------------------------------------------------------------------------

constexpr int kQRows = 4;    // weight rows per q8_0 register tile
constexpr int kQTokens = 2;  // tokens per q8_0 register tile

// sums[r][t] = sum over blocks of (dw * dx) * (qw . qx) for r < kQRows, t < NT.
//   w: kQRows row pointers, (n_in / 32) blocks each; xq: (NT, n_in) int8; xd: (NT, n_in / 32).
template <int NT>
void qtile(const BlockQ8_0* const (&w)[kQRows], const int8_t* xq, const float* xd, int64_t n_in,
           float (&sums)[kQRows][kQTokens]) {
  const int64_t nb = n_in / kQ8_0Block;
  const __m256i ones16 = _mm256_set1_epi16(1);
  __m256 acc[kQRows][NT];
  for (auto& row : acc)
    for (__m256& v : row) v = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    __m256i wq[kQRows], wabs[kQRows];  // qw and |qw| (as unsigned bytes: -128 -> 128)
    __m256 wd[kQRows];
    for (int r = 0; r < kQRows; ++r) {
      wq[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[r][b].qs));
      wabs[r] = _mm256_sign_epi8(wq[r], wq[r]);
      wd[r] = _mm256_set1_ps(_cvtsh_ss(w[r][b].d));
    }
    for (int t = 0; t < NT; ++t) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + t * n_in + b * kQ8_0Block));
      const __m256 xs = _mm256_broadcast_ss(xd + t * nb + b);
      for (int r = 0; r < kQRows; ++r) {
        // x * sign(w) (0 where w == 0, where |w| is 0 too); |qw| <= 128, |qx| <= 127: a pair of
        // products fits int16 without saturating.
        const __m256i xsigned = _mm256_sign_epi8(xv, wq[r]);
        const __m256i sumi = _mm256_madd_epi16(_mm256_maddubs_epi16(wabs[r], xsigned), ones16);
        acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_mul_ps(wd[r], xs), acc[r][t]);
      }
    }
  }
  for (int r = 0; r < kQRows; ++r)
    for (int t = 0; t < NT; ++t) sums[r][t] = hsum(acc[r][t]);
}

void matmul_q8(const MatmulArgs& a) {
  const int64_t nb = a.n_in / kQ8_0Block;
  const auto* w = static_cast<const BlockQ8_0*>(a.w);  // (n_out, nb)
  // Panels of rows stay in L2 while all token blocks stream past them (one panel for matvec).
  const int64_t panel_rows = a.n_tokens <= kQTokens ? a.row_end - a.row_begin
                                                     : matmul_panel_rows(nb * static_cast<int64_t>(sizeof(BlockQ8_0)));
  for (int64_t p0 = a.row_begin; p0 < a.row_end; p0 += panel_rows) {
    const int64_t p1 = a.row_end - p0 < panel_rows ? a.row_end : p0 + panel_rows;
    for (int64_t t0 = 0; t0 < a.n_tokens; t0 += kQTokens) {
      const int nt = static_cast<int>(a.n_tokens - t0 < kQTokens ? a.n_tokens - t0 : kQTokens);
      for (int64_t r0 = p0; r0 < p1; r0 += kQRows) {
        const int nr = static_cast<int>(p1 - r0 < kQRows ? p1 - r0 : kQRows);
        const BlockQ8_0* wr[kQRows];  // a tile short of kQRows rows repeats its last row
        for (int r = 0; r < kQRows; ++r) wr[r] = w + (r0 + (r < nr ? r : nr - 1)) * nb;
        float sums[kQRows][kQTokens];
        if (nt == 1) {
          qtile<1>(wr, a.xq + t0 * a.n_in, a.xd + t0 * nb, a.n_in, sums);
        } else {
          qtile<2>(wr, a.xq + t0 * a.n_in, a.xd + t0 * nb, a.n_in, sums);
        }
        for (int t = 0; t < nt; ++t)
          for (int r = 0; r < nr; ++r) a.y[(t0 + t) * a.n_out + r0 + r] = sums[r][t];
      }
    }
  }
}

}  // namespace

void matmul_f32_avx2(const MatmulArgs& a) { matmul_float<F32W>(a); }
void matmul_f16_avx2(const MatmulArgs& a) { matmul_float<F16W>(a); }
void matmul_bf16_avx2(const MatmulArgs& a) { matmul_float<BF16W>(a); }
void matmul_q8_0_avx2(const MatmulArgs& a) { matmul_q8(a); }

void quantize_act_q8_0_avx2(const float* x, int64_t n, int8_t* qs, float* d) {
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
    __m256i q[4];
    for (int i = 0; i < 4; ++i)
      q[i] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[i], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    // Saturating packs interleave 128-bit halves; the permute restores element order.
    const __m256i q16a = _mm256_packs_epi32(q[0], q[1]);
    const __m256i q16b = _mm256_packs_epi32(q[2], q[3]);
    const __m256i q8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(q16a, q16b), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs + b * kQ8_0Block), q8);
  }
}

}  // namespace contrail::kernels
