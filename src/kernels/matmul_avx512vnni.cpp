// AVX-512 VNNI q8_0 matmul kernel (compiled with the AVX-512 flags plus -mavx512vnni
// -mavx512bf16; called only when cpu_features().avx512vnni). Numerics: contrail/kernels/matmul.h.
//
// vpdpbusd multiplies unsigned by signed bytes, so one operand is biased by +128 and the int32
// accumulator starts at -128 * (sum of the other operand): the block sums come out exact.
// - few tokens (<= kStreamTokens; bandwidth bound): weight rows streamed one at a time as in
//   matmul_avx512.cpp, two blocks per vector; the weights are biased (qw + 128).
// - many tokens (compute bound): weights are packed (biased), 64 rows x up to 64 blocks at a time,
//   so that lane j of a vector is row j and each 32-bit lane holds 4 consecutive weights; the
//   activations are broadcast 4 bytes at a time. A 6-token x 64-row tile of int32 accumulators then
//   takes 4 weight loads per 24 vpdpbusd, with the per-block scaling (convert, multiply by
//   dw * dx, accumulate in f32) once per block: ~2.5x the dot-product tile's throughput.
//
// ODR: everything but the entry point lives in the anonymous namespace; no std templates and no
// contrail inline functions are used here.
#include "kernels/immintrin_avx512.h"

#include "contrail/core/dtype.h"
#include "contrail/kernels/matmul.h"
#include "kernels/q8_0_loads_avx512.h"

namespace contrail::kernels {
namespace {

constexpr int kStreamTokens = 4;  // up to this many tokens stream weight rows; more use packed panels


// sums[t] = sum over blocks of (dw * dx) * (qw . qx) for t < NT, against one weight row.
//   w: (n_in / 32) blocks; xq: (NT, n_in) int8; xd: (NT, n_in / 32).
// Small tiles alternate between accumulator sets so that >= 4 FMA chains are in flight.
template <int NT>
void row_tile(const BlockQ8_0* w, const int8_t* xq, const float* xd, int64_t n_in, float (&sums)[kStreamTokens]) {
  constexpr int kSets = NT >= 4 ? 1 : NT >= 2 ? 2 : 4;
  const int64_t nb = n_in / kQ8_0Block;
  const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512 acc[kSets][NT];
  for (auto& set : acc)
    for (__m512& v : set) v = _mm512_setzero_ps();
  const auto step = [&](int64_t b, bool two, int set) {
    const __m512i wu = _mm512_xor_si512(load_w_pair(w + b, two), bias);  // qw + 128 as unsigned bytes
    const __m512 wd = load_w_scales(w + b, two);
    for (int t = 0; t < NT; ++t) {
      const __m512i xv = load_x_pair(xq + t * n_in + b * kQ8_0Block, two);
      const __m512 xs = load_x_scales(xd + t * nb + b, two);
      // -128 * sum(qx) + sum((qw + 128) * qx) = sum(qw * qx), exact in int32.
      const __m512i x128 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), bias, xv);  // 128 * sum(qx)
      const __m512i start = _mm512_sub_epi32(_mm512_setzero_si512(), x128);
      const __m512i sumi = _mm512_dpbusd_epi32(start, wu, xv);
      acc[set][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_mul_ps(wd, xs), acc[set][t]);
    }
  };
  int64_t b = 0;
  for (; b + 2 * kSets <= nb; b += 2 * kSets)
    for (int set = 0; set < kSets; ++set) step(b + 2 * set, true, set);
  for (; b + 2 <= nb; b += 2) step(b, true, 0);
  if (b < nb) step(b, false, 0);
  for (int t = 0; t < NT; ++t) {
    __m512 v = acc[0][t];
    for (int set = 1; set < kSets; ++set) v = _mm512_add_ps(v, acc[set][t]);
    sums[t] = _mm512_reduce_add_ps(v);
  }
}

