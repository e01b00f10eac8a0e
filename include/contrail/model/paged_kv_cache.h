// The K/V memory of the serving engine: per layer, one pool of fixed-size blocks shared by every
// sequence. Which block holds which sequence's positions is decided elsewhere (the engine's
// BlockManager hands out block ids and block tables); this class only owns the rows.
// Invariants: block b holds pool rows [b * block_size, (b + 1) * block_size) of every layer's K and
// V; rows not yet written are unspecified (attention never reads positions >= a sequence's n_kv).
// Storage dtype: f32 (exact), f16 (half the memory; what llama.cpp and vLLM use by default) or
// q8_0 (int8 with an f16 scale per 32 values, ~27% of f32; needs head_dim % 32 == 0). Rows are
// converted when written (Transformer::forward_paged) and read back to f32 by attention.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "contrail/core/dtype.h"
#include "contrail/core/tensor.h"
#include "contrail/model/model_config.h"

namespace contrail {

class PagedKvCache {
 public:
  // Throws InvalidArgument unless n_blocks >= 1, 1 <= block_size <= 4096 and the pools fit in
  // max_bytes (naming the values and the limit).
  // InvalidArgument also for a dtype other than f32/f16/q8_0, or q8_0 with head_dim % 32 != 0.
  PagedKvCache(const ModelConfig& cfg, int64_t n_blocks, int64_t block_size, DType dtype = DType::F32,
               size_t max_bytes = size_t(1) << 36);

  // How many blocks of block_size positions fit in `bytes` for this model and dtype (at least 0).
  static int64_t blocks_in(const ModelConfig& cfg, int64_t block_size, size_t bytes, DType dtype = DType::F32);
  DType dtype() const { return dtype_; }

  int64_t n_blocks() const { return n_blocks_; }
  int64_t block_size() const { return block_size_; }
  size_t nbytes() const;

  Tensor& k(int64_t layer) { return k_[static_cast<size_t>(layer)]; }  // (n_blocks * block_size, n_head_kv, head_dim) dtype()
  Tensor& v(int64_t layer) { return v_[static_cast<size_t>(layer)]; }  // (n_blocks * block_size, n_head_kv, head_dim) dtype()

  // Copies every layer's K and V rows of block src into block dst (copy-on-write). Throws
  // InvalidArgument for ids outside [0, n_blocks).
  void copy_block(int32_t src, int32_t dst);

 private:
  int64_t n_blocks_, block_size_;
  DType dtype_;
  std::vector<Tensor> k_, v_;
};

}  // namespace contrail
