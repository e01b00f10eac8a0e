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
  const ArchTraits& tr = *traits_;
  c.validate(m.path);
  // Shapes and dtype rules come from the one weight list the loaders also check against.
  detail::for_each_weight(c, tr, [&](const detail::ExpectedWeight& e) {
    const Tensor& t = m.tensor(e.name);
    if (t.shape() != e.shape)
      throw FormatError(fmt::format("{}: tensor '{}' has shape {}, expected {}", m.path, e.name, t.shape_str(),
                                    detail::shape_str(e.shape)));
    if (e.f32_kind && t.dtype() != DType::F32)
      throw FormatError(fmt::format("{}: tensor '{}' has dtype {}, but {} must be f32", m.path, e.name,
                                    dtype_name(t.dtype()), e.f32_kind));
  });
  const bool layer_norm = tr.norm == NormKind::LayerNorm;
  // Optional tensors are fetched only when the weight list above required them.
  auto opt = [&](bool present, const std::string& name) { return present ? m.tensor(name) : Tensor(); };
  tok_embd_ = m.tensor("token_embd.weight");
  pos_embd_ = opt(tr.learned_pos, "position_embd.weight");
  output_norm_ = m.tensor("output_norm.weight");
  output_norm_b_ = opt(layer_norm, "output_norm.bias");
  output_ = c.tied_embeddings ? tok_embd_ : m.tensor("output.weight");
  rope_ = c.rope;
  rope_freqs_ = opt(c.rope_freq_factors, "rope_freqs.weight");
  rope_.freq_factors = c.rope_freq_factors ? rope_freqs_.data_as<float>() : nullptr;

  const int64_t q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
  layers_.resize(static_cast<size_t>(c.n_layer));
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string p = fmt::format("blk.{}.", i);
    Layer& L = layers_[static_cast<size_t>(i)];
    L.attn_norm = m.tensor(p + "attn_norm.weight");
    L.attn_norm_b = opt(layer_norm, p + "attn_norm.bias");
    if (tr.fused_qkv) {
      const Tensor& w = m.tensor(p + "attn_qkv.weight");  // (q_dim + 2 kv_dim, n_embd): Q, K, V rows
      L.wq = w.slice_rows(0, q_dim);
      L.wk = w.slice_rows(q_dim, q_dim + kv_dim);
      L.wv = w.slice_rows(q_dim + kv_dim, q_dim + 2 * kv_dim);
      if (tr.qkv_bias) {
        const Tensor& b = m.tensor(p + "attn_qkv.bias");  // (q_dim + 2 kv_dim)
        L.bq = b.slice_rows(0, q_dim);
        L.bk = b.slice_rows(q_dim, q_dim + kv_dim);
        L.bv = b.slice_rows(q_dim + kv_dim, q_dim + 2 * kv_dim);
      }
    } else {
      L.wq = m.tensor(p + "attn_q.weight");
      L.wk = m.tensor(p + "attn_k.weight");
      L.wv = m.tensor(p + "attn_v.weight");
      L.bq = opt(tr.qkv_bias, p + "attn_q.bias");
      L.bk = opt(tr.qkv_bias, p + "attn_k.bias");
      L.bv = opt(tr.qkv_bias, p + "attn_v.bias");
    }
    L.wo = m.tensor(p + "attn_output.weight");
    L.bo = opt(tr.attn_out_bias, p + "attn_output.bias");
    L.post_attn_norm = opt(tr.post_norms, p + "post_attention_norm.weight");
    L.ffn_norm = m.tensor(p + "ffn_norm.weight");
    L.ffn_norm_b = opt(layer_norm, p + "ffn_norm.bias");
    if (tr.ffn == FfnKind::GeluMlp) {
      L.w_up = m.tensor(p + "ffn_up.weight");
    } else if (tr.fused_gate_up) {
      const Tensor& w = m.tensor(p + "ffn_up.weight");  // (2 n_ff, n_embd): gate rows, then up rows
      L.w_gate = w.slice_rows(0, c.n_ff);
      L.w_up = w.slice_rows(c.n_ff, 2 * c.n_ff);
    } else {
      L.w_gate = m.tensor(p + "ffn_gate.weight");
      L.w_up = m.tensor(p + "ffn_up.weight");
    }
    L.b_up = opt(tr.ffn_bias, p + "ffn_up.bias");
    L.w_down = m.tensor(p + "ffn_down.weight");
    L.b_down = opt(tr.ffn_bias, p + "ffn_down.bias");
    L.post_ffw_norm = opt(tr.post_norms, p + "post_ffw_norm.weight");
    const bool swa = tr.swa == SwaLayers::All || (tr.swa == SwaLayers::Even && i % 2 == 0);
    L.window = swa ? c.sliding_window : 0;
  }
}

