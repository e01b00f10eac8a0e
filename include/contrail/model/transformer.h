// The decoder-only transformer, evaluated on the CPU over a batch of tokens per call.
//
// Contract of forward(): tokens are evaluated as one causal batch at positions
// [cache.n_past(), cache.n_past() + n): their K/V are appended to the cache and cache.n_past()
// advances by n. Every linear layer is one matrix-matrix product over the whole batch, so the
// weights are read once per call. Logits are written for all tokens, or only the last one.
// forward_paged() is the serving engine's step: chunks of many sequences flattened into one batch
// over a paged KV cache; per token the result is what forward() gives for that sequence alone.
// Not thread-safe: one forward at a time per Transformer (it owns scratch buffers).
#pragma once
#include <memory>
#include <span>
#include <vector>

#include "contrail/core/tensor.h"
#include "contrail/core/thread_pool.h"
#include "contrail/model/arch.h"
#include "contrail/model/kv_cache.h"
#include "contrail/model/model_file.h"
#include "contrail/model/paged_kv_cache.h"
#include "contrail/ops/attention.h"

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
  // Throws InvalidArgument for empty input, token ids outside [0, n_vocab), a batch that does
  // not fit the cache (naming n_past, n_tokens and n_ctx), or, with learned positions, one that
  // reaches past the position table (n_ctx_train).
  void forward(std::span<const int32_t> tokens, KvCache& cache, ThreadPool& pool, std::vector<float>& logits,
               bool all_logits);

  // One step over a paged KV cache. Token i of the batch belongs to seqs[seq_of[i]] and sits at
  // position pos[i] of it; its K/V row is written to that sequence's block for pos[i] before
  // attention, so a chunk attends to itself. Each sequence's n_kv counts its positions after this
  // step (all positions < n_kv must be written by now or in this batch).
  struct PagedBatch {
    std::span<const int32_t> tokens;               // (n_tokens)
    std::span<const int32_t> pos;                  // (n_tokens)
    std::span<const int32_t> seq_of;               // (n_tokens)
    std::span<const ops::PagedSequence> seqs;      // block tables and n_kv
    std::span<const int32_t> logit_rows;           // batch rows whose logits are wanted, any order (may be empty)
  };
  // logits: (logit_rows.size(), n_vocab) f32, row r for batch row logit_rows[r]; resized (emptied
  // when no rows are wanted: the output head is skipped).
  // Throws InvalidArgument for empty input, ids outside [0, n_vocab), mismatched spans, positions
  // beyond a sequence's blocks or (learned positions) n_ctx_train, or bad logit rows.
  void forward_paged(const PagedBatch& batch, PagedKvCache& cache, ThreadPool& pool, std::vector<float>& logits);

 private:
  // Where a step's K/V rows go and how attention reads them (contiguous or paged cache).
  struct KvTarget;
  // The layer stack and the output head for n tokens at positions pos_[0, n): logits for the
  // given batch rows, in that order (none: the output head is skipped).
  void run(std::span<const int32_t> tokens, KvTarget& kv, ThreadPool& pool, std::span<const int32_t> logit_rows,
           std::vector<float>& logits);

  // Weights of one block. With fused_qkv / fused_gate_up the q/k/v and gate/up members are row
  // views of the fused tensor (a matrix's rows are contiguous), so the forward pass is the same.
  // Members a family does not have stay empty (Tensor()).
  struct Layer {
    Tensor attn_norm, attn_norm_b;  // (n_embd); _b with NormKind::LayerNorm
    Tensor wq, wk, wv;              // (q_dim, n_embd), (kv_dim, n_embd) x2
    Tensor bq, bk, bv;              // (q_dim), (kv_dim) x2; with traits().qkv_bias
    Tensor wo, bo;                  // (n_embd, q_dim), (n_embd); bo with attn_out_bias
    Tensor post_attn_norm;          // (n_embd); with post_norms
    Tensor ffn_norm, ffn_norm_b;    // (n_embd)
    Tensor w_gate, w_up, b_up;      // (n_ff, n_embd) x2 (no gate with GeluMlp), (n_ff) with ffn_bias
    Tensor w_down, b_down;          // (n_embd, n_ff), (n_embd) with ffn_bias
    Tensor post_ffw_norm;           // (n_embd); with post_norms
    int64_t window = 0;             // sliding-window span of this layer, 0 = global
  };
  void ensure_scratch(int64_t n_tokens);
  // y = norm(x) with the family's NormKind (b is used by LayerNorm only). y may alias x.
  void norm(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y, ThreadPool& pool) const;

  std::shared_ptr<const ModelFile> model_;
  const ArchTraits* traits_;
  Tensor tok_embd_, pos_embd_, output_norm_, output_norm_b_, output_;
  ops::RopeParams rope_;  // config().rope with freq_factors pointing into rope_freqs_
  Tensor rope_freqs_;     // (n_rot / 2) f32, or empty
  std::vector<Layer> layers_;

  // scratch, sized for scratch_tokens_ tokens
  int64_t scratch_tokens_ = 0;
  Tensor x_;     // (n_tokens, n_embd) residual stream
  Tensor xn_;    // (n_tokens, n_embd) normalised input of a sub-layer
  Tensor q_;     // (n_tokens, n_head, head_dim)
  Tensor attn_;  // (n_tokens, n_head, head_dim)
  Tensor gate_;  // (n_tokens, n_ff)
  Tensor up_;    // (n_tokens, n_ff)
  Tensor k_new_, v_new_;  // (n_tokens, kv_dim) this step's K/V before they are scattered (paged)
  std::vector<int32_t> pos_;  // (n_tokens)
  std::vector<int32_t> rows_;  // (n_out) batch rows whose logits are computed
};

}  // namespace contrail
