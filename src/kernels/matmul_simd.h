// The parts of the matmul kernels that every SIMD ISA shares, written once for vector traits S
// (kernels/simd_avx2.h, kernels/simd_avx512.h): the few-token regime of f32 / f16 / bf16 weights
// (weight rows streamed once for all tokens), the q8_0 row and panel loops around an ISA's q8_0
// register tile, the loop over blocks with alternating accumulator sets, and the reduction of those
// sets. matmul_avx2.cpp, matmul_avx512.cpp and matmul_avx512vnni.cpp build their kernels from them.
// Numerics: contrail/kernels/matmul.h.
//
// ODR: everything lives in the anonymous namespace; include the traits header first.
#pragma once
#include <cstddef>
#include <cstdint>
#include <utility>

#include "contrail/core/dtype.h"
#include "contrail/kernels/matmul.h"

namespace contrail::kernels {
namespace {

// f.template operator()<N>() for N = n clamped to [1, kMax]: the run-time count of a tile (tokens,
// rows) turned into the compile-time size of its register tile.
template <int kMax, class F>
void with_count(int64_t n, F&& f) {
  const int c = static_cast<int>(n < 1 ? 1 : n > kMax ? kMax : n);
  [&]<int... I>(std::integer_sequence<int, I...>) {
    ((c == I + 1 ? (f.template operator()<I + 1>(), true) : false) || ...);
  }(std::make_integer_sequence<int, kMax>{});
}

// Every vector of a (nested) array of accumulators set to zero.
template <class V>
void zero_all(V& v, V zero) {
  v = zero;
}
template <class T, size_t N, class V>
void zero_all(T (&a)[N], V zero) {
  for (T& e : a) zero_all(e, zero);
}

// sums[r][t] = hsum(acc[0][r][t] + ... + acc[kSets - 1][r][t]) for r < R, t < NT (sums may have
// more rows and columns). Always inlined: GCC's identical-code folding would otherwise merge the
// instantiations for different sums shapes and warn about the merged one (-Warray-bounds).
template <class S, int kSets, int R, int NT, class Sums>
[[gnu::always_inline]] inline void sum_sets(const typename S::V (&acc)[kSets][R][NT], Sums& sums) {
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < NT; ++t) {
      typename S::V v = acc[0][r][t];
      for (int s = 1; s < kSets; ++s) v = S::add(v, acc[s][r][t]);
      sums[r][t] = S::hsum(v);
    }
}

// step(b, full, set) over the nb blocks in steps of kStep blocks (the last step may hold fewer:
// full == false), the first steps cycling through kSets accumulator sets so that enough
// independent FMA chains are in flight, the remaining ones on set 0.
template <int kSets, int kStep, class Step>
void for_block_steps(int64_t nb, Step&& step) {
  int64_t b = 0;
  for (; b + kStep * kSets <= nb; b += kStep * kSets)
    for (int set = 0; set < kSets; ++set) step(b + kStep * set, true, set);
  for (; b + kStep <= nb; b += kStep) step(b, true, 0);
  if (b < nb) step(b, false, 0);
}

// ---- f32 / f16 / bf16, few tokens --------------------------------------------------------------------

// Per-ISA choices: kTokens, the largest token count streamed (more go through the ISA's
// many-token path); kXL1Bytes, the token rows up to this size stay in L1 beside the stream.
template <int kTokensV, int64_t kXL1BytesV>
struct StreamConfig {
  static constexpr int kTokens = kTokensV;
  static constexpr int64_t kXL1Bytes = kXL1BytesV;
  static constexpr int kStreamRows = 4;  // weight rows per tile when x is not L1-resident
};

// sums[r][t] = sum_k w[r * n_in + k] * x[t * n_in + k] for r < R, t < NT: R consecutive weight rows
// read once for NT tokens, with kUnroll accumulator sets to keep enough FMA chains in flight.
// W::load(p, valid) reads S::kW weights as f32, only the first `valid` (the row's last partial
// vector) with the rest 0; the activations are loaded the same way.
template <class S, class W, class C, int R, int NT, int kUnroll>
void stream_tile(const typename W::T* w, const float* x, int64_t n_in, float (&sums)[C::kStreamRows][C::kTokens]) {
  using V = typename S::V;
  V acc[kUnroll][R][NT];
  zero_all(acc, S::zero());
  const auto step = [&](int u, int64_t k, int64_t valid) {
    V wv[R];
    for (int r = 0; r < R; ++r) wv[r] = W::load(w + r * n_in + k, valid);
    for (int t = 0; t < NT; ++t) {
      const V xv = valid == S::kW ? S::load(x + t * n_in + k) : S::load_tail(x + t * n_in + k, S::tail(valid));
      for (int r = 0; r < R; ++r) acc[u][r][t] = S::fmadd(wv[r], xv, acc[u][r][t]);
    }
  };
  int64_t k = 0;
  for (; k + S::kW * kUnroll <= n_in; k += S::kW * kUnroll)
    for (int u = 0; u < kUnroll; ++u) step(u, k + S::kW * u, S::kW);
  for (; k + S::kW <= n_in; k += S::kW) step(0, k, S::kW);
  if (k < n_in) step(0, k, n_in - k);
  sum_sets<S>(acc, sums);
}

// y[:, row_begin:row_end] for a.n_tokens == NT (<= C::kTokens). When the NT token rows fit in L1
// (always for one token), weight rows are streamed one at a time: one sequential stream reads DRAM
// fastest. Otherwise x would be re-read from L2 for every weight vector, so kStreamRows rows share
// each x load (measured 1.5-2x faster there on AVX-512). Within one call every row is summed the
// same way, whichever tile it falls in.
template <class S, class W, class C, int NT>
void stream_rows(const MatmulArgs& a) {
  const auto* w = static_cast<const typename W::T*>(a.w);  // (n_out, n_in)
  float sums[C::kStreamRows][C::kTokens];
  const auto store = [&](int64_t o, int rows) {
    for (int r = 0; r < rows; ++r)
      for (int t = 0; t < NT; ++t) a.y[t * a.n_out + o + r] = sums[r][t];
  };
  int64_t o = a.row_begin;
  if (NT == 1 || NT * a.n_in * static_cast<int64_t>(sizeof(float)) <= C::kXL1Bytes) {
    constexpr int kUnroll = NT == 1 ? 4 : NT == 2 ? 2 : 1;
    for (; o < a.row_end; ++o) {
      stream_tile<S, W, C, 1, NT, kUnroll>(w + o * a.n_in, a.x, a.n_in, sums);
      store(o, 1);
    }
    return;
  }
  for (; o + C::kStreamRows <= a.row_end; o += C::kStreamRows) {
    stream_tile<S, W, C, C::kStreamRows, NT, 1>(w + o * a.n_in, a.x, a.n_in, sums);
    store(o, C::kStreamRows);
  }
  for (; o < a.row_end; ++o) {
    stream_tile<S, W, C, 1, NT, 1>(w + o * a.n_in, a.x, a.n_in, sums);
    store(o, 1);
  }
}

// ---- q8_0: tiles, rows and panels around an ISA's block step ----------------------------------------

// The q8_0 register tile: sums[r][t] = sum over blocks of (dw * dx) * (qw . qx) for r < NR rows of
// weights and t < NT tokens, around the ISA's block step K:
//   K::kStep                    blocks per step (the last step may hold fewer)
//   K::sets(n)                  accumulator sets for a tile of n = NR * NT accumulators (enough
//                               independent FMA chains in flight)
//   k.step<NR, NT>(w, b, full, xq, xd, n_in, acc): acc[r][t] += the blocks [b, b + kStep) (only b
//                               when !full) of rows w[r] and tokens t
// with w: NR row pointers, (n_in / 32) blocks each; xq: (NT, n_in) int8; xd: (NT, n_in / 32).
template <class S, class K, int kRowsV, int kTokensV>
struct QTile {
  static constexpr int kRows = kRowsV;      // weight rows per panel register tile
  static constexpr int kTokens = kTokensV;  // tokens per register tile

