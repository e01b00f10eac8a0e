// Scalar reference attention kernel (the oracle for the SIMD variants) and the per-ISA dispatch.
// Formulas: contrail/kernels/attention.h.
#include <cmath>

#include "contrail/kernels/attention.h"
#include "kernels/isa_kernels.h"

namespace contrail::kernels {

void attend_runs_scalar(const float* q, const float* k, const float* v, int64_t kv_stride, int64_t head_dim,
                        const KvRun* runs, int64_t n_runs, float scale, float softcap, float* scores, float* out) {
  int64_t n_keys = 0;
  for (int64_t r = 0; r < n_runs; ++r)
    for (int64_t j = 0; j < runs[r].n; ++j) {
      const float* kj = k + runs[r].offset + j * kv_stride;  // (head_dim)
      float dot = 0.0f;
      for (int64_t d = 0; d < head_dim; ++d) dot += q[d] * kj[d];
      scores[n_keys++] = dot * scale;
    }
  if (softcap > 0.0f) {
    const float inv_cap = 1.0f / softcap;
    for (int64_t j = 0; j < n_keys; ++j) scores[j] = softcap * std::tanh(scores[j] * inv_cap);
  }
  softmax_row_scalar(scores, n_keys);
  for (int64_t d = 0; d < head_dim; ++d) out[d] = 0.0f;
  for (int64_t r = 0, i = 0; r < n_runs; ++r)
    for (int64_t j = 0; j < runs[r].n; ++j, ++i) {
      const float* vj = v + runs[r].offset + j * kv_stride;  // (head_dim)
      const float p = scores[i];
      for (int64_t d = 0; d < head_dim; ++d) out[d] += p * vj[d];
    }
}

void attend_row_scalar(const float* q, const float* k, const float* v, int64_t kv_stride, int64_t head_dim,
                       int64_t n_keys, float scale, float softcap, float* scores, float* out) {
  const KvRun run{0, n_keys};
  attend_runs_scalar(q, k, v, kv_stride, head_dim, &run, 1, scale, softcap, scores, out);
}

namespace {

constexpr AttentionKernels kScalar{attend_row_scalar, attend_runs_scalar};

const AttentionKernels& attention_kernels(Isa isa) {
  require_isa("attention kernels", isa);
  switch (isa) {
    case Isa::Avx512: return kAttentionAvx512;
    case Isa::Avx2: return kAttentionAvx2;
    case Isa::Scalar: break;
  }
  return kScalar;
}

}  // namespace

AttendRowFn attend_row_kernel(Isa isa) { return attention_kernels(isa).row; }
AttendRunsFn attend_runs_kernel(Isa isa) { return attention_kernels(isa).runs; }

}  // namespace contrail::kernels
