// ops::softmax_rows: validation (ops/check.h), then the row kernel of the active ISA
// (single-threaded: the contract has no pool; attention runs its own softmax inside the
// per-(token, head) kernel).
#include "contrail/ops/softmax.h"

#include "contrail/core/cpu_features.h"
#include "contrail/kernels/elementwise.h"
#include "ops/check.h"

namespace contrail::ops {

void softmax_rows(Tensor& x) {
  detail::check_f32_cpu("softmax_rows", "x", x, detail::kAtLeast1Dim);
  if (x.numel() == 0) return;

  const kernels::ElementwiseKernels& k = kernels::elementwise_kernels(active_isa());
  const int64_t n = x.cols();
  float* xp = x.data_as<float>();  // (n_rows, n)
  for (int64_t r = 0; r < x.rows(); ++r) k.softmax_row(xp + r * n, n);
}

}  // namespace contrail::ops
