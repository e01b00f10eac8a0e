#include "contrail/model/transformer.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>

#include "contrail/core/error.h"
#include "contrail/ops/activation.h"
#include "contrail/ops/attention.h"
#include "contrail/ops/bias.h"
#include "contrail/ops/matmul.h"
#include "contrail/ops/norm.h"
#include "contrail/ops/rope.h"
#include "model/loader_detail.h"

namespace contrail {
namespace {

// View of the first n rows of a scratch tensor with a new inner shape.
Tensor rows(const Tensor& t, int64_t n, std::vector<int64_t> inner) {
  Tensor s = t.slice_rows(0, n);
  inner.insert(inner.begin(), n);
  return s.reshape(std::move(inner));
}

}  // namespace

Transformer::Transformer(std::shared_ptr<const ModelFile> model)
    : model_(std::move(model)), traits_(&arch_traits(model_->config.arch)) {
  const ModelFile& m = *model_;
  const ModelConfig& c = m.config;
  c.validate(m.path);
  // Shapes and dtype rules come from the one weight list the loaders also check against.
  detail::for_each_weight(c, *traits_, [&](const detail::ExpectedWeight& e) {
    const Tensor& t = m.tensor(e.name);
    if (t.shape() != e.shape)
      throw FormatError(fmt::format("{}: tensor '{}' has shape {}, expected {}", m.path, e.name, t.shape_str(),
                                    detail::shape_str(e.shape)));
    if (e.f32_kind && t.dtype() != DType::F32)
      throw FormatError(fmt::format("{}: tensor '{}' has dtype {}, but {} must be f32", m.path, e.name,
                                    dtype_name(t.dtype()), e.f32_kind));
  });
  tok_embd_ = m.tensor("token_embd.weight");
  output_norm_ = m.tensor("output_norm.weight");
  output_ = c.tied_embeddings ? tok_embd_ : m.tensor("output.weight");
  layers_.resize(static_cast<size_t>(c.n_layer));
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string p = fmt::format("blk.{}.", i);
    Layer& L = layers_[static_cast<size_t>(i)];
    L.attn_norm = m.tensor(p + "attn_norm.weight");
    L.wq = m.tensor(p + "attn_q.weight");
    L.wk = m.tensor(p + "attn_k.weight");
    L.wv = m.tensor(p + "attn_v.weight");
    if (traits_->qkv_bias) {
      L.bq = m.tensor(p + "attn_q.bias");
      L.bk = m.tensor(p + "attn_k.bias");
      L.bv = m.tensor(p + "attn_v.bias");
    }
    L.wo = m.tensor(p + "attn_output.weight");
    L.ffn_norm = m.tensor(p + "ffn_norm.weight");
    L.w_gate = m.tensor(p + "ffn_gate.weight");
    L.w_up = m.tensor(p + "ffn_up.weight");
    L.w_down = m.tensor(p + "ffn_down.weight");
  }
}

void Transformer::ensure_scratch(int64_t n) {
  if (n <= scratch_tokens_) return;
  const ModelConfig& c = config();
  x_ = Tensor::empty(DType::F32, {n, c.n_embd});
  xn_ = Tensor::empty(DType::F32, {n, c.n_embd});
  q_ = Tensor::empty(DType::F32, {n, c.n_head, c.head_dim});
  k_ = Tensor::empty(DType::F32, {n, c.n_head_kv, c.head_dim});
  v_ = Tensor::empty(DType::F32, {n, c.n_head_kv, c.head_dim});
  attn_ = Tensor::empty(DType::F32, {n, c.n_head, c.head_dim});
  gate_ = Tensor::empty(DType::F32, {n, c.n_ff});
  up_ = Tensor::empty(DType::F32, {n, c.n_ff});
  pos_.resize(static_cast<size_t>(n));
  scratch_tokens_ = n;
}