// y[:, row_begin:row_end] for a.n_tokens == NT (<= kStreamTokens), one weight row at a time: a
// single sequential stream, the fastest way to read DRAM.
template <int NT>
void stream_rows(const MatmulArgs& a) {
  const int64_t nb = a.n_in / kQ8_0Block;
  const auto* w = static_cast<const BlockQ8_0*>(a.w);  // (n_out, nb)
  for (int64_t o = a.row_begin; o < a.row_end; ++o) {
    float sums[kStreamTokens];
    row_tile<NT>(w + o * nb, a.xq, a.xd, a.n_in, sums);
    for (int t = 0; t < NT; ++t) a.y[t * a.n_out + o] = sums[t];
  }
}

// ---- many tokens: packed panels -----------------------------------------------------------------------

constexpr int kPackCols = 64;         // weight rows (outputs) per packed panel: 4 vectors of lanes
constexpr int kPackTokens = 6;        // tokens per register tile: 24 int32 accumulators
constexpr int64_t kChunkBlocks = 64;  // q8_0 blocks (2048 k) per packed panel: 144 KiB, L2-resident

// One q8_0 block of kPackCols weight rows, laid out for broadcasting activations: lane j of a
// vector is weight row j, and each 32-bit lane holds 4 consecutive weights (vpdpbusd's unit).
struct PackedBlock {
  int32_t q[8][kPackCols];  // q[g][j]: qw[j][4g .. 4g+3] + 128 as 4 unsigned bytes
  float d[kPackCols];       // f32(dw[j])
};

// In-place transpose of a 16x16 matrix of 32-bit words held as 16 row vectors.
void transpose16(__m512i (&r)[16]) {
  __m512i t[16];
  for (int i = 0; i < 8; ++i) {  // interleave row pairs: per 128-bit lane, words (4L, 4L+1) and (4L+2, 4L+3)
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // r[4i + c], lane L: word 4L + c of rows 4i .. 4i+3
    r[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int c = 0; c < 4; ++c) {  // 4x4 transpose of 128-bit lanes: out[4L + c] lane i = r[4i + c] lane L
    const __m512i u0 = _mm512_shuffle_i32x4(r[c], r[4 + c], 0x44);
    const __m512i u1 = _mm512_shuffle_i32x4(r[c], r[4 + c], 0xee);
    const __m512i u2 = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0x44);
    const __m512i u3 = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0xee);
    t[c] = _mm512_shuffle_i32x4(u0, u2, 0x88);
    t[4 + c] = _mm512_shuffle_i32x4(u0, u2, 0xdd);
    t[8 + c] = _mm512_shuffle_i32x4(u1, u3, 0x88);
    t[12 + c] = _mm512_shuffle_i32x4(u1, u3, 0xdd);
  }
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}

// pb[0, nbc) <- blocks [b0, b0 + nbc) of weight rows [0, n_rows) (n_rows <= kPackCols; missing
// rows packed as zeros). w0: (n_rows, nb) blocks.
void pack_panel(const BlockQ8_0* w0, int64_t nb, int64_t n_rows, int64_t b0, int64_t nbc, PackedBlock* pb) {
  const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80));
  for (int j0 = 0; j0 < kPackCols; j0 += 16)
    for (int64_t b = 0; b < nbc; b += 2) {
      const bool two = b + 1 < nbc;
      __m512i r[16];  // 16 rows x the 16 words of blocks b, b+1
      for (int i = 0; i < 16; ++i)
        r[i] = j0 + i < n_rows ? load_w_pair(w0 + (j0 + i) * nb + b0 + b, two) : _mm512_setzero_si512();
      transpose16(r);  // r[8h + g]: word g of block b + h for the 16 rows
      for (int h = 0; h < (two ? 2 : 1); ++h) {
        PackedBlock& p = pb[b + h];
        for (int g = 0; g < 8; ++g) _mm512_storeu_si512(p.q[g] + j0, _mm512_xor_si512(r[8 * h + g], bias));
        for (int i = 0; i < 16; ++i)
          p.d[j0 + i] = j0 + i < n_rows ? _cvtsh_ss(w0[(j0 + i) * nb + b0 + b + h].d) : 0.0f;
      }
    }
}

