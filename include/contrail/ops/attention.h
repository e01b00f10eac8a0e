// Causal scaled-dot-product attention of new query tokens against a contiguous KV history.
#pragma once
#include <cstdint>
#include <span>

#include "contrail/core/dtype.h"
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

// One sequence of a paged KV cache: its K/V rows live in fixed-size blocks of a pool shared by all
// sequences. Position p is pool row block_table[p / block_size] * block_size + p % block_size.
struct PagedSequence {
  std::span<const int32_t> block_table;  // the sequence's blocks in position order
  int64_t n_kv = 0;                      // positions [0, n_kv) hold K/V (this step's rows included)
};

// Attention of a flattened multi-sequence batch against a paged KV cache (the serving engine's
// step): as attention() per sequence. f32 pools are read in place (the kernel walks the blocks as
// runs); f16 / q8_0 pools are decoded to f32 one (query token, kv head) at a time into a per-thread
// scratch, then attended as a contiguous history (exactly the f32 result on the decoded values).
// q, out:         (n_tokens, n_head, head_dim) f32
// k_pool, v_pool: (n_blocks * block_size, n_head_kv, head_dim), both f32, both f16 or both q8_0
// seq_of[t]:      index into seqs of token t's sequence; pos[t] < seqs[seq_of[t]].n_kv
// Each sequence's table must cover its n_kv positions with block ids in [0, n_blocks).
// Throws InvalidArgument naming the token/sequence, the value and the limit.
void paged_attention(const Tensor& q, const Tensor& k_pool, const Tensor& v_pool, int64_t block_size,
                     std::span<const PagedSequence> seqs, const int32_t* seq_of, const int32_t* pos,
                     const AttentionParams& p, Tensor& out, ThreadPool& pool);

// Writes one K or V position (n f32 values, all kv heads) into a pool row of dtype f32, f16 or
// q8_0 (round to nearest even for f16; GGML's reference quantizer for q8_0, n % 32 == 0).
// Throws InvalidArgument for another dtype.
void store_kv_row(const float* x, int64_t n, DType dtype, void* dst);

}  // namespace contrail::ops