void Transformer::forward(std::span<const int32_t> tokens, KvCache& cache, ThreadPool& pool,
                          std::vector<float>& logits, bool all_logits) {
  const ModelConfig& c = config();
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t n_past = cache.n_past();
  if (n == 0) throw InvalidArgument("forward: empty token batch");
  if (n_past + n > cache.n_ctx())
    throw InvalidArgument(fmt::format("forward: {} cached + {} new tokens exceed the context size {}", n_past, n,
                                      cache.n_ctx()));
  for (int64_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= c.n_vocab)
      throw InvalidArgument(fmt::format("forward: token id {} at index {} outside [0, {})", tokens[i], i, c.n_vocab));
  ensure_scratch(n);
  for (int64_t i = 0; i < n; ++i) pos_[static_cast<size_t>(i)] = static_cast<int32_t>(n_past + i);

  const int64_t q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
  Tensor x = rows(x_, n, {c.n_embd});            // (n, n_embd)
  Tensor xn = rows(xn_, n, {c.n_embd});          // (n, n_embd)
  Tensor q2 = rows(q_, n, {q_dim});              // (n, n_head * head_dim)
  Tensor q3 = rows(q_, n, {c.n_head, c.head_dim});
  Tensor attn3 = rows(attn_, n, {c.n_head, c.head_dim});
  Tensor attn2 = rows(attn_, n, {q_dim});        // (n, n_head * head_dim)
  Tensor gate = rows(gate_, n, {c.n_ff});        // (n, n_ff)
  Tensor up = rows(up_, n, {c.n_ff});            // (n, n_ff)

  // The loader chose the rotary layout for the file's Q/K row order (model_file.h).
  const ops::RopeParams& rope = c.rope;
  ops::AttentionParams ap;
  ap.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));

  ops::get_rows(tok_embd_, tokens.data(), n, x);
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const Layer& L = layers_[static_cast<size_t>(l)];
    // Attention block. K and V are written straight into this layer's cache rows.
    ops::rmsnorm(x, L.attn_norm, c.norm_eps, xn, pool);
    Tensor k_new2 = cache.k(l).slice_rows(n_past, n_past + n).reshape({n, kv_dim});  // (n, n_head_kv * head_dim)
    Tensor v_new2 = cache.v(l).slice_rows(n_past, n_past + n).reshape({n, kv_dim});
    ops::matmul(L.wq, xn, q2, pool);
    ops::matmul(L.wk, xn, k_new2, pool);
    ops::matmul(L.wv, xn, v_new2, pool);
    if (traits_->qkv_bias) {
      ops::add_bias_rows(q2, L.bq, pool);
      ops::add_bias_rows(k_new2, L.bk, pool);
      ops::add_bias_rows(v_new2, L.bv, pool);
    }
    Tensor k_new3 = k_new2.reshape({n, c.n_head_kv, c.head_dim});
    ops::rope(q3, pos_.data(), rope, pool);
    ops::rope(k_new3, pos_.data(), rope, pool);
    const Tensor k_all = cache.k(l).slice_rows(0, n_past + n);  // (n_past + n, n_head_kv, head_dim)
    const Tensor v_all = cache.v(l).slice_rows(0, n_past + n);
    ops::attention(q3, k_all, v_all, pos_.data(), ap, attn3, pool);
    ops::matmul(L.wo, attn2, xn, pool);  // xn reused as the block output, (n, n_embd)
    ops::add_inplace(x, xn, pool);
    // Feed-forward block.
    ops::rmsnorm(x, L.ffn_norm, c.norm_eps, xn, pool);
    ops::matmul(L.w_gate, xn, gate, pool);
    ops::matmul(L.w_up, xn, up, pool);
    ops::swiglu(gate, up, gate, pool);
    ops::matmul(L.w_down, gate, xn, pool);
    ops::add_inplace(x, xn, pool);
  }
  cache.set_n_past(n_past + n);

  // Final norm and output projection, only over the rows whose logits are wanted.
  const int64_t first = all_logits ? 0 : n - 1;
  const int64_t n_out = n - first;
  Tensor xo = x.slice_rows(first, n);    // (n_out, n_embd)
  Tensor xno = xn.slice_rows(0, n_out);  // (n_out, n_embd)
  ops::rmsnorm(xo, output_norm_, c.norm_eps, xno, pool);
  logits.resize(static_cast<size_t>(n_out * c.n_vocab));
  Tensor out(DType::F32, {n_out, c.n_vocab}, logits.data());  // (n_out, n_vocab)
  ops::matmul(output_, xno, out, pool);
}

}  // namespace contrail
