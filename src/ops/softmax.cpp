// ops::softmax_rows: validation, then the row kernel of the active ISA (single-threaded: the
// contract has no pool; attention runs its own softmax inside the per-(token, head) kernel).
#include "contrail/ops/softmax.h"

#include <fmt/format.h>

#include "contrail/core/cpu_features.h"
#include "contrail/core/error.h"
#include "contrail/kernels/elementwise.h"

namespace contrail::ops {

void softmax_rows(Tensor& x) {
  if (x.device() != Device::CPU)
    throw InvalidArgument(fmt::format("softmax_rows: x is a {} tensor; only CPU tensors are supported",
                                      x.device() == Device::CUDA ? "CUDA" : "non-CPU"));
  if (x.dtype() != DType::F32)
    throw InvalidArgument(fmt::format("softmax_rows: x has dtype {}, expected f32", dtype_name(x.dtype())));
  if (x.ndim() == 0) throw InvalidArgument("softmax_rows: x is an empty 0-d tensor");
  if (x.numel() == 0) return;
  if (x.data() == nullptr) throw InvalidArgument(fmt::format("softmax_rows: x {} has no data", x.shape_str()));

  const kernels::ElementwiseKernels& k = kernels::elementwise_kernels(active_isa());
  const int64_t n = x.cols();
  float* xp = x.data_as<float>();  // (n_rows, n)
  for (int64_t r = 0; r < x.rows(); ++r) k.softmax_row(xp + r * n, n);
}

}  // namespace contrail::ops