// y[t, j] (+)= sum over blocks b < nbc of (dw[b][j] * dx[t][b]) * (qw[j] . qx[t]) over block b, for
// t < NT, j < n_cols (<= kPackCols); '+' when accumulate (a later chunk of blocks).
//   pb: (nbc) packed blocks; xq: token rows of stride n_in at the chunk's first block; xcorr: (NT,
//   kChunkBlocks) -128 * sum(qx) per block; xd: token rows of stride nb at the chunk's first block;
//   y: rows of stride n_out at the panel's first output.
// Per group of 4 k: 4 weight vectors feed NT x 4 vpdpbusd, each token's 4 activation bytes
// broadcast to every lane. The f32 accumulators live in an L1 tile (one update per block), which
// leaves the registers to the 24 int32 accumulators.
template <int NT>
void packed_tile(const PackedBlock* pb, int64_t nbc, const int8_t* xq, int64_t n_in, const int32_t* xcorr,
                 const float* xd, int64_t nb, float* y, int64_t n_out, int64_t n_cols, bool accumulate) {
  constexpr int kV = kPackCols / 16;
  alignas(64) float acc[NT][kPackCols] = {};  // (NT, kPackCols) f32 block-scaled sums
  for (int64_t b = 0; b < nbc; ++b) {
    const PackedBlock& p = pb[b];
    __m512i isum[NT][kV];  // exact block sums: -128 sum(qx) + sum((qw + 128) qx) = sum(qw qx)
    for (int t = 0; t < NT; ++t) {
      const __m512i start = _mm512_set1_epi32(xcorr[t * kChunkBlocks + b]);
      for (int v = 0; v < kV; ++v) isum[t][v] = start;
    }
#pragma GCC unroll 8  // keeps all 24 accumulators in registers (a rolled loop spills them)
    for (int g = 0; g < 8; ++g) {
      __m512i wv[kV];
      for (int v = 0; v < kV; ++v) wv[v] = _mm512_loadu_si512(p.q[g] + 16 * v);
      for (int t = 0; t < NT; ++t) {
        int32_t x4;  // qx[t][32b + 4g .. +3]
        __builtin_memcpy(&x4, xq + t * n_in + b * kQ8_0Block + 4 * g, sizeof(x4));
        const __m512i xb = _mm512_set1_epi32(x4);
        for (int v = 0; v < kV; ++v) isum[t][v] = _mm512_dpbusd_epi32(isum[t][v], wv[v], xb);
      }
    }
    for (int v = 0; v < kV; ++v) {
      const __m512 dw = _mm512_loadu_ps(p.d + 16 * v);
      for (int t = 0; t < NT; ++t) {
        const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(xd[t * nb + b]));
        float* a = acc[t] + 16 * v;
        _mm512_store_ps(a, _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t][v]), scale, _mm512_load_ps(a)));
      }
    }
  }
  for (int t = 0; t < NT; ++t)
    for (int v = 0; v < kV; ++v) {
      const int64_t cols = n_cols - 16 * v;
      if (cols <= 0) break;
      const __mmask16 m = static_cast<__mmask16>((1u << (cols < 16 ? cols : 16)) - 1u);
      float* yp = y + t * n_out + 16 * v;
      const __m512 sum = _mm512_load_ps(acc[t] + 16 * v);
      _mm512_mask_storeu_ps(yp, m, accumulate ? _mm512_add_ps(_mm512_maskz_loadu_ps(m, yp), sum) : sum);
    }
}

