// AVX2 + FMA + F16C matmul kernels (compiled with -mavx2 -mfma -mf16c; called only when
// isa_supported(Isa::Avx2)). Numerics: contrail/kernels/matmul.h.
//
// Same structure as the AVX-512 kernels (see matmul_avx512.cpp) with 8-lane vectors and smaller
// register tiles for the 16 ymm registers: few tokens stream weight rows one at a time; many
// tokens go through panels of rows (f16 / bf16 converted once) and kRows x kTokens register
// tiles. q8_0: one block per vector, |qw| * sign(qx, qw) through vpmaddubsw.
//
// ODR: everything but the entry points lives in the anonymous namespace; no std templates and no
// contrail inline functions are used here.
#include <immintrin.h>

#include "contrail/core/dtype.h"
#include "contrail/kernels/matmul.h"

namespace contrail::kernels {
namespace {

constexpr int kRows = 4;    // weight rows per panel register tile
constexpr int kTokens = 3;  // tokens per register tile: 12 accumulators + 4 weight vectors

// Lanes [0, n) set, n in [0, 8], for maskload / maskstore.
__m256i first_lanes(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// n (< 8) halves from p, zero-padded to 8.
__m128i load_halves_tail(const uint16_t* p, int64_t n) {
  uint16_t buf[8] = {};
  for (int64_t i = 0; i < n; ++i) buf[i] = p[i];
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(buf));
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
  static __m256 convert(__m128i h) { return _mm256_cvtph_ps(h); }
  static __m256 load(const uint16_t* p) { return convert(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static __m256 load_tail(const uint16_t* p, int64_t n) { return convert(load_halves_tail(p, n)); }
};
struct BF16W {
  using T = uint16_t;
  static constexpr bool kIsF32 = false;
  static __m256 convert(__m128i h) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)); }
  static __m256 load(const uint16_t* p) { return convert(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static __m256 load_tail(const uint16_t* p, int64_t n) { return convert(load_halves_tail(p, n)); }
};

// 8 activations at p, or only the first `valid` (< 8) of them zero-padded.
__m256 load_x(const float* p, int64_t valid) {
  return valid == 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, first_lanes(valid));
}

// ---- f32 / f16 / bf16, few tokens --------------------------------------------------------------------

constexpr int kStreamRows = 4;            // weight rows per tile when x is not L1-resident
constexpr int64_t kXL1Bytes = 16 * 1024;  // token rows up to this size stay in L1 beside the stream

// sums[r][t] = sum_k w[r * n_in + k] * x[t * n_in + k] for r < R, t < NT: R consecutive weight rows
// read once for NT tokens, with kUnroll accumulator sets to keep enough FMA chains in flight.
template <class W, int R, int NT, int kUnroll>
void stream_tile(const typename W::T* w, const float* x, int64_t n_in, float (&sums)[kStreamRows][kTokens]) {
  __m256 acc[kUnroll][R][NT];
  for (auto& set : acc)
    for (auto& row : set)
      for (__m256& v : row) v = _mm256_setzero_ps();
  // valid == 8 except for the row's last partial vector.
  const auto step = [&](int u, int64_t k, int64_t valid) {
    __m256 wv[R];
    for (int r = 0; r < R; ++r) wv[r] = valid == 8 ? W::load(w + r * n_in + k) : W::load_tail(w + r * n_in + k, valid);
    for (int t = 0; t < NT; ++t) {
      const __m256 xv = load_x(x + t * n_in + k, valid);
      for (int r = 0; r < R; ++r) acc[u][r][t] = _mm256_fmadd_ps(wv[r], xv, acc[u][r][t]);
    }
  };
  int64_t k = 0;
  for (; k + 8 * kUnroll <= n_in; k += 8 * kUnroll)
    for (int u = 0; u < kUnroll; ++u) step(u, k + 8 * u, 8);
  for (; k + 8 <= n_in; k += 8) step(0, k, 8);
  if (k < n_in) step(0, k, n_in - k);
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < NT; ++t) {
      __m256 v = acc[0][r][t];
      for (int u = 1; u < kUnroll; ++u) v = _mm256_add_ps(v, acc[u][r][t]);
      sums[r][t] = hsum(v);
    }
}

// y[:, row_begin:row_end] for a.n_tokens == NT (<= kTokens): weight rows streamed one at a time
// while the token rows fit in L1 beside the stream, else kStreamRows rows sharing each x load (see
// matmul_avx512.cpp). Within one call every row is summed the same way, whichever tile it falls in.
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

// sums[r][t] = sum_k w[r][k] * x[t * n_in + k] for r < kRows, t < NT.
//   w: kRows f32 row pointers, (n_in) each; x: (NT, n_in) f32 token rows.
template <int NT>
void panel_tile(const float* const (&w)[kRows], const float* x, int64_t n_in, float (&sums)[kRows][kTokens]) {
  __m256 acc[kRows][NT];
  for (auto& row : acc)
    for (__m256& v : row) v = _mm256_setzero_ps();
  const auto step = [&](int64_t k, int64_t valid) {
    __m256 wv[kRows];
    for (int r = 0; r < kRows; ++r) wv[r] = load_x(w[r] + k, valid);
    for (int t = 0; t < NT; ++t) {
      const __m256 xv = load_x(x + t * n_in + k, valid);
      for (int r = 0; r < kRows; ++r) acc[r][t] = _mm256_fmadd_ps(wv[r], xv, acc[r][t]);
    }
  };
  int64_t k = 0;
  for (; k + 8 <= n_in; k += 8) step(k, 8);
  if (k < n_in) step(k, n_in - k);
  for (int r = 0; r < kRows; ++r)
    for (int t = 0; t < NT; ++t) sums[r][t] = hsum(acc[r][t]);
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
      static_assert(kTokens == 3);
      switch (nt) {
        case 1: panel_tile<1>(w, x, a.n_in, sums); break;
        case 2: panel_tile<2>(w, x, a.n_in, sums); break;
        default: panel_tile<3>(w, x, a.n_in, sums); break;
      }
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
  static_assert(kTokens == 3);
  switch (a.n_tokens) {
    case 1: return stream_rows<W, 1>(a);
    case 2: return stream_rows<W, 2>(a);
    case 3: return stream_rows<W, 3>(a);
    default: break;
  }
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

constexpr int kQRows = 4;    // weight rows per q8_0 panel register tile
constexpr int kQTokens = 2;  // tokens per q8_0 register tile

// sums[r][t] = sum over blocks of (dw * dx) * (qw . qx) for r < NR, t < NT.
//   w: NR row pointers, (n_in / 32) blocks each; xq: (NT, n_in) int8; xd: (NT, n_in / 32).
// Small tiles alternate between two accumulator sets so that >= 4 FMA chains are in flight.
template <int NR, int NT>
void qtile(const BlockQ8_0* const (&w)[NR], const int8_t* xq, const float* xd, int64_t n_in,
           float (&sums)[kQRows][kQTokens]) {
  constexpr int kSets = NR * NT >= 4 ? 1 : NR * NT >= 2 ? 2 : 4;
  const int64_t nb = n_in / kQ8_0Block;
  const __m256i ones16 = _mm256_set1_epi16(1);
  __m256 acc[kSets][NR][NT];
  for (auto& set : acc)
    for (auto& row : set)
      for (__m256& v : row) v = _mm256_setzero_ps();
  const auto step = [&](int64_t b, int set) {
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
        acc[set][r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_mul_ps(wd[r], xs), acc[set][r][t]);
      }
    }
  };
  int64_t b = 0;
  for (; b + kSets <= nb; b += kSets)
    for (int set = 0; set < kSets; ++set) step(b + set, set);
  for (; b < nb; ++b) step(b, 0);
  for (int r = 0; r < NR; ++r)
    for (int t = 0; t < NT; ++t) {
      __m256 v = acc[0][r][t];
      for (int set = 1; set < kSets; ++set) v = _mm256_add_ps(v, acc[set][r][t]);
      sums[r][t] = hsum(v);
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
        static_assert(kQTokens == 2);
        if (nt == 1) {
          qtile<kQRows, 1>(wr, xq, xd, a.n_in, sums);
        } else {
          qtile<kQRows, 2>(wr, xq, xd, a.n_in, sums);
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

void matmul_q8_0_avx2(const MatmulArgs& a) {
  switch (a.n_tokens) {
    case 1: return q_stream_rows<1>(a);
    case 2: return q_stream_rows<2>(a);
    default: return q_panel_times_tokens(a);
  }
}

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

}  // namespace contrail::kernels
