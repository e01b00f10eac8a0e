#include "contrail/model/paged_kv_cache.h"

#include <fmt/format.h>

#include <cstring>

#include "contrail/core/error.h"

namespace contrail {
namespace {

double bytes_per_block(const ModelConfig& cfg, int64_t block_size, DType dtype) {
  const double row = dtype == DType::Q8_0 ? static_cast<double>(cfg.head_dim / kQ8_0Block * sizeof(BlockQ8_0))
                                          : static_cast<double>(cfg.head_dim) * (dtype == DType::F16 ? 2.0 : 4.0);
  return 2.0 * static_cast<double>(cfg.n_layer) * static_cast<double>(block_size) * static_cast<double>(cfg.n_head_kv) * row;
}

}  // namespace

PagedKvCache::PagedKvCache(const ModelConfig& cfg, int64_t n_blocks, int64_t block_size, DType dtype,
                           size_t max_bytes)
    : n_blocks_(n_blocks), block_size_(block_size), dtype_(dtype) {
  if (dtype != DType::F32 && dtype != DType::F16 && dtype != DType::Q8_0)
    throw InvalidArgument(fmt::format("paged KV cache: dtype {} is not supported (f32, f16 or q8_0)", dtype_name(dtype)));
  if (dtype == DType::Q8_0 && cfg.head_dim % kQ8_0Block != 0)
    throw InvalidArgument(fmt::format("paged KV cache: q8_0 needs head_dim to be a multiple of {}, but it is {}",
                                      kQ8_0Block, cfg.head_dim));
  if (block_size < 1 || block_size > 4096)
    throw InvalidArgument(fmt::format("paged KV cache: block_size {} outside [1, 4096]", block_size));
  if (n_blocks < 1) throw InvalidArgument(fmt::format("paged KV cache: n_blocks {} must be >= 1", n_blocks));
  const double bytes = bytes_per_block(cfg, block_size, dtype) * static_cast<double>(n_blocks);
  if (bytes > static_cast<double>(max_bytes))
    throw InvalidArgument(fmt::format("paged KV cache: {} blocks of {} positions need {:.0f} MiB, above the limit of {} MiB",
                                      n_blocks, block_size, bytes / (1 << 20), max_bytes >> 20));
  const int64_t rows = n_blocks * block_size;
  k_.reserve(static_cast<size_t>(cfg.n_layer));
  v_.reserve(static_cast<size_t>(cfg.n_layer));
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    k_.push_back(Tensor::empty(dtype, {rows, cfg.n_head_kv, cfg.head_dim}));
    v_.push_back(Tensor::empty(dtype, {rows, cfg.n_head_kv, cfg.head_dim}));
  }
}

int64_t PagedKvCache::blocks_in(const ModelConfig& cfg, int64_t block_size, size_t bytes, DType dtype) {
  const double per = bytes_per_block(cfg, block_size, dtype);
  return per > 0 ? static_cast<int64_t>(static_cast<double>(bytes) / per) : 0;
}

size_t PagedKvCache::nbytes() const {
  size_t b = 0;
  for (const auto& t : k_) b += t.nbytes();
  for (const auto& t : v_) b += t.nbytes();
  return b;
}

void PagedKvCache::copy_block(int32_t src, int32_t dst) {
  if (src < 0 || src >= n_blocks_ || dst < 0 || dst >= n_blocks_)
    throw InvalidArgument(fmt::format("paged KV cache: copy of block {} to {}: ids must be in [0, {})", src, dst, n_blocks_));
  if (src == dst) return;
  for (auto* pools : {&k_, &v_})
    for (Tensor& t : *pools) {
      const size_t block_bytes = t.nbytes() / static_cast<size_t>(n_blocks_);
      auto* base = static_cast<char*>(t.data());
      std::memcpy(base + static_cast<size_t>(dst) * block_bytes, base + static_cast<size_t>(src) * block_bytes, block_bytes);
    }
}

}  // namespace contrail
