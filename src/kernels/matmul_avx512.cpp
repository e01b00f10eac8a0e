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
// ODR: everything but the entry points lives in the anonymous namespace; no std templates and no
// contrail inline functions are used here.
#include "kernels/immintrin_avx512.h"

#include "contrail/core/dtype.h"
#include "contrail/kernels/matmul.h"
#include "kernels/q8_0_loads_avx512.h"

namespace contrail::kernels {
namespace {

constexpr int kTokens = 6;  // tokens per register tile (both regimes)

// Lanes [0, n) of a 16-lane vector, n in [0, 16].
__mmask16 first_lanes(int64_t n) { return static_cast<__mmask16>((1u << n) - 1u); }

// Weight element types: load 16 consecutive weights as f32 (lanes outside `m` read as 0).
struct F32W {
  using T = float;
  static __m512 load(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
};
struct F16W {
  using T = uint16_t;
  static __m512 load(const uint16_t* p, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }
};
struct BF16W {
  using T = uint16_t;
  static __m512 load(const uint16_t* p, __mmask16 m) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
  }
};

// ---- f32 / f16 / bf16, few tokens --------------------------------------------------------------------

constexpr int kStreamRows = 4;            // weight rows per tile when x is not L1-resident
constexpr int64_t kXL1Bytes = 24 * 1024;  // token rows up to this size stay in L1 beside the stream

// sums[r][t] = sum_k w[r * n_in + k] * x[t * n_in + k] for r < R, t < NT: R consecutive weight rows
// read once for NT tokens, with kUnroll accumulator sets to keep enough FMA chains in flight.
template <class W, int R, int NT, int kUnroll>
void stream_tile(const typename W::T* w, const float* x, int64_t n_in, float (&sums)[kStreamRows][kTokens]) {
  __m512 acc[kUnroll][R][NT];
  for (auto& set : acc)
    for (auto& row : set)
      for (__m512& v : row) v = _mm512_setzero_ps();
  const auto step = [&](int u, int64_t k, __mmask16 m) {
    __m512 wv[R];
    for (int r = 0; r < R; ++r) wv[r] = W::load(w + r * n_in + k, m);
    for (int t = 0; t < NT; ++t) {
      const __m512 xv = _mm512_maskz_loadu_ps(m, x + t * n_in + k);
      for (int r = 0; r < R; ++r) acc[u][r][t] = _mm512_fmadd_ps(wv[r], xv, acc[u][r][t]);
    }
  };
  int64_t k = 0;
  for (; k + 16 * kUnroll <= n_in; k += 16 * kUnroll)
    for (int u = 0; u < kUnroll; ++u) step(u, k + 16 * u, 0xffff);
  for (; k + 16 <= n_in; k += 16) step(0, k, 0xffff);
  if (k < n_in) step(0, k, first_lanes(n_in - k));
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < NT; ++t) {
      __m512 v = acc[0][r][t];
      for (int u = 1; u < kUnroll; ++u) v = _mm512_add_ps(v, acc[u][r][t]);
      sums[r][t] = _mm512_reduce_add_ps(v);
    }
}

// y[:, row_begin:row_end] for a.n_tokens == NT (<= kTokens). When the NT token rows fit in L1 (always
// for one token), weight rows are streamed one at a time. Otherwise x would be re-read from L2 for
// every weight vector, so kStreamRows rows share each x load (measured 1.5-2x faster there). Within
// one call every row is summed the same way, whichever tile it falls in.
template <class W, int NT>
void stream_rows(const MatmulArgs& a) {
  const auto* w = static_cast<const typename W::T*>(a.w);  // (n_out, n_in)
  float sums[kStreamRows][kTokens];
  const auto store = [&](int64_t o, int rows) {
    for (int r = 0; r < rows; ++r)
      for (int t = 0; t < NT; ++t) a.y[t * a.n_out + o + r] = sums[r][t];
  };
  int64_t o = a.row_begin;
  if (NT == 1 || NT * a.n_in * static_cast<int64_t>(sizeof(float)) <= kXL1Bytes) {
    constexpr int kUnroll = NT == 1 ? 4 : NT == 2 ? 2 : 1;
    for (; o < a.row_end; ++o) {
      stream_tile<W, 1, NT, kUnroll>(w + o * a.n_in, a.x, a.n_in, sums);
      store(o, 1);
    }
    return;
  }
  for (; o + kStreamRows <= a.row_end; o += kStreamRows) {
    stream_tile<W, kStreamRows, NT, 1>(w + o * a.n_in, a.x, a.n_in, sums);
    store(o, kStreamRows);
  }
  for (; o < a.row_end; ++o) {
    stream_tile<W, 1, NT, 1>(w + o * a.n_in, a.x, a.n_in, sums);
    store(o, 1);
  }
}

// ---- f32 / f16 / bf16, many tokens -------------------------------------------------------------------

constexpr int kPanelCols = 64;           // weight rows (outputs) per packed panel: 4 vectors
constexpr int64_t kChunk = 1024;         // k per packed panel: (1024, 64) f32 = 256 KiB, L2-resident
constexpr int64_t kPrefetchAhead = 128;  // weights ahead of the packing loads to prefetch

// In-place transpose of a 16x16 f32 block held as 16 row vectors.
void transpose16(__m512 (&r)[16]) {
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

// wp[k][j] = w0[j][k0 + k] for k < kc, j < kPanelCols (0 for j >= n_rows): a k-major panel.
//   w0: (n_rows, n_in) weight rows of type W::T; wp: (kc, kPanelCols) f32.
template <class W>
void pack_panel(const typename W::T* w0, int64_t n_in, int64_t n_rows, int64_t k0, int64_t kc, float* wp) {
  for (int j0 = 0; j0 < kPanelCols; j0 += 16)
    for (int64_t k = 0; k < kc; k += 16) {
      const int64_t nk = kc - k < 16 ? kc - k : 16;
      __m512 r[16];
      for (int i = 0; i < 16; ++i)
        r[i] = j0 + i < n_rows ? W::load(w0 + (j0 + i) * n_in + k0 + k, first_lanes(nk)) : _mm512_setzero_ps();
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
  for (auto& row : acc)
    for (__m512& v : row) v = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    __m512 wv[kV];
    for (int v = 0; v < kV; ++v) wv[v] = _mm512_loadu_ps(wp + k * kPanelCols + 16 * v);
    for (int t = 0; t < NT; ++t) {
      const __m512 xb = _mm512_set1_ps(x[t * n_in + k]);
      for (int v = 0; v < kV; ++v) acc[t][v] = _mm512_fmadd_ps(wv[v], xb, acc[t][v]);
    }
  }
  for (int t = 0; t < NT; ++t)
    for (int v = 0; v < kV; ++v) {
      const int64_t cols = n_cols - 16 * v;
      if (cols <= 0) break;
      const __mmask16 m = first_lanes(cols < 16 ? cols : 16);
      float* yp = y + t * n_out + 16 * v;
      const __m512 sum = accumulate ? _mm512_add_ps(_mm512_maskz_loadu_ps(m, yp), acc[t][v]) : acc[t][v];
      _mm512_mask_storeu_ps(yp, m, sum);
    }
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
        static_assert(kTokens == 6);
        switch (a.n_tokens * (blk + 1) / n_blocks - t0) {
          case 1: packed_tile<1>(a.scratch, x, a.n_in, kc, y, a.n_out, n_rows, acc); break;
          case 2: packed_tile<2>(a.scratch, x, a.n_in, kc, y, a.n_out, n_rows, acc); break;
          case 3: packed_tile<3>(a.scratch, x, a.n_in, kc, y, a.n_out, n_rows, acc); break;
          case 4: packed_tile<4>(a.scratch, x, a.n_in, kc, y, a.n_out, n_rows, acc); break;
          case 5: packed_tile<5>(a.scratch, x, a.n_in, kc, y, a.n_out, n_rows, acc); break;
          default: packed_tile<6>(a.scratch, x, a.n_in, kc, y, a.n_out, n_rows, acc); break;
        }
      }
    }
  }
}

