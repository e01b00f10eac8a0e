// ops::add_bias_rows: validation (ops/check.h), then a plain loop per row (the compiler vectorises
// it at the baseline ISA; the op moves n*d floats once, far less work than the matmul before it).
#include "contrail/ops/bias.h"

#include <fmt/format.h>

#include "contrail/core/error.h"
#include "ops/check.h"

namespace contrail::ops {
namespace {
using namespace detail;

constexpr int64_t kGrainElems = 16384;  // elements per thread chunk below which splitting does not pay

}  // namespace

void add_bias_rows(Tensor& y, const Tensor& b, ThreadPool& pool) {
  const char* op = "add_bias_rows";
  check_f32_cpu(op, "y", y, 2, "(n, d)");
  check_f32_cpu(op, "b", b);
  if (b.ndim() != 1 || b.dim(0) != y.cols())
    throw InvalidArgument(
        fmt::format("add_bias_rows: b has shape {}, expected ({}) to match the width of y {}", b.shape_str(), y.cols(),
                    y.shape_str()));
  check_disjoint(op, "b", b, "y", y);
  const int64_t n = y.rows(), d = y.cols();
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
