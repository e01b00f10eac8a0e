// ops::rmsnorm and ops::layernorm: validation (ops/check.h), then the row kernel of the active ISA
// over the thread pool.
#include "contrail/ops/norm.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "contrail/core/cpu_features.h"
#include "contrail/core/error.h"
#include "contrail/kernels/elementwise.h"
#include "ops/check.h"

namespace contrail::ops {
namespace {
using namespace detail;

constexpr int64_t kGrainElems = 16384;  // elements per thread chunk below which splitting does not pay

// Checks shared by the row norms: f32 CPU tensors, a (n) weight-like vector `name` for rows of n,
// y shaped like x and either x itself or disjoint from it, y disjoint from the vector, eps >= 0.
void check_vector(const char* op, const char* name, const Tensor& v, const Tensor& x, const Tensor& y) {
  check_f32_cpu(op, name, v, kAtLeast1Dim);
  const int64_t n = x.cols();
  if (v.ndim() != 1 || v.dim(0) != n)
    throw InvalidArgument(fmt::format("{}: {} has shape {}, expected ({}) to match the rows of x {}", op, name,
                                      v.shape_str(), n, x.shape_str()));
  check_disjoint(op, "y", y, name, v);
}

void check_norm_args(const char* op, const Tensor& x, float eps, const Tensor& y) {
  check_f32_cpu(op, "x", x, kAtLeast1Dim);
  check_f32_cpu(op, "y", y, kAtLeast1Dim);
  check_same_shape(op, "y", y, "x", x);
  if (!(eps >= 0.0f) || !std::isfinite(eps))
    throw InvalidArgument(fmt::format("{}: eps {} must be finite and >= 0", op, eps));
  check_same_or_disjoint(op, "y", y, "x", x);
}

// y = norm(x) * w (+ b): RMS norm without b, LayerNorm with it; rows split over the pool.
void norm_rows(const char* op, const Tensor& x, const Tensor& w, const Tensor* b, float eps, Tensor& y,
               ThreadPool& pool) {
  check_norm_args(op, x, eps, y);
  check_vector(op, "w", w, x, y);
  if (b != nullptr) check_vector(op, "b", *b, x, y);
  if (x.numel() == 0) return;
  const int64_t n = x.cols();

  const kernels::ElementwiseKernels& k = kernels::elementwise_kernels(active_isa());
  const float* xp = x.data_as<float>();                            // (n_rows, n)
  const float* wp = w.data_as<float>();                            // (n)
  const float* bp = b != nullptr ? b->data_as<float>() : nullptr;  // (n) or null
  float* yp = y.data_as<float>();                                  // (n_rows, n)
  pool.parallel_for(x.rows(), std::max<int64_t>(1, kGrainElems / n), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      if (bp != nullptr)
        k.layernorm_row(xp + r * n, wp, bp, n, eps, yp + r * n);
      else
        k.rmsnorm_row(xp + r * n, wp, n, eps, yp + r * n);
    }
  });
}

}  // namespace

void rmsnorm(const Tensor& x, const Tensor& w, float eps, Tensor& y, ThreadPool& pool) {
  norm_rows("rmsnorm", x, w, nullptr, eps, y, pool);
}

void layernorm(const Tensor& x, const Tensor& w, const Tensor& b, float eps, Tensor& y, ThreadPool& pool) {
  norm_rows("layernorm", x, w, &b, eps, y, pool);
}

}  // namespace contrail::ops
