// AVX-512 (F/BW/VL/DQ) attention kernel (called only when active_isa() == Avx512). Formulas:
// contrail/kernels/attention.h. Same structure as the AVX2 kernel with 16-float vectors: scores
// four keys at a time, weighted sum with up to 64 output floats in registers; head_dim tails use
// masked loads. ODR: helpers live in the anonymous namespace; no std templates.
#include "kernels/immintrin_avx512.h"
#include <math.h>  // ::tanhf, the plain C function (no inline C++ overloads are used here)

#include "contrail/kernels/attention.h"
#include "contrail/kernels/elementwise.h"

namespace contrail::kernels {
namespace {

constexpr int64_t kW = 16;  // floats per vector

// Mask of the first `rem` (0..16) lanes.
__mmask16 tail_mask(int64_t rem) { return static_cast<__mmask16>((1u << rem) - 1u); }

// Lane-wise sum of the two 256-bit halves.
__m256 fold(__m512 v) { return _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)); }

// [sum(a), sum(b), sum(c), sum(d)]
__m128 hsum4(__m512 a, __m512 b, __m512 c, __m512 d) {
  const __m256 abcd = _mm256_hadd_ps(_mm256_hadd_ps(fold(a), fold(b)), _mm256_hadd_ps(fold(c), fold(d)));
  return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

// scores[j] = scale * dot(q, k_j) for j in [0, n_keys).
void scores_qk(const float* q, const float* k, int64_t kv_stride, int64_t head_dim, int64_t n_keys, float scale,
               float* scores) {
  const int64_t n_full = head_dim / kW * kW;  // dims covered by whole vectors
  const bool has_tail = n_full < head_dim;
  const __mmask16 m = tail_mask(head_dim - n_full);
  int64_t j = 0;
  for (; j + 4 <= n_keys; j += 4) {
    const float* k0 = k + j * kv_stride;  // four key rows, (head_dim) each
    const float* k1 = k0 + kv_stride;
    const float* k2 = k1 + kv_stride;
    const float* k3 = k2 + kv_stride;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    for (int64_t d = 0; d < n_full; d += kW) {
      const __m512 qv = _mm512_loadu_ps(q + d);
      a0 = _mm512_fmadd_ps(qv, _mm512_loadu_ps(k0 + d), a0);
      a1 = _mm512_fmadd_ps(qv, _mm512_loadu_ps(k1 + d), a1);
      a2 = _mm512_fmadd_ps(qv, _mm512_loadu_ps(k2 + d), a2);
      a3 = _mm512_fmadd_ps(qv, _mm512_loadu_ps(k3 + d), a3);
    }
    if (has_tail) {
      const __m512 qv = _mm512_maskz_loadu_ps(m, q + n_full);
      a0 = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(m, k0 + n_full), a0);
      a1 = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(m, k1 + n_full), a1);
      a2 = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(m, k2 + n_full), a2);
      a3 = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(m, k3 + n_full), a3);
    }
    _mm_storeu_ps(scores + j, _mm_mul_ps(hsum4(a0, a1, a2, a3), _mm_set1_ps(scale)));
  }
  for (; j < n_keys; ++j) {
    const float* kj = k + j * kv_stride;  // (head_dim)
    __m512 a = _mm512_setzero_ps();
    for (int64_t d = 0; d < n_full; d += kW) a = _mm512_fmadd_ps(_mm512_loadu_ps(q + d), _mm512_loadu_ps(kj + d), a);
    if (has_tail) a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + n_full), _mm512_maskz_loadu_ps(m, kj + n_full), a);
    scores[j] = _mm512_reduce_add_ps(a) * scale;
  }
}

// out = sum_i p[i] * v_i over the keys of all runs in order, out: (head_dim).
void weighted_sum(const float* p, const float* v, int64_t kv_stride, int64_t head_dim, const KvRun* runs,
                  int64_t n_runs, float* out) {
  int64_t d = 0;
  for (; d + 4 * kW <= head_dim; d += 4 * kW) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    for (int64_t r = 0, i = 0; r < n_runs; ++r)
      for (int64_t j = 0; j < runs[r].n; ++j, ++i) {
      const float* vj = v + runs[r].offset + j * kv_stride + d;
      const __m512 pj = _mm512_set1_ps(p[i]);
      a0 = _mm512_fmadd_ps(pj, _mm512_loadu_ps(vj), a0);
      a1 = _mm512_fmadd_ps(pj, _mm512_loadu_ps(vj + kW), a1);
      a2 = _mm512_fmadd_ps(pj, _mm512_loadu_ps(vj + 2 * kW), a2);
      a3 = _mm512_fmadd_ps(pj, _mm512_loadu_ps(vj + 3 * kW), a3);
    }
    _mm512_storeu_ps(out + d, a0);
    _mm512_storeu_ps(out + d + kW, a1);
    _mm512_storeu_ps(out + d + 2 * kW, a2);
    _mm512_storeu_ps(out + d + 3 * kW, a3);
  }
  for (; d < head_dim; d += kW) {
    const __mmask16 m = tail_mask(head_dim - d < kW ? head_dim - d : kW);
    __m512 a = _mm512_setzero_ps();
    for (int64_t r = 0, i = 0; r < n_runs; ++r)
      for (int64_t j = 0; j < runs[r].n; ++j, ++i)
      a = _mm512_fmadd_ps(_mm512_set1_ps(p[i]), _mm512_maskz_loadu_ps(m, v + runs[r].offset + j * kv_stride + d), a);
    _mm512_mask_storeu_ps(out + d, m, a);
  }
}

}  // namespace

void attend_runs_avx512(const float* q, const float* k, const float* v, int64_t kv_stride, int64_t head_dim,
                      const KvRun* runs, int64_t n_runs, float scale, float softcap, float* scores, float* out) {
  int64_t n_keys = 0;
  for (int64_t r = 0; r < n_runs; ++r) {
    scores_qk(q, k + runs[r].offset, kv_stride, head_dim, runs[r].n, scale, scores + n_keys);
    n_keys += runs[r].n;
  }
  if (softcap > 0.0f) {
    const float inv_cap = 1.0f / softcap;
    for (int64_t j = 0; j < n_keys; ++j) scores[j] = softcap * ::tanhf(scores[j] * inv_cap);
  }
  softmax_row_avx512(scores, n_keys);
  weighted_sum(scores, v, kv_stride, head_dim, runs, n_runs, out);
}

void attend_row_avx512(const float* q, const float* k, const float* v, int64_t kv_stride, int64_t head_dim,
                     int64_t n_keys, float scale, float softcap, float* scores, float* out) {
  const KvRun run{0, n_keys};
  attend_runs_avx512(q, k, v, kv_stride, head_dim, &run, 1, scale, softcap, scores, out);
}

}  // namespace contrail::kernels
