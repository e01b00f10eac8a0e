// The attention kernel written once for any vector traits S (kernels/simd_avx2.h,
// kernels/simd_avx512.h); attention_avx2.cpp and attention_avx512.cpp instantiate it. Formulas:
// contrail/kernels/attention.h.
//
// Scores are computed four keys at a time (four FMA chains over head_dim, one transposing
// reduction); the weighted sum of V keeps 4 vectors of output floats in registers while streaming
// the value rows; head_dim tails use masked loads. ODR: everything lives in the anonymous
// namespace; include the traits header first.
#pragma once
#include <math.h>  // ::tanhf, the plain C function (no inline C++ overloads are used here)

#include <cstdint>

#include "contrail/kernels/attention.h"
#include "kernels/elementwise_simd.h"
#include "kernels/isa_kernels.h"

namespace contrail::kernels {
namespace {

// scores[j] = scale * dot(q, k_j) for j in [0, n_keys).
template <class S>
void scores_qk(const float* q, const float* k, int64_t kv_stride, int64_t head_dim, int64_t n_keys, float scale,
               float* scores) {
  using V = typename S::V;
  const int64_t n_full = head_dim / S::kW * S::kW;  // dims covered by whole vectors
  const bool has_tail = n_full < head_dim;
  const typename S::M m = S::tail(head_dim - n_full);
  int64_t j = 0;
  for (; j + 4 <= n_keys; j += 4) {
    const float* kr[4];  // four key rows, (head_dim) each
    for (int r = 0; r < 4; ++r) kr[r] = k + (j + r) * kv_stride;
    V a[4] = {S::zero(), S::zero(), S::zero(), S::zero()};
    for (int64_t d = 0; d < n_full; d += S::kW) {
      const V qv = S::load(q + d);
      for (int r = 0; r < 4; ++r) a[r] = S::fmadd(qv, S::load(kr[r] + d), a[r]);
    }
    if (has_tail) {
      const V qv = S::load_tail(q + n_full, m);
      for (int r = 0; r < 4; ++r) a[r] = S::fmadd(qv, S::load_tail(kr[r] + n_full, m), a[r]);
    }
    _mm_storeu_ps(scores + j, _mm_mul_ps(S::hsum4(a[0], a[1], a[2], a[3]), _mm_set1_ps(scale)));
  }
  for (; j < n_keys; ++j) {
    const float* kj = k + j * kv_stride;  // (head_dim)
    V a = S::zero();
    for (int64_t d = 0; d < n_full; d += S::kW) a = S::fmadd(S::load(q + d), S::load(kj + d), a);
    if (has_tail) a = S::fmadd(S::load_tail(q + n_full, m), S::load_tail(kj + n_full, m), a);
    scores[j] = S::hsum(a) * scale;
  }
}

// out[d, d + kV * kW) = sum_i p[i] * v_i over the keys of all runs in order; when kMasked, only
// the lanes of `m` of the last vector are read and written.
template <class S, int kV, bool kMasked>
void weighted_sum_cols(const float* p, const float* v, int64_t kv_stride, const KvRun* runs, int64_t n_runs,
                       int64_t d, typename S::M m, float* out) {
  using V = typename S::V;
  V a[kV];
  for (V& x : a) x = S::zero();
  for (int64_t r = 0, i = 0; r < n_runs; ++r)
    for (int64_t j = 0; j < runs[r].n; ++j, ++i) {
      const float* vj = v + runs[r].offset + j * kv_stride + d;
      const V pj = S::broadcast(p + i);
      for (int c = 0; c < kV; ++c)
        a[c] = S::fmadd(pj, kMasked && c == kV - 1 ? S::load_tail(vj + c * S::kW, m) : S::load(vj + c * S::kW), a[c]);
    }
  for (int c = 0; c < kV; ++c) {
    if (kMasked && c == kV - 1)
      S::store_tail(out + d + c * S::kW, m, a[c]);
    else
      S::store(out + d + c * S::kW, a[c]);
  }
}

// out = sum_i p[i] * v_i over the keys of all runs in order, out: (head_dim).
template <class S>
void weighted_sum(const float* p, const float* v, int64_t kv_stride, int64_t head_dim, const KvRun* runs,
                  int64_t n_runs, float* out) {
  int64_t d = 0;
  for (; d + 4 * S::kW <= head_dim; d += 4 * S::kW)
    weighted_sum_cols<S, 4, false>(p, v, kv_stride, runs, n_runs, d, S::tail(0), out);
  for (; d + S::kW <= head_dim; d += S::kW) weighted_sum_cols<S, 1, false>(p, v, kv_stride, runs, n_runs, d, S::tail(0), out);
  if (d < head_dim) weighted_sum_cols<S, 1, true>(p, v, kv_stride, runs, n_runs, d, S::tail(head_dim - d), out);
}

template <class S>
void attend_runs(const float* q, const float* k, const float* v, int64_t kv_stride, int64_t head_dim,
                 const KvRun* runs, int64_t n_runs, float scale, float softcap, float* scores, float* out) {
  int64_t n_keys = 0;
  for (int64_t r = 0; r < n_runs; ++r) {
    scores_qk<S>(q, k + runs[r].offset, kv_stride, head_dim, runs[r].n, scale, scores + n_keys);
    n_keys += runs[r].n;
  }
  if (softcap > 0.0f) {
    const float inv_cap = 1.0f / softcap;
    for (int64_t j = 0; j < n_keys; ++j) scores[j] = softcap * ::tanhf(scores[j] * inv_cap);
  }
  softmax_row<S>(scores, n_keys);
  weighted_sum<S>(scores, v, kv_stride, head_dim, runs, n_runs, out);
}

template <class S>
void attend_row(const float* q, const float* k, const float* v, int64_t kv_stride, int64_t head_dim, int64_t n_keys,
                float scale, float softcap, float* scores, float* out) {
  const KvRun run{0, n_keys};
  attend_runs<S>(q, k, v, kv_stride, head_dim, &run, 1, scale, softcap, scores, out);
}

template <class S>
constexpr AttentionKernels attention_table() {
  return {attend_row<S>, attend_runs<S>};
}

}  // namespace
}  // namespace contrail::kernels
