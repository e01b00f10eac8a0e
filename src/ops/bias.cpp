// ops::add_bias_rows: validation, then a plain loop per row (the compiler vectorises it at the
// baseline ISA; the op moves n*d floats once, far less work than the matmul before it).
#include "contrail/ops/bias.h"

#include <fmt/format.h>

#include "contrail/core/error.h"

namespace contrail::ops {
namespace {

constexpr int64_t kGrainElems = 16384;  // elements per thread chunk below which splitting does not pay

void check_f32_cpu(const char* name, const Tensor& t) {
  if (t.device() != Device::CPU)
    throw InvalidArgument(fmt::format("add_bias_rows: {} {} is not a CPU tensor; only CPU tensors are supported", name,
                                      t.shape_str()));
  if (t.dtype() != DType::F32)
    throw InvalidArgument(
        fmt::format("add_bias_rows: {} {} has dtype {}, expected f32", name, t.shape_str(), dtype_name(t.dtype())));
  if (t.numel() > 0 && t.data() == nullptr)
    throw InvalidArgument(fmt::format("add_bias_rows: {} {} has no data", name, t.shape_str()));
}

}  // namespace

void add_bias_rows(Tensor& y, const Tensor& b, ThreadPool& pool) {
  check_f32_cpu("y", y);
  check_f32_cpu("b", b);
  if (y.ndim() != 2)
    throw InvalidArgument(fmt::format("add_bias_rows: y {} has {} dims, expected 2 (n, d)", y.shape_str(), y.ndim()));
  if (b.ndim() != 1 || b.dim(0) != y.cols())
    throw InvalidArgument(
        fmt::format("add_bias_rows: b has shape {}, expected ({}) to match the width of y {}", b.shape_str(), y.cols(),
                    y.shape_str()));
  const int64_t n = y.rows(), d = y.cols();
  const auto* py = static_cast<const char*>(y.data());
  const auto* pb = static_cast<const char*>(b.data());
  if (d > 0 && n > 0 && pb < py + y.nbytes() && py < pb + b.nbytes())
    throw InvalidArgument(
        fmt::format("add_bias_rows: b {} overlaps y {} (it must be disjoint)", b.shape_str(), y.shape_str()));
  if (n == 0 || d == 0) return;

  float* yp = y.data_as<float>();        // (n, d)
  const float* bp = b.data_as<float>();  // (d)
  const int64_t grain_rows = kGrainElems / d > 0 ? kGrainElems / d : 1;
  pool.parallel_for(n, grain_rows, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      float* row = yp + i * d;  // (d)
      for (int64_t j = 0; j < d; ++j) row[j] += bp[j];
    }
  });
}

}  // namespace contrail::ops
