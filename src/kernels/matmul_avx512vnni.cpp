// AVX-512 VNNI q8_0 matmul kernel (compiled with the AVX-512 flags plus -mavx512vnni
// -mavx512bf16; called only when cpu_features().avx512vnni). Numerics: contrail/kernels/matmul.h.
//
// Two q8_0 blocks per 512-bit vector. vpdpbusd multiplies unsigned by signed bytes, so the weights
// are offset to unsigned (qw + 128, one xor per weight vector, shared by every token of the tile)
// and the accumulator starts at -128 * sum(qx) (per token, shared by every row of the tile):
// -128 * sum(qx) + sum((qw + 128) * qx) = sum(qw * qx), exact in int32. The tile and panel
// structure mirrors the AVX-512BW kernel in matmul_avx512.cpp.
//
// ODR: everything but the entry point lives in the anonymous namespace; no std templates and no
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

constexpr int kQRows = 4;    // weight rows per register tile
constexpr int kQTokens = 4;  // tokens per register tile

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

// sums[r][t] = sum over blocks of (dw * dx) * (qw . qx) for r < NR, t < NT.
//   w: NR row pointers, (n_in / 32) blocks each; xq: (NT, n_in) int8; xd: (NT, n_in / 32).
// Small tiles alternate between two accumulator sets so that >= 4 FMA chains are in flight.
template <int NR, int NT>
void qtile(const BlockQ8_0* const (&w)[NR], const int8_t* xq, const float* xd, int64_t n_in,
           float (&sums)[kQRows][kQTokens]) {
  constexpr int kSets = NR * NT >= 4 ? 1 : 2;
  const int64_t nb = n_in / kQ8_0Block;
  const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512 acc[kSets][NR][NT];
  for (auto& set : acc)
    for (auto& row : set)
      for (__m512& v : row) v = _mm512_setzero_ps();
  const auto step = [&](int64_t b, bool two, int set) {
    __m512i wu[NR];  // qw + 128 as unsigned bytes
    __m512 wd[NR];
    for (int r = 0; r < NR; ++r) {
      wu[r] = _mm512_xor_si512(load_w_pair(w[r] + b, two), bias);
      wd[r] = load_w_scales(w[r] + b, two);
    }
    for (int t = 0; t < NT; ++t) {
      const __m512i xv = load_x_pair(xq + t * n_in + b * kQ8_0Block, two);
      const __m512 xs = load_x_scales(xd + t * nb + b, two);
      const __m512i start = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), bias, xv));
      for (int r = 0; r < NR; ++r) {
        const __m512i sumi = _mm512_dpbusd_epi32(start, wu[r], xv);
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

void matmul_q8_0_avx512vnni(const MatmulArgs& a) {
  switch (a.n_tokens) {
    case 1: return q_stream_rows<1>(a);
    case 2: return q_stream_rows<2>(a);
    case 3: return q_stream_rows<3>(a);
    case 4: return q_stream_rows<4>(a);
    default: return q_panel_times_tokens(a);
  }
}

}  // namespace contrail::kernels
