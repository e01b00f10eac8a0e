// Normalisations, row-wise over the innermost dim.
#pragma once
#include "contrail/core/tensor.h"
#include "contrail/core/thread_pool.h"

namespace contrail::ops {

// y[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * w
//   x, y: (n_rows, n) f32 (y may alias x); w: (n) f32
void rmsnorm(const Tensor& x, const Tensor& w, float eps, Tensor& y, ThreadPool& pool);

// y[r, :] = (x[r, :] - mean) / sqrt(var + eps) * w + b, var = mean((x - mean)^2) (GPT-2's LayerNorm,
// ggml_norm followed by mul and add).
//   x, y: (n_rows, n) f32 (y may alias x); w, b: (n) f32
void layernorm(const Tensor& x, const Tensor& w, const Tensor& b, float eps, Tensor& y, ThreadPool& pool);

}  // namespace contrail::ops
