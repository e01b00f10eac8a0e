// AVX-512 matmul kernels (compiled with -mavx512f/bw/vl/dq plus AVX2/FMA/F16C; called only when
// isa_supported(Isa::Avx512)). Numerics: contrail/kernels/matmul.h.
//
// Two regimes, chosen by the number of tokens:
// - few tokens (<= kTokens; generation): bandwidth bound. Each thread streams its weight rows one at
//   a time, front to back -- one sequential stream reads DRAM fastest (interleaving 4 rows measured
//   20-35% slower for f16 and 2x slower for q8_0) -- converting on the fly and applying every
//   weight vector to all the tokens (4 rows at a time when the tokens' x rows outgrow L1).
// - many tokens (prompt processing): compute bound. Weights are packed (converted to f32 and
//   transposed to k-major) one panel of 64 rows x up to 1024 k at a time into the caller's scratch,
//   where they stay in L2 while every block of kTokens tokens runs past them: a 6 x 64 register
//   tile of accumulators, 4 weight loads and 6 broadcasts of x per k, no horizontal sums. Each
//   weight is read from memory once per call. (A 4 x 6 dot-product tile reading weight rows and x
//   rows from L2 ran at a third of this CPU's FMA peak; this form reaches ~85%. Shorter chunks
//   that fit L1 were slower: the packing then reads 64 rows in short runs.)
// q8_0 (AVX-512BW, no VNNI): two blocks per 512-bit vector, |qw| * sign(qx, qw) with vpmaddubsw.
//
// ODR: everything but the entry points lives in the anonymous namespace; no std function templates
// and no contrail inline functions are used here.
#include "kernels/simd_avx512.h"
// (the traits first: the generic kernels are written against them)
#include "contrail/core/dtype.h"
#include "kernels/isa_kernels.h"
#include "kernels/matmul_avx512_shared.h"
#include "kernels/matmul_simd.h"