void Transformer::ensure_scratch(int64_t n) {
  if (n <= scratch_tokens_) return;
  const ModelConfig& c = config();
  const int64_t kv_dim = c.n_head_kv * c.head_dim;
  x_ = Tensor::empty(DType::F32, {n, c.n_embd});
  xn_ = Tensor::empty(DType::F32, {n, c.n_embd});
  q_ = Tensor::empty(DType::F32, {n, c.n_head, c.head_dim});
  attn_ = Tensor::empty(DType::F32, {n, c.n_head, c.head_dim});
  gate_ = Tensor::empty(DType::F32, {n, c.n_ff});
  up_ = Tensor::empty(DType::F32, {n, c.n_ff});
  k_new_ = Tensor::empty(DType::F32, {n, kv_dim});
  v_new_ = Tensor::empty(DType::F32, {n, kv_dim});
  pos_.resize(static_cast<size_t>(n));
  scratch_tokens_ = n;
}

void Transformer::norm(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y, ThreadPool& pool) const {
  if (traits_->norm == NormKind::LayerNorm)
    ops::layernorm(x, w, b, config().norm_eps, y, pool);
  else
    ops::rmsnorm(x, w, config().norm_eps, y, pool);
}

struct Transformer::KvTarget {
  virtual ~KvTarget() = default;
  // Where layer l's new K and V rows are computed, (n, kv_dim) each.
  virtual Tensor k_rows(int64_t l) = 0;
  virtual Tensor v_rows(int64_t l) = 0;
  // Called once K (with RoPE) and V are final: make them visible to attention.
  virtual void store(int64_t l) = 0;
  virtual void attend(int64_t l, const Tensor& q3, const ops::AttentionParams& ap, Tensor& out3, ThreadPool& pool) = 0;
};

namespace {

void check_ids(std::span<const int32_t> tokens, int64_t n_vocab, const char* where) {
  if (tokens.empty()) throw InvalidArgument(fmt::format("{}: empty token batch", where));
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || tokens[i] >= n_vocab)
      throw InvalidArgument(fmt::format("{}: token id {} at index {} outside [0, {})", where, tokens[i], i, n_vocab));
}

}  // namespace