  template <int NR, int NT>
  static void tile(const BlockQ8_0* const (&w)[NR], const int8_t* xq, const float* xd, int64_t n_in,
                   float (&sums)[kRows][kTokens]) {
    constexpr int kSets = K::sets(NR * NT);
    typename S::V acc[kSets][NR][NT];
    zero_all(acc, S::zero());
    const K k;
    for_block_steps<kSets, K::kStep>(n_in / kQ8_0Block, [&](int64_t b, bool full, int set) {
      k.template step<NR, NT>(w, b, full, xq, xd, n_in, acc[set]);
    });
    sum_sets<S>(acc, sums);
  }
};

// The rows and panels below take Q, a QTile.

// Few tokens (bandwidth bound): one weight row at a time, a single sequential stream.
template <class Q, int NT>
void q_stream_rows(const MatmulArgs& a) {
  const int64_t nb = a.n_in / kQ8_0Block;
  const auto* w = static_cast<const BlockQ8_0*>(a.w);  // (n_out, nb)
  for (int64_t o = a.row_begin; o < a.row_end; ++o) {
    const BlockQ8_0* const row[1] = {w + o * nb};
    float sums[Q::kRows][Q::kTokens];
    Q::template tile<1, NT>(row, a.xq, a.xd, a.n_in, sums);
    for (int t = 0; t < NT; ++t) a.y[t * a.n_out + o] = sums[0][t];
  }
}

// Many tokens (compute bound): panels of rows stay in L2 while all token blocks stream past them
// through Q::kRows x Q::kTokens register tiles.
template <class Q>
void q_panel_times_tokens(const MatmulArgs& a) {
  const int64_t nb = a.n_in / kQ8_0Block;
  const auto* w = static_cast<const BlockQ8_0*>(a.w);  // (n_out, nb)
  const int64_t panel_rows = matmul_panel_rows(nb * static_cast<int64_t>(sizeof(BlockQ8_0)));
  for (int64_t p0 = a.row_begin; p0 < a.row_end; p0 += panel_rows) {
    const int64_t p1 = a.row_end - p0 < panel_rows ? a.row_end : p0 + panel_rows;
    for (int64_t t0 = 0; t0 < a.n_tokens; t0 += Q::kTokens) {
      const int nt = static_cast<int>(a.n_tokens - t0 < Q::kTokens ? a.n_tokens - t0 : Q::kTokens);
      const int8_t* xq = a.xq + t0 * a.n_in;  // (nt, n_in)
      const float* xd = a.xd + t0 * nb;       // (nt, nb)
      for (int64_t r0 = p0; r0 < p1; r0 += Q::kRows) {
        const int nr = static_cast<int>(p1 - r0 < Q::kRows ? p1 - r0 : Q::kRows);
        const BlockQ8_0* wr[Q::kRows];  // a tile short of kRows rows repeats its last row
        for (int r = 0; r < Q::kRows; ++r) wr[r] = w + (r0 + (r < nr ? r : nr - 1)) * nb;
        float sums[Q::kRows][Q::kTokens];
        with_count<Q::kTokens>(nt, [&]<int NT>() { Q::template tile<Q::kRows, NT>(wr, xq, xd, a.n_in, sums); });
        for (int t = 0; t < nt; ++t)
          for (int r = 0; r < nr; ++r) a.y[(t0 + t) * a.n_out + r0 + r] = sums[r][t];
      }
    }
  }
}

// y = x W^T for q8_0 weights: streamed rows up to kStreamTokens tokens, panels beyond.
template <class Q, int kStreamTokens>
void matmul_q8_0(const MatmulArgs& a) {
  if (a.n_tokens <= kStreamTokens)
    with_count<kStreamTokens>(a.n_tokens, [&]<int NT>() { q_stream_rows<Q, NT>(a); });
  else
    q_panel_times_tokens<Q>(a);
}

}  // namespace
}  // namespace contrail::kernels