namespace contrail::kernels {
namespace {

constexpr int kTokens = 6;  // tokens per register tile (both regimes)
using Stream = StreamConfig<kTokens, 24 * 1024>;

// Lanes [0, n) of a 16-lane vector, n >= 0.
__mmask16 first_lanes(int64_t n) { return Avx512::tail(n); }

// Weight element types: load(p, valid) reads 16 consecutive weights as f32, only the first `valid`
// (<= 16) with the rest 0.
struct F32W {
  using T = float;
  static __m512 load(const float* p, int64_t valid) { return _mm512_maskz_loadu_ps(first_lanes(valid), p); }
};
struct F16W {
  using T = uint16_t;
  static __m512 load(const uint16_t* p, int64_t valid) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(first_lanes(valid), p));
  }
};
struct BF16W {
  using T = uint16_t;
  static __m512 load(const uint16_t* p, int64_t valid) {
    const __m256i h = _mm256_maskz_loadu_epi16(first_lanes(valid), p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
};

// ---- f32 / f16 / bf16, few tokens: stream_rows (kernels/matmul_simd.h) ------------------------------

// ---- f32 / f16 / bf16, many tokens -------------------------------------------------------------------

constexpr int kPanelCols = 64;           // weight rows (outputs) per packed panel: 4 vectors
constexpr int64_t kChunk = 1024;         // k per packed panel: (1024, 64) f32 = 256 KiB, L2-resident
constexpr int64_t kPrefetchAhead = 128;  // weights ahead of the packing loads to prefetch

// wp[k][j] = w0[j][k0 + k] for k < kc, j < kPanelCols (0 for j >= n_rows): a k-major panel.
//   w0: (n_rows, n_in) weight rows of type W::T; wp: (kc, kPanelCols) f32.
template <class W>
void pack_panel(const typename W::T* w0, int64_t n_in, int64_t n_rows, int64_t k0, int64_t kc, float* wp) {
  for (int j0 = 0; j0 < kPanelCols; j0 += 16)
    for (int64_t k = 0; k < kc; k += 16) {
      const int64_t nk = kc - k < 16 ? kc - k : 16;
      __m512 r[16];
      for (int i = 0; i < 16; ++i)
        r[i] = j0 + i < n_rows ? W::load(w0 + (j0 + i) * n_in + k0 + k, nk) : _mm512_setzero_ps();
      // 16 rows at once are too many streams for the hardware prefetchers: +10-20% for 8-32 tokens.
      for (int i = 0; i < 16 && j0 + i < n_rows; ++i)
        _mm_prefetch(reinterpret_cast<const char*>(w0 + (j0 + i) * n_in + k0 + k + kPrefetchAhead), _MM_HINT_T0);
      transpose16(r);
      for (int64_t i = 0; i < nk; ++i) _mm512_storeu_ps(wp + (k + i) * kPanelCols + j0, r[i]);
    }
}

// y[t, j] (+)= sum_{k < kc} x[t * n_in + k] * wp[k][j] for t < NT, j < n_cols (<= kPanelCols);
// '+' when accumulate (a later k chunk). Broadcasts of x against the packed weights: no
// horizontal sums, 24 accumulators fed by 4 weight loads and 6 broadcasts per k.
//   wp: (kc, kPanelCols); x: token rows of stride n_in at the chunk's first k; y: rows of stride
//   n_out at the panel's first output.
template <int NT>
void packed_tile(const float* wp, const float* x, int64_t n_in, int64_t kc, float* y, int64_t n_out, int64_t n_cols,
                 bool accumulate) {
  constexpr int kV = kPanelCols / 16;
  __m512 acc[NT][kV];
  zero_all(acc, _mm512_setzero_ps());
  for (int64_t k = 0; k < kc; ++k) {
    __m512 wv[kV];
    for (int v = 0; v < kV; ++v) wv[v] = _mm512_loadu_ps(wp + k * kPanelCols + 16 * v);
    for (int t = 0; t < NT; ++t) {
      const __m512 xb = _mm512_set1_ps(x[t * n_in + k]);
      for (int v = 0; v < kV; ++v) acc[t][v] = _mm512_fmadd_ps(wv[v], xb, acc[t][v]);
    }
  }
  for (int t = 0; t < NT; ++t) store_tile_row(y + t * n_out, acc[t], n_cols, accumulate);
}

// y[:, row_begin:row_end] for many tokens: per panel of kPanelCols rows and chunk of k, pack the
// weights once into the scratch and run every block of <= kTokens tokens past them. Chunk
// boundaries depend only on n_in and the scratch size, so results do not depend on the row split.
template <class W>
void packed_times_tokens(const MatmulArgs& a) {
  const auto* w = static_cast<const typename W::T*>(a.w);  // (n_out, n_in)
  const int64_t max_kc = a.scratch_floats / kPanelCols < kChunk ? a.scratch_floats / kPanelCols : kChunk;  // >= 1
  // Token blocks of nearly equal size (32 tokens: 6,6,5,5,5,5 rather than 6,6,6,6,6,2).
  const int64_t n_blocks = (a.n_tokens + kTokens - 1) / kTokens;
  for (int64_t o0 = a.row_begin; o0 < a.row_end; o0 += kPanelCols) {
    const int64_t n_rows = a.row_end - o0 < kPanelCols ? a.row_end - o0 : kPanelCols;
    for (int64_t k0 = 0; k0 < a.n_in; k0 += max_kc) {
      const int64_t kc = a.n_in - k0 < max_kc ? a.n_in - k0 : max_kc;
      pack_panel<W>(w + o0 * a.n_in, a.n_in, n_rows, k0, kc, a.scratch);
      for (int64_t blk = 0; blk < n_blocks; ++blk) {
        const int64_t t0 = a.n_tokens * blk / n_blocks;
        const float* x = a.x + t0 * a.n_in + k0;
        float* y = a.y + t0 * a.n_out + o0;
        const bool acc = k0 > 0;
        with_count<kTokens>(a.n_tokens * (blk + 1) / n_blocks - t0,
                            [&]<int NT>() { packed_tile<NT>(a.scratch, x, a.n_in, kc, y, a.n_out, n_rows, acc); });
      }
    }
  }
}

template <class W>
void matmul_float(const MatmulArgs& a) {
  if (a.n_tokens <= kTokens)
    with_count<kTokens>(a.n_tokens, [&]<int NT>() { stream_rows<Avx512, W, Stream, NT>(a); });
  else
    packed_times_tokens<W>(a);
}

// ---- q8_0 ----------------------------------------------------------------------------------------------

// The q8_0 block step (QTile in kernels/matmul_simd.h; AVX-512BW without VNNI): two blocks per
// 512-bit vector, |qw| * sign(qx, qw) with vpmaddubsw.
struct QStep {
  static constexpr int kStep = 2;
  static constexpr int sets(int n) { return n >= 4 ? 1 : 2; }
  const __m512i ones16 = _mm512_set1_epi16(1);

  template <int NR, int NT>
  void step(const BlockQ8_0* const (&w)[NR], int64_t b, bool two, const int8_t* xq, const float* xd, int64_t n_in,
            __m512 (&acc)[NR][NT]) const {
    const int64_t nb = n_in / kQ8_0Block;
    __m512i wabs[NR];  // |qw| as unsigned bytes (-128 -> 128)
    __mmask64 wneg[NR];
    __m512 wd[NR];
    for (int r = 0; r < NR; ++r) {
      const __m512i q = load_w_pair(w[r] + b, two);
      wabs[r] = _mm512_abs_epi8(q);
      wneg[r] = _mm512_movepi8_mask(q);
      wd[r] = load_w_scales(w[r] + b, two);
    }
    for (int t = 0; t < NT; ++t) {
      const __m512i xv = load_x_pair(xq + t * n_in + b * kQ8_0Block, two);
      const __m512 xs = load_x_scales(xd + t * nb + b, two);
      for (int r = 0; r < NR; ++r) {
        const __m512i xsigned = _mm512_mask_sub_epi8(xv, wneg[r], _mm512_setzero_si512(), xv);  // qx * sign(qw)
        // |qw| <= 128, |qx| <= 127: a pair of products fits int16 without saturating.
        const __m512i sumi = _mm512_madd_epi16(_mm512_maddubs_epi16(wabs[r], xsigned), ones16);
        acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_mul_ps(wd[r], xs), acc[r][t]);
      }
    }
  }
};
using Q8Tile = QTile<Avx512, QStep, 4, 4>;  // 4 rows x 4 tokens

void quantize_act_q8_0(const float* x, int64_t n, int8_t* qs, float* d) {
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

}  // namespace

constinit const MatmulKernels kMatmulAvx512{matmul_float<F32W>, matmul_float<F16W>, matmul_float<BF16W>,
                                            matmul_q8_0<Q8Tile, 4>, quantize_act_q8_0};

}  // namespace contrail::kernels
