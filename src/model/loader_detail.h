// Internal steps of the model loaders (model_file.h), exposed so that tests and fuzzers can drive
// them on in-memory images without a tokenizer. Not part of the public API.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "contrail/model/arch.h"
#include "contrail/model/gguf.h"
#include "contrail/model/model_file.h"

namespace contrail::detail {

// Header of a llama2.c checkpoint (run.c's Config: 7 little-endian int32), validated.
struct Llama2cHeader {
  static constexpr size_t kBytes = 7 * 4;
  int64_t dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0;
  int64_t vocab_size = 0;  // absolute value of the stored field
  int64_t seq_len = 0;
  bool shared_classifier = true;  // stored vocab_size > 0: the classifier is the token embedding
  int64_t head_size = 0;          // dim / n_heads
  uint64_t file_bytes = 0;        // exact file size the header implies
};

// Parses the header at the start of a `size`-byte image and checks that `size` is exactly what it
// implies. Throws FormatError naming `source`, the field, its value and the limit.
Llama2cHeader parse_llama2c_header(const uint8_t* data, size_t size, const std::string& source);

// Fills out.config, out.tensors, out.metadata and out.gguf from a parsed GGUF (everything but the
// vocabulary). Throws FormatError for unsupported architectures, missing/invalid hyperparameters
// and missing, unexpected, misshapen or unsupported-dtype tensors.
void read_gguf_weights(const std::shared_ptr<GgufFile>& gguf, ModelFile& out);

// "(d0, d1, ...)" for error messages.
std::string shape_str(const std::vector<int64_t>& shape);

// Dtypes the CPU kernels handle for weight matrices; norm weights and biases must be f32.
bool supported_matrix_dtype(DType t);

// One weight a model needs, named as in model_file.h.
struct ExpectedWeight {
  std::string name;
  std::vector<int64_t> shape;
  const char* f32_kind;  // "norm weights" / "biases": tiny, precision matters, must be f32; else null
};

// Calls fn(ExpectedWeight) for each weight the architecture's traits call for (see model_file.h
// for names and shapes), one at a time: n_layer comes from the file and may be absurd, so the list
// is never materialised before the file has proved to hold it. This is THE weight list: the GGUF
// and Hugging Face loaders check files against it, the transformer resolves its weights from it
// and a GGUF writer writes exactly these tensors.
template <typename Fn>
void for_each_weight(const ModelConfig& c, const ArchTraits& traits, Fn&& fn) {
  const int64_t q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
  const bool layer_norm = traits.norm == NormKind::LayerNorm;
  // A norm weight, and its bias for LayerNorm families.
  auto norm = [&](const std::string& base) {
    fn(ExpectedWeight{base + ".weight", {c.n_embd}, "norm weights"});
    if (layer_norm) fn(ExpectedWeight{base + ".bias", {c.n_embd}, "norm biases"});
  };
  fn(ExpectedWeight{"token_embd.weight", {c.n_vocab, c.n_embd}, nullptr});
  if (traits.learned_pos) fn(ExpectedWeight{"position_embd.weight", {c.n_ctx_train, c.n_embd}, nullptr});
  norm("output_norm");
  if (!c.tied_embeddings) fn(ExpectedWeight{"output.weight", {c.n_vocab, c.n_embd}, nullptr});
  if (c.rope_freq_factors) fn(ExpectedWeight{"rope_freqs.weight", {c.rope.n_rot / 2}, "rope frequency factors"});
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string p = fmt::format("blk.{}.", i);
    norm(p + "attn_norm");
    if (traits.fused_qkv) {
      fn(ExpectedWeight{p + "attn_qkv.weight", {q_dim + 2 * kv_dim, c.n_embd}, nullptr});
      if (traits.qkv_bias) fn(ExpectedWeight{p + "attn_qkv.bias", {q_dim + 2 * kv_dim}, "biases"});
    } else {
      fn(ExpectedWeight{p + "attn_q.weight", {q_dim, c.n_embd}, nullptr});
      fn(ExpectedWeight{p + "attn_k.weight", {kv_dim, c.n_embd}, nullptr});
      fn(ExpectedWeight{p + "attn_v.weight", {kv_dim, c.n_embd}, nullptr});
      if (traits.qkv_bias) {
        fn(ExpectedWeight{p + "attn_q.bias", {q_dim}, "biases"});
        fn(ExpectedWeight{p + "attn_k.bias", {kv_dim}, "biases"});
        fn(ExpectedWeight{p + "attn_v.bias", {kv_dim}, "biases"});
      }
    }
    fn(ExpectedWeight{p + "attn_output.weight", {c.n_embd, q_dim}, nullptr});
    if (traits.attn_out_bias) fn(ExpectedWeight{p + "attn_output.bias", {c.n_embd}, "biases"});
    if (traits.post_norms) norm(p + "post_attention_norm");
    norm(p + "ffn_norm");
    if (traits.ffn == FfnKind::GeluMlp) {
      fn(ExpectedWeight{p + "ffn_up.weight", {c.n_ff, c.n_embd}, nullptr});
    } else if (traits.fused_gate_up) {
      fn(ExpectedWeight{p + "ffn_up.weight", {2 * c.n_ff, c.n_embd}, nullptr});
    } else {
      fn(ExpectedWeight{p + "ffn_gate.weight", {c.n_ff, c.n_embd}, nullptr});
      fn(ExpectedWeight{p + "ffn_up.weight", {c.n_ff, c.n_embd}, nullptr});
    }
    if (traits.ffn_bias) fn(ExpectedWeight{p + "ffn_up.bias", {traits.fused_gate_up ? 2 * c.n_ff : c.n_ff}, "biases"});
    fn(ExpectedWeight{p + "ffn_down.weight", {c.n_embd, c.n_ff}, nullptr});
    if (traits.ffn_bias) fn(ExpectedWeight{p + "ffn_down.bias", {c.n_embd}, "biases"});
    if (traits.post_norms) norm(p + "post_ffw_norm");
  }
}

// Llama 3.1 ("llama3") RoPE scaling as per-pair frequency divisors, computed like llama.cpp's
// convert_hf_to_gguf.py (which stores them as rope_freqs.weight) in f32: for pair i with
// frequency f = theta^(-2i/n_rot) and wavelength w = 2 pi / f, the divisor is 1 when
// w < original_ctx / high_freq_factor, `factor` when w > original_ctx / low_freq_factor, and
// 1 / ((1 - s) / factor + s) with s = (original_ctx / w - low) / (high - low) in between.
// Returns n_rot / 2 values. Arguments must be positive with high_freq_factor > low_freq_factor.
std::vector<float> llama3_rope_freq_factors(int64_t n_rot, double theta, double factor, double low_freq_factor,
                                            double high_freq_factor, double original_ctx);

}  // namespace contrail::detail