void Transformer::forward(std::span<const int32_t> tokens, KvCache& cache, ThreadPool& pool,
                          std::vector<float>& logits, bool all_logits) {
  const ModelConfig& c = config();
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t n_past = cache.n_past();
  check_ids(tokens, c.n_vocab, "forward");
  if (n_past + n > cache.n_ctx())
    throw InvalidArgument(fmt::format("forward: {} cached + {} new tokens exceed the context size {}", n_past, n,
                                      cache.n_ctx()));
  if (traits_->learned_pos && n_past + n > c.n_ctx_train)
    throw InvalidArgument(fmt::format("forward: {} cached + {} new tokens exceed the {} learned positions of {}",
                                      n_past, n, c.n_ctx_train, c.arch));
  ensure_scratch(n);
  for (int64_t i = 0; i < n; ++i) pos_[static_cast<size_t>(i)] = static_cast<int32_t>(n_past + i);

  // One sequence's contiguous cache: K/V are computed straight into its rows [n_past, n_past + n).
  struct Contiguous final : KvTarget {
    KvCache& cache;
    int64_t n_past, n, kv_dim;
    const int32_t* pos;
    Contiguous(KvCache& c, int64_t p, int64_t n_, int64_t d, const int32_t* ps)
        : cache(c), n_past(p), n(n_), kv_dim(d), pos(ps) {}
    Tensor k_rows(int64_t l) override { return cache.k(l).slice_rows(n_past, n_past + n).reshape({n, kv_dim}); }
    Tensor v_rows(int64_t l) override { return cache.v(l).slice_rows(n_past, n_past + n).reshape({n, kv_dim}); }
    void store(int64_t) override {}
    void attend(int64_t l, const Tensor& q3, const ops::AttentionParams& ap, Tensor& out3, ThreadPool& pool) override {
      const Tensor k_all = cache.k(l).slice_rows(0, n_past + n);  // (n_past + n, n_head_kv, head_dim)
      const Tensor v_all = cache.v(l).slice_rows(0, n_past + n);
      ops::attention(q3, k_all, v_all, pos, ap, out3, pool);
    }
  } target(cache, n_past, n, c.n_head_kv * c.head_dim, pos_.data());

  const int32_t last = static_cast<int32_t>(n - 1);
  rows_.clear();
  if (all_logits)
    for (int32_t i = 0; i < n; ++i) rows_.push_back(i);
  else
    rows_.push_back(last);
  run(tokens, target, pool, rows_, logits);
  cache.set_n_past(n_past + n);
}

