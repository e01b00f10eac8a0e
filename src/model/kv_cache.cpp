#include "contrail/model/kv_cache.h"

#include <fmt/format.h>

#include "contrail/core/error.h"

namespace contrail {

KvCache::KvCache(const ModelConfig& cfg, int64_t n_ctx, size_t max_bytes) : n_ctx_(n_ctx) {
  if (n_ctx <= 0) throw InvalidArgument(fmt::format("KV cache context size {} must be positive", n_ctx));
  const double bytes = 2.0 * static_cast<double>(cfg.n_layer) * static_cast<double>(n_ctx) *
                       static_cast<double>(cfg.n_head_kv) * static_cast<double>(cfg.head_dim) * sizeof(float);
  if (bytes > static_cast<double>(max_bytes))
    throw InvalidArgument(fmt::format("KV cache for n_ctx {} needs {:.0f} MiB, above the limit of {} MiB", n_ctx,
                                      bytes / (1 << 20), max_bytes >> 20));
  k_.reserve(static_cast<size_t>(cfg.n_layer));
  v_.reserve(static_cast<size_t>(cfg.n_layer));
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    k_.push_back(Tensor::empty(DType::F32, {n_ctx, cfg.n_head_kv, cfg.head_dim}));
    v_.push_back(Tensor::empty(DType::F32, {n_ctx, cfg.n_head_kv, cfg.head_dim}));
  }
}

void KvCache::set_n_past(int64_t n) {
  if (n < 0 || n > n_ctx_) throw InvalidArgument(fmt::format("KV cache n_past {} outside [0, {}]", n, n_ctx_));
  n_past_ = n;
}

size_t KvCache::nbytes() const {
  size_t b = 0;
  for (const auto& t : k_) b += t.nbytes();
  for (const auto& t : v_) b += t.nbytes();
  return b;
}

}  // namespace contrail