// y[:, row_begin:row_end] for many tokens: per panel of kPackCols rows and chunk of blocks, pack the
// weights once into the scratch and run every block of <= kPackTokens tokens past them. Chunk
// boundaries depend only on n_in and the scratch size, so results do not depend on the row split.
void packed_times_tokens(const MatmulArgs& a) {
  const int64_t nb = a.n_in / kQ8_0Block;
  const auto* w = static_cast<const BlockQ8_0*>(a.w);  // (n_out, nb)
  auto* pb = reinterpret_cast<PackedBlock*>(a.scratch);
  const int64_t capacity = a.scratch_floats * 4 / static_cast<int64_t>(sizeof(PackedBlock));  // f32 = 4 bytes
  const int64_t max_nbc = capacity < kChunkBlocks ? capacity : kChunkBlocks;  // >= 1 (scratch >= 4 KiB)
  const int64_t n_tblocks = (a.n_tokens + kPackTokens - 1) / kPackTokens;  // nearly equal token blocks
  int32_t xcorr[kPackTokens * kChunkBlocks];  // (kPackTokens, kChunkBlocks)
  for (int64_t o0 = a.row_begin; o0 < a.row_end; o0 += kPackCols) {
    const int64_t n_rows = a.row_end - o0 < kPackCols ? a.row_end - o0 : kPackCols;
    for (int64_t b0 = 0; b0 < nb; b0 += max_nbc) {
      const int64_t nbc = nb - b0 < max_nbc ? nb - b0 : max_nbc;
      pack_panel(w + o0 * nb, nb, n_rows, b0, nbc, pb);
      for (int64_t tb = 0; tb < n_tblocks; ++tb) {
        const int64_t t0 = a.n_tokens * tb / n_tblocks;
        const int nt = static_cast<int>(a.n_tokens * (tb + 1) / n_tblocks - t0);
        const int8_t* xq = a.xq + t0 * a.n_in + b0 * kQ8_0Block;
        const __m256i bias = _mm256_set1_epi8(static_cast<char>(0x80));
        for (int t = 0; t < nt; ++t)
          for (int64_t b = 0; b < nbc; ++b) {  // sum(qx) = sum(qx + 128) - 32 * 128
            const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + t * a.n_in + b * kQ8_0Block));
            const __m256i s = _mm256_sad_epu8(_mm256_xor_si256(q, bias), _mm256_setzero_si256());  // 4 partial sums
            const __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
            const int32_t sum_biased = _mm_cvtsi128_si32(_mm_add_epi64(s2, _mm_unpackhi_epi64(s2, s2)));
            xcorr[t * kChunkBlocks + b] = -128 * (sum_biased - 32 * 128);
          }
        const float* xd = a.xd + t0 * nb + b0;
        float* y = a.y + t0 * a.n_out + o0;
        const bool acc = b0 > 0;
        static_assert(kPackTokens == 6);
        switch (nt) {
          case 1: packed_tile<1>(pb, nbc, xq, a.n_in, xcorr, xd, nb, y, a.n_out, n_rows, acc); break;
          case 2: packed_tile<2>(pb, nbc, xq, a.n_in, xcorr, xd, nb, y, a.n_out, n_rows, acc); break;
          case 3: packed_tile<3>(pb, nbc, xq, a.n_in, xcorr, xd, nb, y, a.n_out, n_rows, acc); break;
          case 4: packed_tile<4>(pb, nbc, xq, a.n_in, xcorr, xd, nb, y, a.n_out, n_rows, acc); break;
          case 5: packed_tile<5>(pb, nbc, xq, a.n_in, xcorr, xd, nb, y, a.n_out, n_rows, acc); break;
          default: packed_tile<6>(pb, nbc, xq, a.n_in, xcorr, xd, nb, y, a.n_out, n_rows, acc); break;
        }
      }
    }
  }
}

}  // namespace

void matmul_q8_0_avx512vnni(const MatmulArgs& a) {
  static_assert(kStreamTokens == 4);
  switch (a.n_tokens) {
    case 1: return stream_rows<1>(a);
    case 2: return stream_rows<2>(a);
    case 3: return stream_rows<3>(a);
    case 4: return stream_rows<4>(a);
    default: return packed_times_tokens(a);
  }
}

}  // namespace contrail::kernels
