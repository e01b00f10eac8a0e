// AVX-512 matmul kernels (compiled with -mavx512f/bw/vl/dq plus AVX2/FMA/F16C; called only when
// isa_supported(Isa::Avx512)). Numerics: contrail/kernels/matmul.h.
//
// f32 / f16 / bf16: a register tile of kRows weight rows x up to kTokens tokens keeps
// kRows * kTokens f32 accumulators (16 lanes of partial sums each) over the whole row, then reduces
// them. One pass of a weight row therefore serves up to kTokens tokens. With more tokens, f16 /
// bf16 weights are converted a panel of rows at a time into the caller's f32 panel, and every
// token block then streams past that L2-resident panel (f32 weights are used in place, panel by
// panel), so weights come from memory once per call.
// q8_0 (AVX-512BW, no VNNI): two blocks per 512-bit vector, |w| * sign(x, w) with vpmaddubsw.
//
// ODR: everything but the entry points lives in the anonymous namespace; no std templates and no
// contrail inline functions are used here.
// GCC 12's AVX-512 intrinsics initialise their "undefined" pass-through operands from themselves,
// which -Wuninitialized reports at every inlined use (GCC bug 105593, fixed in 12.3 / 13).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include "contrail/core/dtype.h"
#include "contrail/kernels/matmul.h"

namespace contrail::kernels {
namespace {

constexpr int kRows = 4;    // weight rows per register tile
constexpr int kTokens = 6;  // tokens per register tile: 24 accumulators + 4 weight vectors + x

// Lanes [0, n) of a 16-lane vector, n in [0, 16].
__mmask16 first_lanes(int64_t n) { return static_cast<__mmask16>((1u << n) - 1u); }

// Weight element types: load 16 consecutive weights as f32 (lanes outside `m` read as 0).
struct F32W {
  using T = float;
  static constexpr bool kIsF32 = true;
  static __m512 load(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
};
struct F16W {
  using T = uint16_t;
  static constexpr bool kIsF32 = false;
  static __m512 load(const uint16_t* p, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }
};
struct BF16W {
  using T = uint16_t;
  static constexpr bool kIsF32 = false;
  static __m512 load(const uint16_t* p, __mmask16 m) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
  }
};

// sums[r][t] = sum_k w[r][k] * x[t * n_in + k] for r < kRows, t < NT.
//   w: kRows row pointers, (n_in) each; x: (NT, n_in) f32 token rows.
template <class W, int NT>
void tile(const typename W::T* const (&w)[kRows], const float* x, int64_t n_in, float (&sums)[kRows][kTokens]) {
  __m512 acc[kRows][NT];
  for (auto& row : acc)
    for (__m512& v : row) v = _mm512_setzero_ps();
  const auto step = [&](int64_t k, __mmask16 m) {
    __m512 wv[kRows];
    for (int r = 0; r < kRows; ++r) wv[r] = W::load(w[r] + k, m);
    for (int t = 0; t < NT; ++t) {
      const __m512 xv = _mm512_maskz_loadu_ps(m, x + t * n_in + k);
      for (int r = 0; r < kRows; ++r) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
    }
  };
  int64_t k = 0;
  for (; k + 16 <= n_in; k += 16) step(k, 0xffff);
  if (k < n_in) step(k, first_lanes(n_in - k));
  for (int r = 0; r < kRows; ++r)
    for (int t = 0; t < NT; ++t) sums[r][t] = _mm512_reduce_add_ps(acc[r][t]);
}

template <class W>
void tile_n(int nt, const typename W::T* const (&w)[kRows], const float* x, int64_t n_in,
            float (&sums)[kRows][kTokens]) {
  static_assert(kTokens == 6);
  switch (nt) {
    case 1: tile<W, 1>(w, x, n_in, sums); break;
    case 2: tile<W, 2>(w, x, n_in, sums); break;
    case 3: tile<W, 3>(w, x, n_in, sums); break;
    case 4: tile<W, 4>(w, x, n_in, sums); break;
    case 5: tile<W, 5>(w, x, n_in, sums); break;
    default: tile<W, 6>(w, x, n_in, sums); break;
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
  for (; k + 16 <= n; k += 16) _mm512_storeu_ps(panel + k, W::load(w0 + k, 0xffff));
  if (k < n) _mm512_mask_storeu_ps(panel + k, first_lanes(n - k), W::load(w0 + k, first_lanes(n - k)));
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
constexpr int kQTokens = 4;  // tokens per q8_0 register tile

// Quantized values of blocks b, b+1 of one row (upper half zero when !two).
__m512i load_w_pair(const BlockQ8_0* blk, bool two) {
  const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[0].qs));
  const __m256i hi = two ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[1].qs)) : _mm256_setzero_si256();
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

// Spreads two f32 scales over lanes [0, 8) and [8, 16).
__m512 spread_pair(__m128 d01) {
  const __m512i idx = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(d01));
}

// The f16 scales of blocks b, b+1 (second 0 when !two), spread as spread_pair().
__m512 load_w_scales(const BlockQ8_0* blk, bool two) {
  const uint32_t bits = uint32_t{blk[0].d} | (two ? uint32_t{blk[1].d} << 16 : 0u);
  return spread_pair(_mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(bits))));
}

__m512i load_x_pair(const int8_t* p, bool two) {
  return two ? _mm512_loadu_si512(p) : _mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

__m512 load_x_scales(const float* d, bool two) {
  return spread_pair(two ? _mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(d))) : _mm_load_ss(d));
}

