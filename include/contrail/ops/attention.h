// Causal scaled-dot-product attention of new query tokens against a contiguous KV history.
#pragma once
#include <cstdint>

#include "contrail/core/tensor.h"
#include "contrail/core/thread_pool.h"

namespace contrail::ops {

struct AttentionParams {
  float scale = 0.f;    // usually 1/sqrt(head_dim)
  int64_t window = 0;   // sliding window in tokens including the current one; 0 = unlimited
  float softcap = 0.f;  // if > 0: score = softcap * tanh(score / softcap) (Gemma 2)
};

// q:   (n_tokens, n_head, head_dim) f32
// k,v: (n_kv, n_head_kv, head_dim) f32 -- the KV cache of one sequence; row p is position p
// pos: n_tokens query positions; query t attends to kv rows p with p <= pos[t] (and
//      p > pos[t] - window when window > 0); every pos[t] < n_kv.
// out: (n_tokens, n_head, head_dim) f32
// n_head % n_head_kv == 0 (grouped-query attention: query head h reads kv head h / (n_head/n_head_kv)).
void attention(const Tensor& q, const Tensor& k, const Tensor& v, const int32_t* pos, const AttentionParams& p,
               Tensor& out, ThreadPool& pool);

}  // namespace contrail::ops
