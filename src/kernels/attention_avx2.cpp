// AVX2 + FMA attention kernel (called only when active_isa() >= Avx2). Formulas: contrail/kernels/attention.h.
// Scores are computed four keys at a time (four FMA chains over head_dim, one transposing
// reduction); the weighted sum of V keeps up to 32 output floats in registers while streaming
// the value rows. ODR: helpers live in the anonymous namespace; no std templates.
#include <immintrin.h>
#include <math.h>  // ::tanhf, the plain C function (no inline C++ overloads are used here)

#include "contrail/kernels/attention.h"
#include "contrail/kernels/elementwise.h"

namespace contrail::kernels {
namespace {

constexpr int64_t kW = 8;  // floats per vector

// Lane mask selecting the first `rem` (0..8) lanes.
__m256i tail_mask(int64_t rem) {
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(rem)), lanes);
}

// [sum(a), sum(b), sum(c), sum(d)]
__m128 hsum4(__m256 a, __m256 b, __m256 c, __m256 d) {
  const __m256 abcd = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
  return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// scores[j] = scale * dot(q, k_j) for j in [0, n_keys).
void scores_qk(const float* q, const float* k, int64_t kv_stride, int64_t head_dim, int64_t n_keys, float scale,
               float* scores) {
  const int64_t n_full = head_dim / kW * kW;  // dims covered by whole vectors
  const bool has_tail = n_full < head_dim;
  const __m256i m = tail_mask(head_dim - n_full);
  int64_t j = 0;
  for (; j + 4 <= n_keys; j += 4) {
    const float* k0 = k + j * kv_stride;  // four key rows, (head_dim) each
    const float* k1 = k0 + kv_stride;
    const float* k2 = k1 + kv_stride;
    const float* k3 = k2 + kv_stride;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    for (int64_t d = 0; d < n_full; d += kW) {
      const __m256 qv = _mm256_loadu_ps(q + d);
      a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + d), a0);
      a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k1 + d), a1);
      a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k2 + d), a2);
      a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k3 + d), a3);
    }
    if (has_tail) {
      const __m256 qv = _mm256_maskload_ps(q + n_full, m);
      a0 = _mm256_fmadd_ps(qv, _mm256_maskload_ps(k0 + n_full, m), a0);
      a1 = _mm256_fmadd_ps(qv, _mm256_maskload_ps(k1 + n_full, m), a1);
      a2 = _mm256_fmadd_ps(qv, _mm256_maskload_ps(k2 + n_full, m), a2);
      a3 = _mm256_fmadd_ps(qv, _mm256_maskload_ps(k3 + n_full, m), a3);
    }
    _mm_storeu_ps(scores + j, _mm_mul_ps(hsum4(a0, a1, a2, a3), _mm_set1_ps(scale)));
  }
  for (; j < n_keys; ++j) {
    const float* kj = k + j * kv_stride;  // (head_dim)
    __m256 a = _mm256_setzero_ps();
    for (int64_t d = 0; d < n_full; d += kW) a = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), _mm256_loadu_ps(kj + d), a);
    if (has_tail) a = _mm256_fmadd_ps(_mm256_maskload_ps(q + n_full, m), _mm256_maskload_ps(kj + n_full, m), a);
    scores[j] = hsum(a) * scale;
  }
}

// out = sum_i p[i] * v_i over the keys of all runs in order, out: (head_dim).
void weighted_sum(const float* p, const float* v, int64_t kv_stride, int64_t head_dim, const KvRun* runs,
                  int64_t n_runs, float* out) {
  int64_t d = 0;
  for (; d + 4 * kW <= head_dim; d += 4 * kW) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    for (int64_t r = 0, i = 0; r < n_runs; ++r)
      for (int64_t j = 0; j < runs[r].n; ++j, ++i) {
      const float* vj = v + runs[r].offset + j * kv_stride + d;
      const __m256 pj = _mm256_broadcast_ss(p + i);
      a0 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj), a0);
      a1 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj + kW), a1);
      a2 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj + 2 * kW), a2);
      a3 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj + 3 * kW), a3);
    }
    _mm256_storeu_ps(out + d, a0);
    _mm256_storeu_ps(out + d + kW, a1);
    _mm256_storeu_ps(out + d + 2 * kW, a2);
    _mm256_storeu_ps(out + d + 3 * kW, a3);
  }
  for (; d + kW <= head_dim; d += kW) {
    __m256 a = _mm256_setzero_ps();
    for (int64_t r = 0, i = 0; r < n_runs; ++r)
      for (int64_t j = 0; j < runs[r].n; ++j, ++i)
      a = _mm256_fmadd_ps(_mm256_broadcast_ss(p + i), _mm256_loadu_ps(v + runs[r].offset + j * kv_stride + d), a);
    _mm256_storeu_ps(out + d, a);
  }
  if (d < head_dim) {
    const __m256i m = tail_mask(head_dim - d);
    __m256 a = _mm256_setzero_ps();
    for (int64_t r = 0, i = 0; r < n_runs; ++r)
      for (int64_t j = 0; j < runs[r].n; ++j, ++i)
      a = _mm256_fmadd_ps(_mm256_broadcast_ss(p + i), _mm256_maskload_ps(v + runs[r].offset + j * kv_stride + d, m), a);
    _mm256_maskstore_ps(out + d, m, a);
  }
}

}  // namespace

void attend_runs_avx2(const float* q, const float* k, const float* v, int64_t kv_stride, int64_t head_dim,
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
  softmax_row_avx2(scores, n_keys);
  weighted_sum(scores, v, kv_stride, head_dim, runs, n_runs, out);
}

void attend_row_avx2(const float* q, const float* k, const float* v, int64_t kv_stride, int64_t head_dim,
                     int64_t n_keys, float scale, float softcap, float* scores, float* out) {
  const KvRun run{0, n_keys};
  attend_runs_avx2(q, k, v, kv_stride, head_dim, &run, 1, scale, softcap, scores, out);
}

}  // namespace contrail::kernels