template <class W>
void matmul_float(const MatmulArgs& a) {
  static_assert(kTokens == 6);
  switch (a.n_tokens) {
    case 1: return stream_rows<W, 1>(a);
    case 2: return stream_rows<W, 2>(a);
    case 3: return stream_rows<W, 3>(a);
    case 4: return stream_rows<W, 4>(a);
    case 5: return stream_rows<W, 5>(a);
    case 6: return stream_rows<W, 6>(a);
    default: return packed_times_tokens<W>(a);
  }
}

// ---- q8_0 ----------------------------------------------------------------------------------------------

constexpr int kQRows = 4;    // weight rows per q8_0 panel register tile
constexpr int kQTokens = 4;  // tokens per q8_0 register tile


// sums[r][t] = sum over blocks of (dw * dx) * (qw . qx) for r < NR, t < NT.
//   w: NR row pointers, (n_in / 32) blocks each; xq: (NT, n_in) int8; xd: (NT, n_in / 32).
// Small tiles alternate between two accumulator sets so that >= 4 FMA chains are in flight.
template <int NR, int NT>
void qtile(const BlockQ8_0* const (&w)[NR], const int8_t* xq, const float* xd, int64_t n_in,
           float (&sums)[kQRows][kQTokens]) {
  constexpr int kSets = NR * NT >= 4 ? 1 : 2;
  const int64_t nb = n_in / kQ8_0Block;
  const __m512i ones16 = _mm512_set1_epi16(1);
  __m512 acc[kSets][NR][NT];
  for (auto& set : acc)
    for (auto& row : set)
      for (__m512& v : row) v = _mm512_setzero_ps();
  const auto step = [&](int64_t b, bool two, int set) {
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
        acc[set][r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_mul_ps(wd[r], xs), acc[set][r][t]);
      }
    }
  };
  int64_t b = 0;
  for (; b + 2 * kSets <= nb; b += 2 * kSets)
    for (int set = 0; set < kSets; ++set) step(b + 2 * set, true, set);
  for (; b + 2 <= nb; b += 2) step(b, true, 0);
  if (b < nb) step(b, false, 0);
  for (int r = 0; r < NR; ++r)
    for (int t = 0; t < NT; ++t) {
      __m512 v = acc[0][r][t];
      for (int set = 1; set < kSets; ++set) v = _mm512_add_ps(v, acc[set][r][t]);
      sums[r][t] = _mm512_reduce_add_ps(v);
    }
}

