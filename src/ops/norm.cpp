// ops::rmsnorm and ops::layernorm: validation, then the row kernel of the active ISA over the thread
// pool.
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

void check_f32_cpu(const char* op, const char* name, const Tensor& t) {
  if (t.device() != Device::CPU)
    throw InvalidArgument(fmt::format("{}: {} is a {} tensor; only CPU tensors are supported", op, name,
                                      t.device() == Device::CUDA ? "CUDA" : "non-CPU"));
  if (t.dtype() != DType::F32)
    throw InvalidArgument(fmt::format("{}: {} has dtype {}, expected f32", op, name, dtype_name(t.dtype())));
  if (t.ndim() == 0) throw InvalidArgument(fmt::format("{}: {} is an empty 0-d tensor", op, name));
  if (t.numel() > 0 && t.data() == nullptr)
    throw InvalidArgument(fmt::format("{}: {} {} has no data", op, name, t.shape_str()));
}

// True when the byte ranges of a and b intersect.
bool overlap(const Tensor& a, const Tensor& b) {
  const auto* pa = static_cast<const char*>(a.data());
  const auto* pb = static_cast<const char*>(b.data());
  return a.nbytes() > 0 && b.nbytes() > 0 && pa < pb + b.nbytes() && pb < pa + a.nbytes();
}

// Checks shared by the row norms: f32 CPU tensors, a (n) weight-like vector `name` for rows of n,
// y shaped like x and either x itself or disjoint from it, y disjoint from the vector, eps >= 0.
void check_vector(const char* op, const char* name, const Tensor& v, const Tensor& x, const Tensor& y) {
  check_f32_cpu(op, name, v);
  const int64_t n = x.cols();
  if (v.ndim() != 1 || v.dim(0) != n)
    throw InvalidArgument(fmt::format("{}: {} has shape {}, expected ({}) to match the rows of x {}", op, name,
                                      v.shape_str(), n, x.shape_str()));
  if (overlap(v, y)) throw InvalidArgument(fmt::format("{}: y overlaps {}", op, name));
}

void check_norm_args(const char* op, const Tensor& x, float eps, const Tensor& y) {
  check_f32_cpu(op, "x", x);
  check_f32_cpu(op, "y", y);
  if (y.shape() != x.shape())
    throw InvalidArgument(fmt::format("{}: y has shape {}, expected the shape of x {}", op, y.shape_str(),
                                      x.shape_str()));
  if (!(eps >= 0.0f) || !std::isfinite(eps))
    throw InvalidArgument(fmt::format("{}: eps {} must be finite and >= 0", op, eps));
  if (y.data() != x.data() && overlap(x, y))
    throw InvalidArgument(fmt::format("{}: y partially overlaps x (it must be x itself or disjoint from it)", op));
}

}  // namespace

void rmsnorm(const Tensor& x, const Tensor& w, float eps, Tensor& y, ThreadPool& pool) {
  check_norm_args("rmsnorm", x, eps, y);
  check_vector("rmsnorm", "w", w, x, y);
  if (x.numel() == 0) return;
  const int64_t n = x.cols();

  const kernels::ElementwiseKernels& k = kernels::elementwise_kernels(active_isa());
  const float* xp = x.data_as<float>();  // (n_rows, n)
  const float* wp = w.data_as<float>();  // (n)
  float* yp = y.data_as<float>();        // (n_rows, n)
  pool.parallel_for(x.rows(), std::max<int64_t>(1, kGrainElems / n), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) k.rmsnorm_row(xp + r * n, wp, n, eps, yp + r * n);
  });
}

void layernorm(const Tensor& x, const Tensor& w, const Tensor& b, float eps, Tensor& y, ThreadPool& pool) {
  check_norm_args("layernorm", x, eps, y);
  check_vector("layernorm", "w", w, x, y);
  check_vector("layernorm", "b", b, x, y);
  if (x.numel() == 0) return;
  const int64_t n = x.cols();

  const kernels::ElementwiseKernels& k = kernels::elementwise_kernels(active_isa());
  const float* xp = x.data_as<float>();  // (n_rows, n)
  const float* wp = w.data_as<float>();  // (n)
  const float* bp = b.data_as<float>();  // (n)
  float* yp = y.data_as<float>();        // (n_rows, n)
  pool.parallel_for(x.rows(), std::max<int64_t>(1, kGrainElems / n), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) k.layernorm_row(xp + r * n, wp, bp, n, eps, yp + r * n);
  });
}

}  // namespace contrail::ops
