// The decoder-only transformer, evaluated on the CPU over a batch of tokens per call.
//
// Contract of forward(): tokens are evaluated as one causal batch at positions
// [cache.n_past(), cache.n_past() + n): their K/V are appended to the cache and cache.n_past()
// advances by n. Every linear layer is one matrix-matrix product over the whole batch, so the
// weights are read once per call. Logits are written for all tokens, or only the last one.
// Not thread-safe: one forward() at a time per Transformer (it owns scratch buffers).
#pragma once
#include <memory>
#include <span>
#include <vector>

#include "contrail/core/tensor.h"
#include "contrail/core/thread_pool.h"
#include "contrail/model/arch.h"
#include "contrail/model/kv_cache.h"
#include "contrail/model/model_file.h"

namespace contrail {

class Transformer {
 public:
  // Resolves and validates every weight (names, shapes, dtypes) once; throws FormatError.
  explicit Transformer(std::shared_ptr<const ModelFile> model);

  const ModelConfig& config() const { return model_->config; }
  const ModelFile& model() const { return *model_; }
  const ArchTraits& traits() const { return *traits_; }

  KvCache make_cache(int64_t n_ctx) const { return KvCache(config(), n_ctx); }

  // logits: (n_tokens, n_vocab) f32 when all_logits, else (1, n_vocab); resized as needed.
  // Throws InvalidArgument for empty input, token ids outside [0, n_vocab), or a batch that does
  // not fit the cache (naming n_past, n_tokens and n_ctx).
  void forward(std::span<const int32_t> tokens, KvCache& cache, ThreadPool& pool, std::vector<float>& logits,
               bool all_logits);

 private:
  struct Layer {
    Tensor attn_norm, wq, wk, wv, wo, ffn_norm, w_gate, w_up, w_down;
    Tensor bq, bk, bv;  // (n_head*head_dim), (n_head_kv*head_dim) x2; set iff traits().qkv_bias
  };
  void ensure_scratch(int64_t n_tokens);

  std::shared_ptr<const ModelFile> model_;
  const ArchTraits* traits_;
  Tensor tok_embd_, output_norm_, output_;
  std::vector<Layer> layers_;

  // scratch, sized for scratch_tokens_ tokens
  int64_t scratch_tokens_ = 0;
  Tensor x_;     // (n_tokens, n_embd) residual stream
  Tensor xn_;    // (n_tokens, n_embd) normalised input of a sub-layer
  Tensor q_;     // (n_tokens, n_head, head_dim)
  Tensor k_;     // (n_tokens, n_head_kv, head_dim)
  Tensor v_;     // (n_tokens, n_head_kv, head_dim)
  Tensor attn_;  // (n_tokens, n_head, head_dim)
  Tensor gate_;  // (n_tokens, n_ff)
  Tensor up_;    // (n_tokens, n_ff)
  std::vector<int32_t> pos_;  // (n_tokens)
};

}  // namespace contrail
