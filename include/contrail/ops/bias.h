// Bias addition for linear layers: y = x W^T + b, where matmul() has produced x W^T.
#pragma once
#include "contrail/core/tensor.h"
#include "contrail/core/thread_pool.h"

namespace contrail::ops {

// y[i, j] += b[j] for every row i. y: (n, d) f32, contiguous; b: (d) f32. Throws
// InvalidArgument naming the operand on a dtype, device, rank or width mismatch, or when b
// overlaps y.
void add_bias_rows(Tensor& y, const Tensor& b, ThreadPool& pool);

}  // namespace contrail::ops
