// Key/value cache of one sequence, contiguous per layer (the paged, multi-sequence cache of the
// serving engine is a later layer). Invariants: positions [0, n_past) hold the K/V of the tokens
// evaluated so far, in order; rows >= n_past are unspecified. n_past <= n_ctx always.
#pragma once
#include <cstdint>
#include <vector>

#include "contrail/core/tensor.h"
#include "contrail/model/model_config.h"

namespace contrail {

class KvCache {
 public:
  // Throws InvalidArgument if n_ctx <= 0 or the cache would exceed `max_bytes`.
  KvCache(const ModelConfig& cfg, int64_t n_ctx, size_t max_bytes = size_t(1) << 34);

  int64_t n_ctx() const { return n_ctx_; }
  int64_t n_past() const { return n_past_; }
  void set_n_past(int64_t n);  // truncate (or, after writing rows, extend); 0 <= n <= n_ctx
  void clear() { n_past_ = 0; }
  size_t nbytes() const;

  Tensor& k(int64_t layer) { return k_[static_cast<size_t>(layer)]; }  // (n_ctx, n_head_kv, head_dim) f32
  Tensor& v(int64_t layer) { return v_[static_cast<size_t>(layer)]; }  // (n_ctx, n_head_kv, head_dim) f32

 private:
  int64_t n_ctx_;
  int64_t n_past_ = 0;
  std::vector<Tensor> k_, v_;
};

}  // namespace contrail
