// ops::rope: validation (ops/check.h), then per token one (cos, sin) table (with the optional
// per-pair frequency factors) shared by all heads and the rotation kernel of the active ISA, tokens
// split over the thread pool.
#include "contrail/ops/rope.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "contrail/core/cpu_features.h"
#include "contrail/core/error.h"
#include "contrail/kernels/elementwise.h"
#include "ops/check.h"

namespace contrail::ops {
namespace {

constexpr int64_t kGrainElems = 8192;  // elements per thread chunk below which splitting does not pay

}  // namespace

void rope(Tensor& x, const int32_t* pos, const RopeParams& p, ThreadPool& pool) {
  detail::check_f32_cpu("rope", "x", x, 3, "(n_tokens, n_heads, head_dim)");
  const int64_t n_tokens = x.dim(0), n_heads = x.dim(1), head_dim = x.dim(2);
  if (p.n_rot < 2 || p.n_rot > head_dim || p.n_rot % 2 != 0)
    throw InvalidArgument(fmt::format("rope: n_rot {} must be even and in [2, head_dim {}]", p.n_rot, head_dim));
  if (!(p.freq_base > 0.0f) || !std::isfinite(p.freq_base))
    throw InvalidArgument(fmt::format("rope: freq_base {} must be finite and > 0", p.freq_base));
  if (!(p.freq_scale > 0.0f) || !std::isfinite(p.freq_scale))
    throw InvalidArgument(fmt::format("rope: freq_scale {} must be finite and > 0", p.freq_scale));
  if (p.freq_factors != nullptr)
    for (int64_t i = 0; i < p.n_rot / 2; ++i)
      if (!(p.freq_factors[i] > 0.0f) || !std::isfinite(p.freq_factors[i]))
        throw InvalidArgument(
            fmt::format("rope: freq_factors[{}] = {} must be finite and > 0", i, p.freq_factors[i]));
  if (x.numel() == 0) return;
  if (pos == nullptr) throw InvalidArgument(fmt::format("rope: pos is null for {} tokens", n_tokens));
  for (int64_t t = 0; t < n_tokens; ++t)
    if (pos[t] < 0) throw InvalidArgument(fmt::format("rope: pos[{}] = {} is negative", t, pos[t]));

  const kernels::ElementwiseKernels& k = kernels::elementwise_kernels(active_isa());
  const bool neox = p.mode == RopeMode::Neox;
  float* xp = x.data_as<float>();  // (n_tokens, n_heads, head_dim)
  const int64_t token_elems = n_heads * head_dim;
  pool.parallel_for(n_tokens, std::max<int64_t>(1, kGrainElems / token_elems), [&](int64_t begin, int64_t end) {
    std::vector<float> cos_sin(static_cast<size_t>(p.n_rot));  // (2, n_rot / 2)
    for (int64_t t = begin; t < end; ++t) {
      kernels::rope_cos_sin(static_cast<float>(pos[t]), p.n_rot, p.freq_base, p.freq_scale, cos_sin.data(),
                            p.freq_factors);
      k.rope_rows(xp + t * token_elems, n_heads, head_dim, p.n_rot, neox, cos_sin.data());
    }
  });
}

}  // namespace contrail::ops
