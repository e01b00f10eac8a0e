// Elementwise activations and arithmetic (swiglu, geglu, gelu, softcap, scale, add): validation
// (ops/check.h), then the flat kernel of the active ISA over contiguous chunks of the thread pool.
#include "contrail/ops/activation.h"

#include <fmt/format.h>

#include <cmath>

#include "contrail/core/cpu_features.h"
#include "contrail/core/error.h"
#include "contrail/kernels/elementwise.h"
#include "ops/check.h"

namespace contrail::ops {
namespace {
using namespace detail;

constexpr int64_t kGrainElems = 16384;  // elements per thread chunk below which splitting does not pay

using GatedKernel = void (*)(const float* gate, const float* up, float* out, int64_t n);
using UnaryKernel = void (*)(const float* x, float* y, int64_t n);

// out = act(gate) * up for a gated kernel of the active ISA.
void gated(const char* op, const Tensor& gate, const Tensor& up, Tensor& out, GatedKernel kernel, ThreadPool& pool) {
  check_f32_cpu(op, "gate", gate);
  check_f32_cpu(op, "up", up);
  check_f32_cpu(op, "out", out);
  check_same_shape(op, "up", up, "gate", gate);
  check_same_shape(op, "out", out, "gate", gate);
  check_same_or_disjoint(op, "out", out, "gate", gate);
  check_same_or_disjoint(op, "out", out, "up", up);

  const float* g = gate.data_as<float>();  // (numel)
  const float* u = up.data_as<float>();    // (numel)
  float* o = out.data_as<float>();         // (numel)
  pool.parallel_for(gate.numel(), kGrainElems,
                    [&](int64_t begin, int64_t end) { kernel(g + begin, u + begin, o + begin, end - begin); });
}

// x = f(x) in place; f(const float* x, float* y, int64_t n) is called on contiguous chunks.
template <typename F>
void unary_inplace(const char* op, Tensor& x, F f, ThreadPool& pool) {
  check_f32_cpu(op, "x", x);
  float* p = x.data_as<float>();  // (numel)
  pool.parallel_for(x.numel(), kGrainElems, [&](int64_t begin, int64_t end) { f(p + begin, p + begin, end - begin); });
}

}  // namespace

void swiglu(const Tensor& gate, const Tensor& up, Tensor& out, ThreadPool& pool) {
  gated("swiglu", gate, up, out, kernels::elementwise_kernels(active_isa()).swiglu, pool);
}

void geglu(const Tensor& gate, const Tensor& up, Tensor& out, ThreadPool& pool) {
  gated("geglu", gate, up, out, kernels::elementwise_kernels(active_isa()).geglu, pool);
}

void gelu_inplace(Tensor& x, ThreadPool& pool) {
  const UnaryKernel gelu = kernels::elementwise_kernels(active_isa()).gelu;
  unary_inplace("gelu_inplace", x, gelu, pool);
}

void softcap_inplace(Tensor& x, float cap, ThreadPool& pool) {
  if (!(cap > 0.0f) || !std::isfinite(cap))
    throw InvalidArgument(fmt::format("softcap_inplace: cap {} must be finite and > 0", cap));
  const auto softcap = kernels::elementwise_kernels(active_isa()).softcap;
  unary_inplace("softcap_inplace", x, [&](const float* in, float* out, int64_t n) { softcap(in, out, n, cap); }, pool);
}

void scale_inplace(Tensor& x, float s, ThreadPool& pool) {
  if (!std::isfinite(s)) throw InvalidArgument(fmt::format("scale_inplace: scale {} must be finite", s));
  const auto scale = kernels::elementwise_kernels(active_isa()).scale;
  unary_inplace("scale_inplace", x, [&](const float* in, float* out, int64_t n) { scale(in, out, n, s); }, pool);
}

void add_inplace(Tensor& y, const Tensor& x, ThreadPool& pool) {
  check_f32_cpu("add_inplace", "y", y);
  check_f32_cpu("add_inplace", "x", x);
  check_same_shape("add_inplace", "x", x, "y", y);
  check_same_or_disjoint("add_inplace", "y", y, "x", x);

  const kernels::ElementwiseKernels& k = kernels::elementwise_kernels(active_isa());
  float* yp = y.data_as<float>();        // (numel)
  const float* xp = x.data_as<float>();  // (numel)
  pool.parallel_for(y.numel(), kGrainElems,
                    [&](int64_t begin, int64_t end) { k.add_inplace(yp + begin, xp + begin, end - begin); });
}

}  // namespace contrail::ops
