// ops::rmsnorm: validation, then the row kernel of the active ISA over the thread pool.
#include "contrail/ops/norm.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "contrail/core/cpu_features.h"
#include "contrail/core/error.h"
#include "contrail/kernels/elementwise.h"

namespace contrail::ops {
namespace {

constexpr int64_t kGrainElems = 16384;  // elements per thread chunk below which splitting does not pay

void check_f32_cpu(const char* name, const Tensor& t) {
  if (t.device() != Device::CPU)
    throw InvalidArgument(fmt::format("rmsnorm: {} is a {} tensor; only CPU tensors are supported", name,
                                      t.device() == Device::CUDA ? "CUDA" : "non-CPU"));
  if (t.dtype() != DType::F32)
    throw InvalidArgument(fmt::format("rmsnorm: {} has dtype {}, expected f32", name, dtype_name(t.dtype())));
  if (t.ndim() == 0) throw InvalidArgument(fmt::format("rmsnorm: {} is an empty 0-d tensor", name));
  if (t.numel() > 0 && t.data() == nullptr)
    throw InvalidArgument(fmt::format("rmsnorm: {} {} has no data", name, t.shape_str()));
}

// True when the byte ranges of a and b intersect.
bool overlap(const Tensor& a, const Tensor& b) {
  const auto* pa = static_cast<const char*>(a.data());
  const auto* pb = static_cast<const char*>(b.data());
  return a.nbytes() > 0 && b.nbytes() > 0 && pa < pb + b.nbytes() && pb < pa + a.nbytes();
}

}  // namespace

void rmsnorm(const Tensor& x, const Tensor& w, float eps, Tensor& y, ThreadPool& pool) {
  check_f32_cpu("x", x);
  check_f32_cpu("w", w);
  check_f32_cpu("y", y);
  const int64_t n = x.cols();
  if (w.ndim() != 1 || w.dim(0) != n)
    throw InvalidArgument(fmt::format("rmsnorm: w has shape {}, expected ({}) to match the rows of x {}",
                                      w.shape_str(), n, x.shape_str()));
  if (y.shape() != x.shape())
    throw InvalidArgument(fmt::format("rmsnorm: y has shape {}, expected the shape of x {}", y.shape_str(),
                                      x.shape_str()));
  if (!(eps >= 0.0f) || !std::isfinite(eps))
    throw InvalidArgument(fmt::format("rmsnorm: eps {} must be finite and >= 0", eps));
  if (y.data() != x.data() && overlap(x, y))
    throw InvalidArgument("rmsnorm: y partially overlaps x (it must be x itself or disjoint from it)");
  if (overlap(w, y)) throw InvalidArgument("rmsnorm: y overlaps w");
  if (x.numel() == 0) return;

  const kernels::ElementwiseKernels& k = kernels::elementwise_kernels(active_isa());
  const float* xp = x.data_as<float>();  // (n_rows, n)
  const float* wp = w.data_as<float>();  // (n)
  float* yp = y.data_as<float>();        // (n_rows, n)
  pool.parallel_for(x.rows(), std::max<int64_t>(1, kGrainElems / n), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) k.rmsnorm_row(xp + r * n, wp, n, eps, yp + r * n);
  });
}

}  // namespace contrail::ops
