// Elementwise activations and arithmetic on f32 tensors of equal shape.
#pragma once
#include "contrail/core/tensor.h"
#include "contrail/core/thread_pool.h"

namespace contrail::ops {

// out = silu(gate) * up, silu(x) = x / (1 + exp(-x)). out may alias gate or up.
void swiglu(const Tensor& gate, const Tensor& up, Tensor& out, ThreadPool& pool);

// y += x (residual connection).
void add_inplace(Tensor& y, const Tensor& x, ThreadPool& pool);

}  // namespace contrail::ops
