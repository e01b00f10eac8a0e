// Per-ISA attention kernel: one query row of one head against runs of consecutive KV rows (one run
// for a contiguous KV cache; one per block for the paged cache of the serving engine).
//
// attend_row computes, for the keys j in [0, n_keys):
//   s_j = scale * dot(q, k_j)                        (f32)
//   s_j = softcap * tanhf(s_j * (1 / softcap))       (only when softcap > 0; as ggml: scale, tanh, scale)
//   p   = softmax(s)                                 (the elementwise softmax_row of the same ISA)
//   out = sum_j p_j * v_j
// which is llama.cpp's non-flash attention for the rows the mask admits. The caller (ops::attention)
// chooses the admitted run (causal limit and sliding window) and the KV head (GQA).
//
// Layout: q: (head_dim); k, v: n_keys rows of head_dim floats, row j at k + j * kv_stride (the KV
// cache rows of one kv head); scores: scratch of n_keys floats (overwritten); out: (head_dim), must
// not overlap q, k, v or scores. n_keys >= 1, head_dim >= 1.
// The SIMD variants agree with the scalar reference to f32 rounding (different summation order and
// the polynomial exp of softmax_row).
#pragma once
#include <cstdint>

#include "contrail/core/cpu_features.h"

namespace contrail::kernels {

using AttendRowFn = void (*)(const float* q, const float* k, const float* v, int64_t kv_stride, int64_t head_dim,
                             int64_t n_keys, float scale, float softcap, float* scores, float* out);

// n consecutive KV rows starting `offset` floats after the k and v base pointers (row j of the run
// at base + offset + j * kv_stride).
struct KvRun {
  int64_t offset;
  int64_t n;
};

// attend_runs: the keys are the rows of runs[0], then runs[1], ... (n_keys = the sum of their n,
// >= 1; scores holds n_keys floats); otherwise exactly attend_row. attend_row(..., n_keys, ...)
// is attend_runs with the one run {0, n_keys}.
using AttendRunsFn = void (*)(const float* q, const float* k, const float* v, int64_t kv_stride, int64_t head_dim,
                              const KvRun* runs, int64_t n_runs, float scale, float softcap, float* scores,
                              float* out);

// The entries for `isa`. Throw InvalidArgument if !isa_supported(isa).
AttendRowFn attend_row_kernel(Isa isa);
AttendRunsFn attend_runs_kernel(Isa isa);

}  // namespace contrail::kernels