// sums[r][t] = sum over blocks of (dw * dx) * (qw . qx) for r < kQRows, t < NT.
//   w: kQRows row pointers, (n_in / 32) blocks each; xq: (NT, n_in) int8; xd: (NT, n_in / 32).
template <int NT>
void qtile(const BlockQ8_0* const (&w)[kQRows], const int8_t* xq, const float* xd, int64_t n_in,
           float (&sums)[kQRows][kQTokens]) {
  const int64_t nb = n_in / kQ8_0Block;
  const __m512i ones16 = _mm512_set1_epi16(1);
  __m512 acc[kQRows][NT];
  for (auto& row : acc)
    for (__m512& v : row) v = _mm512_setzero_ps();
  const auto step = [&](int64_t b, bool two) {
    __m512i wabs[kQRows];  // |qw| (as unsigned bytes: -128 -> 128)
    __mmask64 wneg[kQRows];
    __m512 wd[kQRows];
    for (int r = 0; r < kQRows; ++r) {
      const __m512i q = load_w_pair(w[r] + b, two);
      wabs[r] = _mm512_abs_epi8(q);
      wneg[r] = _mm512_movepi8_mask(q);
      wd[r] = load_w_scales(w[r] + b, two);
    }
    for (int t = 0; t < NT; ++t) {
      const __m512i xv = load_x_pair(xq + t * n_in + b * kQ8_0Block, two);
      const __m512 xs = load_x_scales(xd + t * nb + b, two);
      for (int r = 0; r < kQRows; ++r) {
        const __m512i xsigned = _mm512_mask_sub_epi8(xv, wneg[r], _mm512_setzero_si512(), xv);  // x * sign(w)
        // |qw| <= 128, |qx| <= 127: a pair of products fits int16 without saturating.
        const __m512i sumi = _mm512_madd_epi16(_mm512_maddubs_epi16(wabs[r], xsigned), ones16);
        acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_mul_ps(wd[r], xs), acc[r][t]);
      }
    }
  };
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) step(b, true);
  if (b < nb) step(b, false);
  for (int r = 0; r < kQRows; ++r)
    for (int t = 0; t < NT; ++t) sums[r][t] = _mm512_reduce_add_ps(acc[r][t]);
}

void qtile_n(int nt, const BlockQ8_0* const (&w)[kQRows], const int8_t* xq, const float* xd, int64_t n_in,
             float (&sums)[kQRows][kQTokens]) {
  static_assert(kQTokens == 4);
  switch (nt) {
    case 1: qtile<1>(w, xq, xd, n_in, sums); break;
    case 2: qtile<2>(w, xq, xd, n_in, sums); break;
    case 3: qtile<3>(w, xq, xd, n_in, sums); break;
    default: qtile<4>(w, xq, xd, n_in, sums); break;
  }
}

// As rows_times_tokens, for q8_0 rows and quantized activations. Rows are processed in panels
// so a panel of weight rows stays in L2 while all token blocks stream past it.
void matmul_q8(const MatmulArgs& a) {
  const int64_t nb = a.n_in / kQ8_0Block;
  const auto* w = static_cast<const BlockQ8_0*>(a.w);  // (n_out, nb)
  const int64_t panel_rows = a.n_tokens <= kQTokens ? a.row_end - a.row_begin
                                                     : matmul_panel_rows(nb * static_cast<int64_t>(sizeof(BlockQ8_0)));
  for (int64_t p0 = a.row_begin; p0 < a.row_end; p0 += panel_rows) {
    const int64_t p1 = a.row_end - p0 < panel_rows ? a.row_end : p0 + panel_rows;
    for (int64_t t0 = 0; t0 < a.n_tokens; t0 += kQTokens) {
      const int nt = static_cast<int>(a.n_tokens - t0 < kQTokens ? a.n_tokens - t0 : kQTokens);
      for (int64_t r0 = p0; r0 < p1; r0 += kQRows) {
        const int nr = static_cast<int>(p1 - r0 < kQRows ? p1 - r0 : kQRows);
        const BlockQ8_0* wr[kQRows];
        for (int r = 0; r < kQRows; ++r) wr[r] = w + (r0 + (r < nr ? r : nr - 1)) * nb;
        float sums[kQRows][kQTokens];
        qtile_n(nt, wr, a.xq + t0 * a.n_in, a.xd + t0 * nb, a.n_in, sums);
        for (int t = 0; t < nt; ++t)
          for (int r = 0; r < nr; ++r) a.y[(t0 + t) * a.n_out + r0 + r] = sums[r][t];
      }
    }
  }
}

}  // namespace

void matmul_f32_avx512(const MatmulArgs& a) { matmul_float<F32W>(a); }
void matmul_f16_avx512(const MatmulArgs& a) { matmul_float<F16W>(a); }
void matmul_bf16_avx512(const MatmulArgs& a) { matmul_float<BF16W>(a); }
void matmul_q8_0_avx512(const MatmulArgs& a) { matmul_q8(a); }

void quantize_act_q8_0_avx512(const float* x, int64_t n, int8_t* qs, float* d) {
  for (int64_t b = 0; b < n / kQ8_0Block; ++b) {
    const __m512 v0 = _mm512_loadu_ps(x + b * kQ8_0Block);
    const __m512 v1 = _mm512_loadu_ps(x + b * kQ8_0Block + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
    d[b] = _cvtsh_ss(_cvtss_sh(amax / 127.0f, _MM_FROUND_TO_NEAREST_INT));
    const __m512 id = _mm512_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
    constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    const __m512i q0 = _mm512_cvtps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(v0, id), kRound));
    const __m512i q1 = _mm512_cvtps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(v1, id), kRound));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qs + b * kQ8_0Block), _mm512_cvtsepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qs + b * kQ8_0Block + 16), _mm512_cvtsepi32_epi8(q1));
  }
}

}  // namespace contrail::kernels