// Few tokens (bandwidth bound): one weight row at a time, a single sequential stream.
template <int NT>
void q_stream_rows(const MatmulArgs& a) {
  const int64_t nb = a.n_in / kQ8_0Block;
  const auto* w = static_cast<const BlockQ8_0*>(a.w);  // (n_out, nb)
  for (int64_t o = a.row_begin; o < a.row_end; ++o) {
    const BlockQ8_0* const row[1] = {w + o * nb};
    float sums[kQRows][kQTokens];
    qtile<1, NT>(row, a.xq, a.xd, a.n_in, sums);
    for (int t = 0; t < NT; ++t) a.y[t * a.n_out + o] = sums[0][t];
  }
}

// Many tokens (compute bound): panels of rows stay in L2 while all token blocks stream past them
// through kQRows x kQTokens register tiles.
void q_panel_times_tokens(const MatmulArgs& a) {
  const int64_t nb = a.n_in / kQ8_0Block;
  const auto* w = static_cast<const BlockQ8_0*>(a.w);  // (n_out, nb)
  const int64_t panel_rows = matmul_panel_rows(nb * static_cast<int64_t>(sizeof(BlockQ8_0)));
  for (int64_t p0 = a.row_begin; p0 < a.row_end; p0 += panel_rows) {
    const int64_t p1 = a.row_end - p0 < panel_rows ? a.row_end : p0 + panel_rows;
    for (int64_t t0 = 0; t0 < a.n_tokens; t0 += kQTokens) {
      const int nt = static_cast<int>(a.n_tokens - t0 < kQTokens ? a.n_tokens - t0 : kQTokens);
      const int8_t* xq = a.xq + t0 * a.n_in;  // (nt, n_in)
      const float* xd = a.xd + t0 * nb;       // (nt, nb)
      for (int64_t r0 = p0; r0 < p1; r0 += kQRows) {
        const int nr = static_cast<int>(p1 - r0 < kQRows ? p1 - r0 : kQRows);
        const BlockQ8_0* wr[kQRows];  // a tile short of kQRows rows repeats its last row
        for (int r = 0; r < kQRows; ++r) wr[r] = w + (r0 + (r < nr ? r : nr - 1)) * nb;
        float sums[kQRows][kQTokens];
        static_assert(kQTokens == 4);
        switch (nt) {
          case 1: qtile<kQRows, 1>(wr, xq, xd, a.n_in, sums); break;
          case 2: qtile<kQRows, 2>(wr, xq, xd, a.n_in, sums); break;
          case 3: qtile<kQRows, 3>(wr, xq, xd, a.n_in, sums); break;
          default: qtile<kQRows, 4>(wr, xq, xd, a.n_in, sums); break;
        }
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

void matmul_q8_0_avx512(const MatmulArgs& a) {
  switch (a.n_tokens) {
    case 1: return q_stream_rows<1>(a);
    case 2: return q_stream_rows<2>(a);
    case 3: return q_stream_rows<3>(a);
    case 4: return q_stream_rows<4>(a);
    default: return q_panel_times_tokens(a);
  }
}

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
