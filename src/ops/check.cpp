// The ops' shared argument validation (contract: ops/check.h).
#include "ops/check.h"

#include <fmt/format.h>

#include "contrail/core/error.h"

namespace contrail::ops::detail {

void check_cpu(const char* op, const char* name, const Tensor& t) {
  if (t.device() != Device::CPU)
    throw InvalidArgument(fmt::format("{}: {} {} is a {} tensor, not on the CPU; only CPU tensors are supported", op,
                                      name, t.shape_str(), t.device() == Device::CUDA ? "CUDA" : "non-CPU"));
}

void check_rank(const char* op, const char* name, const Tensor& t, int ndim, const char* dims) {
  if (ndim == kAnyRank || (ndim == kAtLeast1Dim ? t.ndim() >= 1 : t.ndim() == ndim)) return;
  if (ndim == kAtLeast1Dim)
    throw InvalidArgument(fmt::format("{}: {} {} has 0 dims, expected at least 1", op, name, t.shape_str()));
  throw InvalidArgument(fmt::format("{}: {} {} has {} dims, expected {} dims{}{}", op, name, t.shape_str(), t.ndim(),
                                    ndim, *dims ? " " : "", dims));
}

void check_f32(const char* op, const char* name, const Tensor& t) {
  if (t.dtype() != DType::F32)
    throw InvalidArgument(
        fmt::format("{}: {} {} has dtype {}, expected f32", op, name, t.shape_str(), dtype_name(t.dtype())));
}

void check_data(const char* op, const char* name, const Tensor& t) {
  if (t.nbytes() > 0 && t.data() == nullptr)
    throw InvalidArgument(fmt::format("{}: {} {} has no data", op, name, t.shape_str()));
}

void check_f32_cpu(const char* op, const char* name, const Tensor& t, int ndim, const char* dims) {
  check_cpu(op, name, t);
  check_f32(op, name, t);
  check_rank(op, name, t, ndim, dims);
  check_data(op, name, t);
}

bool overlap(const Tensor& a, const Tensor& b) {
  const auto* pa = static_cast<const char*>(a.data());
  const auto* pb = static_cast<const char*>(b.data());
  return a.nbytes() > 0 && b.nbytes() > 0 && pa < pb + b.nbytes() && pb < pa + a.nbytes();
}

void check_same_shape(const char* op, const char* name, const Tensor& t, const char* ref_name, const Tensor& ref) {
  if (t.shape() != ref.shape())
    throw InvalidArgument(fmt::format("{}: {} has shape {}, expected the shape of {} {}", op, name, t.shape_str(),
                                      ref_name, ref.shape_str()));
}

void check_same_or_disjoint(const char* op, const char* out_name, const Tensor& out, const char* in_name,
                            const Tensor& in) {
  if (out.data() != in.data() && overlap(out, in))
    throw InvalidArgument(fmt::format("{}: {} {} partially overlaps {} {} (it must be {} itself or disjoint from it)",
                                      op, out_name, out.shape_str(), in_name, in.shape_str(), in_name));
}

void check_disjoint(const char* op, const char* out_name, const Tensor& out, const char* in_name, const Tensor& in) {
  if (overlap(out, in))
    throw InvalidArgument(fmt::format("{}: {} {} overlaps {} {} (it must be disjoint from it)", op, out_name,
                                      out.shape_str(), in_name, in.shape_str()));
}

}  // namespace contrail::ops::detail
