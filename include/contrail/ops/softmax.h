// Numerically stable softmax over the innermost dim, in place (max subtracted first).
#pragma once
#include "contrail/core/tensor.h"

namespace contrail::ops {

// x: (n_rows, n) f32. Rows of all -inf become all 0.
void softmax_rows(Tensor& x);

}  // namespace contrail::ops