void Transformer::forward_paged(const PagedBatch& b, PagedKvCache& cache, ThreadPool& pool,
                                std::vector<float>& logits) {
  const ModelConfig& c = config();
  const int64_t n = static_cast<int64_t>(b.tokens.size());
  check_ids(b.tokens, c.n_vocab, "forward_paged");
  if (b.pos.size() != b.tokens.size() || b.seq_of.size() != b.tokens.size())
    throw InvalidArgument(fmt::format("forward_paged: {} tokens but {} positions and {} sequence indices",
                                      b.tokens.size(), b.pos.size(), b.seq_of.size()));
  for (size_t r = 0; r < b.logit_rows.size(); ++r)
    if (b.logit_rows[r] < 0 || b.logit_rows[r] >= n)
      throw InvalidArgument(fmt::format("forward_paged: logit_rows[{}] = {} outside [0, {})", r, b.logit_rows[r], n));
  const int64_t bs = cache.block_size();
  for (int64_t i = 0; i < n; ++i) {
    const int32_t s = b.seq_of[i], p = b.pos[i];
    if (s < 0 || static_cast<size_t>(s) >= b.seqs.size())
      throw InvalidArgument(fmt::format("forward_paged: seq_of[{}] = {} outside [0, {})", i, s, b.seqs.size()));
    const ops::PagedSequence& sq = b.seqs[static_cast<size_t>(s)];
    if (p < 0 || p >= sq.n_kv || p / bs >= static_cast<int64_t>(sq.block_table.size()))
      throw InvalidArgument(fmt::format("forward_paged: pos[{}] = {} outside [0, n_kv {}) or the {} blocks of sequence {}",
                                        i, p, sq.n_kv, sq.block_table.size(), s));
    const int32_t blk = sq.block_table[static_cast<size_t>(p / bs)];
    if (blk < 0 || blk >= cache.n_blocks())
      throw InvalidArgument(fmt::format("forward_paged: sequence {} block {} is {}, outside [0, {})", s, p / bs, blk,
                                        cache.n_blocks()));
    if (traits_->learned_pos && p >= c.n_ctx_train)
      throw InvalidArgument(fmt::format("forward_paged: position {} is beyond the {} learned positions of {}", p,
                                        c.n_ctx_train, c.arch));
  }
  ensure_scratch(n);
  std::copy(b.pos.begin(), b.pos.end(), pos_.begin());

  // K/V are computed into scratch, then each token's row is scattered to its block.
  struct Paged final : KvTarget {
    const PagedBatch& b;
    PagedKvCache& cache;
    Tensor k_new, v_new;  // (n, kv_dim)
    Paged(const PagedBatch& b_, PagedKvCache& c, Tensor k, Tensor v) : b(b_), cache(c), k_new(k), v_new(v) {}
    Tensor k_rows(int64_t) override { return k_new; }
    Tensor v_rows(int64_t) override { return v_new; }
    void store(int64_t l) override {
      const int64_t bs = cache.block_size(), n = k_new.dim(0), kv_dim = k_new.dim(1);
      const DType dt = cache.dtype();
      const size_t dst_row = row_bytes(dt, kv_dim);  // one position of the pool, all kv heads
      auto* kd = static_cast<char*>(cache.k(l).data());
      auto* vd = static_cast<char*>(cache.v(l).data());
      const float* ks = k_new.data_as<float>();  // (n, kv_dim)
      const float* vs = v_new.data_as<float>();
      for (int64_t i = 0; i < n; ++i) {
        const ops::PagedSequence& sq = b.seqs[static_cast<size_t>(b.seq_of[i])];
        const int64_t p = b.pos[i];
        const int64_t row = static_cast<int64_t>(sq.block_table[static_cast<size_t>(p / bs)]) * bs + p % bs;
        ops::store_kv_row(ks + i * kv_dim, kv_dim, dt, kd + static_cast<size_t>(row) * dst_row);
        ops::store_kv_row(vs + i * kv_dim, kv_dim, dt, vd + static_cast<size_t>(row) * dst_row);
      }
    }
    void attend(int64_t l, const Tensor& q3, const ops::AttentionParams& ap, Tensor& out3, ThreadPool& pool) override {
      ops::paged_attention(q3, cache.k(l), cache.v(l), cache.block_size(), b.seqs, b.seq_of.data(), b.pos.data(), ap,
                           out3, pool);
    }
  } target(b, cache, k_new_.slice_rows(0, n), v_new_.slice_rows(0, n));
  run(b.tokens, target, pool, b.logit_rows, logits);
}

