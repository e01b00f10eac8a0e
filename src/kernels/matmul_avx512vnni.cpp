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
// ODR: everything but the entry point lives in the anonymous namespace; no std function templates
// and no contrail inline functions are used here.
#include "kernels/simd_avx512.h"
// (the traits first: the generic kernels are written against them)
#include "contrail/core/dtype.h"
#include "kernels/isa_kernels.h"
#include "kernels/matmul_avx512_shared.h"
#include "kernels/matmul_simd.h"

namespace contrail::kernels {
namespace {

constexpr int kStreamTokens = 4;  // up to this many tokens stream weight rows; more use packed panels


// The q8_0 block step of the streamed rows (QTile in kernels/matmul_simd.h, one row): two blocks per
// vector, the weights biased (qw + 128).
struct RowStep {
  static constexpr int kStep = 2;
  static constexpr int sets(int n) { return n >= 4 ? 1 : n >= 2 ? 2 : 4; }
  const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80));

  template <int NR, int NT>
  void step(const BlockQ8_0* const (&w)[NR], int64_t b, bool two, const int8_t* xq, const float* xd, int64_t n_in,
            __m512 (&acc)[NR][NT]) const {
    static_assert(NR == 1);
    const int64_t nb = n_in / kQ8_0Block;
    const __m512i wu = _mm512_xor_si512(load_w_pair(w[0] + b, two), bias);  // qw + 128 as unsigned bytes
    const __m512 wd = load_w_scales(w[0] + b, two);
    for (int t = 0; t < NT; ++t) {
      const __m512i xv = load_x_pair(xq + t * n_in + b * kQ8_0Block, two);
      const __m512 xs = load_x_scales(xd + t * nb + b, two);
      // -128 * sum(qx) + sum((qw + 128) * qx) = sum(qw * qx), exact in int32.
      const __m512i x128 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), bias, xv);  // 128 * sum(qx)
      const __m512i start = _mm512_sub_epi32(_mm512_setzero_si512(), x128);
      const __m512i sumi = _mm512_dpbusd_epi32(start, wu, xv);
      acc[0][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_mul_ps(wd, xs), acc[0][t]);
    }
  }
};
using RowTile = QTile<Avx512, RowStep, 1, kStreamTokens>;  // one row x up to kStreamTokens tokens

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
  for (int t = 0; t < NT; ++t) {
    __m512 sum[kV];
    for (int v = 0; v < kV; ++v) sum[v] = _mm512_load_ps(acc[t] + 16 * v);
    store_tile_row(y + t * n_out, sum, n_cols, accumulate);
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
        with_count<kPackTokens>(nt, [&]<int NT>() {
          packed_tile<NT>(pb, nbc, xq, a.n_in, xcorr, xd, nb, y, a.n_out, n_rows, acc);
        });
      }
    }
  }
}

}  // namespace

void matmul_q8_0_avx512vnni(const MatmulArgs& a) {
  if (a.n_tokens <= kStreamTokens)
    with_count<kStreamTokens>(a.n_tokens, [&]<int NT>() { q_stream_rows<RowTile, NT>(a); });
  else
    packed_times_tokens(a);
}

}  // namespace contrail::kernels
