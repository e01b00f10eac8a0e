// Normalisations, row-wise over the innermost dim.
#pragma once
#include "contrail/core/tensor.h"
#include "contrail/core/thread_pool.h"

namespace contrail::ops {

// y[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * w
//   x, y: (n_rows, n) f32 (y may alias x); w: (n) f32
void rmsnorm(const Tensor& x, const Tensor& w, float eps, Tensor& y, ThreadPool& pool);

}  // namespace contrail::ops