void Transformer::run(std::span<const int32_t> tokens, KvTarget& kv, ThreadPool& pool,
                      std::span<const int32_t> logit_rows, std::vector<float>& logits) {
  const ModelConfig& c = config();
  const ArchTraits& tr = *traits_;
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t q_dim = c.n_head * c.head_dim;
  Tensor x = rows(x_, n, {c.n_embd});            // (n, n_embd)
  Tensor xn = rows(xn_, n, {c.n_embd});          // (n, n_embd)
  Tensor q2 = rows(q_, n, {q_dim});              // (n, n_head * head_dim)
  Tensor q3 = rows(q_, n, {c.n_head, c.head_dim});
  Tensor attn3 = rows(attn_, n, {c.n_head, c.head_dim});
  Tensor attn2 = rows(attn_, n, {q_dim});        // (n, n_head * head_dim)
  Tensor gate = rows(gate_, n, {c.n_ff});        // (n, n_ff)
  Tensor up = rows(up_, n, {c.n_ff});            // (n, n_ff)

  ops::AttentionParams ap;
  ap.scale = c.attn_scale > 0 ? c.attn_scale : 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  ap.softcap = c.attn_softcap;

  ops::get_rows(tok_embd_, tokens.data(), n, x);
  if (tr.embd_scale_sqrt) ops::scale_inplace(x, std::sqrt(static_cast<float>(c.n_embd)), pool);
  if (tr.learned_pos) {
    ops::get_rows(pos_embd_, pos_.data(), n, xn);  // (n, n_embd) position rows
    ops::add_inplace(x, xn, pool);
  }
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const Layer& L = layers_[static_cast<size_t>(l)];
    // Attention block.
    norm(x, L.attn_norm, L.attn_norm_b, xn, pool);
    Tensor k_new2 = kv.k_rows(l);  // (n, n_head_kv * head_dim)
    Tensor v_new2 = kv.v_rows(l);
    ops::matmul(L.wq, xn, q2, pool);
    ops::matmul(L.wk, xn, k_new2, pool);
    ops::matmul(L.wv, xn, v_new2, pool);
    if (tr.qkv_bias) {
      ops::add_bias_rows(q2, L.bq, pool);
      ops::add_bias_rows(k_new2, L.bk, pool);
      ops::add_bias_rows(v_new2, L.bv, pool);
    }
    if (tr.rope) {
      // The loader chose the rotary layout for the file's Q/K row order (model_file.h).
      Tensor k_new3 = k_new2.reshape({n, c.n_head_kv, c.head_dim});
      ops::rope(q3, pos_.data(), rope_, pool);
      ops::rope(k_new3, pos_.data(), rope_, pool);
    }
    kv.store(l);
    ap.window = L.window;
    kv.attend(l, q3, ap, attn3, pool);
    ops::matmul(L.wo, attn2, xn, pool);  // xn reused as the block output, (n, n_embd)
    if (tr.attn_out_bias) ops::add_bias_rows(xn, L.bo, pool);
    if (tr.post_norms) ops::rmsnorm(xn, L.post_attn_norm, c.norm_eps, xn, pool);
    ops::add_inplace(x, xn, pool);

    // Feed-forward block; `up` ends up holding the input of the down projection.
    norm(x, L.ffn_norm, L.ffn_norm_b, xn, pool);
    ops::matmul(L.w_up, xn, up, pool);
    if (tr.ffn_bias) ops::add_bias_rows(up, L.b_up, pool);
    switch (tr.ffn) {
      case FfnKind::SwiGlu:
        ops::matmul(L.w_gate, xn, gate, pool);
        ops::swiglu(gate, up, up, pool);
        break;
      case FfnKind::GeGlu:
        ops::matmul(L.w_gate, xn, gate, pool);
        ops::geglu(gate, up, up, pool);
        break;
      case FfnKind::GeluMlp:
        ops::gelu_inplace(up, pool);
        break;
    }
    ops::matmul(L.w_down, up, xn, pool);
    if (tr.ffn_bias) ops::add_bias_rows(xn, L.b_down, pool);
    if (tr.post_norms) ops::rmsnorm(xn, L.post_ffw_norm, c.norm_eps, xn, pool);
    ops::add_inplace(x, xn, pool);
  }

  // Final norm and output projection, only over the rows whose logits are wanted: gathered into
  // the front of xn (a contiguous run of the last rows needs no copy). None wanted (a step of
  // prompt chunks only): the K/V rows were the point.
  const int64_t n_out = static_cast<int64_t>(logit_rows.size());
  if (n_out == 0) {
    logits.clear();
    return;
  }
  bool tail_run = true;
  for (int64_t r = 0; r < n_out; ++r) tail_run &= logit_rows[static_cast<size_t>(r)] == n - n_out + r;
  Tensor xno = xn.slice_rows(0, n_out);  // (n_out, n_embd)
  if (tail_run) {
    norm(x.slice_rows(n - n_out, n), output_norm_, output_norm_b_, xno, pool);
  } else {
    ops::get_rows(x, logit_rows.data(), n_out, xno);
    norm(xno, output_norm_, output_norm_b_, xno, pool);
  }
  logits.resize(static_cast<size_t>(n_out * c.n_vocab));
  Tensor out(DType::F32, {n_out, c.n_vocab}, logits.data());  // (n_out, n_vocab)
  ops::matmul(output_, xno, out, pool);
  if (c.final_softcap > 0) ops::softcap_inplace(out, c.final_softcap, pool);
}

}  // namespace contrail
