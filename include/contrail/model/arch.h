// Architecture traits: what distinguishes one transformer family from another. The single
// transformer implementation (transformer.h), the weight list the loaders check against
// (model_file.h names) and the loaders themselves read these flags instead of having a copy per
// family. Hyperparameters that vary between models of one family (window sizes, soft-caps,
// scales) live in ModelConfig, not here.
#pragma once
#include <string>

#include "contrail/ops/rope.h"

namespace contrail {

enum class NormKind {
  RmsNorm,    // x / sqrt(mean(x^2) + eps) * w
  LayerNorm,  // (x - mean) / sqrt(var + eps) * w + b: every norm also has a ".bias" tensor (GPT-2)
};

enum class FfnKind {
  SwiGlu,   // down(silu(gate(x)) * up(x))
  GeGlu,    // down(gelu_tanh(gate(x)) * up(x))                  (Gemma)
  GeluMlp,  // down(gelu_tanh(up(x))), no gate projection         (GPT-2)
};

// Which layers use ModelConfig::sliding_window (when it is > 0); the others attend globally.
enum class SwaLayers {
  None,  // the family has no sliding window; the loaders do not read one
  All,   // every layer (Mistral)
  Even,  // layers 0, 2, 4, ... (Gemma 2: HF `not layer_idx % 2`, llama.cpp swa pattern 2)
};

struct ArchTraits {
  std::string name;  // GGUF general.architecture
  NormKind norm = NormKind::RmsNorm;
  FfnKind ffn = FfnKind::SwiGlu;
  // Rotary position embedding on Q and K. When false the family has no RoPE (see learned_pos).
  bool rope = true;
  // Rotary layout of this family's GGUF conversions; the GGUF loader copies it into
  // ModelConfig::rope.mode, which is what the transformer uses (other formats may differ).
  ops::RopeMode rope_mode = ops::RopeMode::Normal;
  // Learned absolute positions: position_embd.weight (n_ctx_train, n_embd) row p is added to the
  // token embedding at position p, so positions must stay below n_ctx_train (GPT-2).
  bool learned_pos = false;
  // Token embeddings are multiplied by sqrt(n_embd) before the first layer (Gemma).
  bool embd_scale_sqrt = false;
  // Q, K and V come from one fused projection attn_qkv.weight (q_dim + 2 kv_dim, n_embd): rows
  // [0, q_dim) are Q, then kv_dim rows of K, then V (Phi-3, GPT-2). Otherwise attn_q/k/v.
  bool fused_qkv = false;
  // Q, K and V projections carry biases (attn_q/k/v.bias, or attn_qkv.bias with fused_qkv),
  // added to the matmul outputs before RoPE. Required when set.
  bool qkv_bias = false;
  bool attn_out_bias = false;  // attn_output.bias (n_embd)
  // Gate and up projections fused into ffn_up.weight (2 n_ff, n_embd), gate rows first (Phi-3);
  // there is no ffn_gate then. Only for the gated FfnKinds.
  bool fused_gate_up = false;
  bool ffn_bias = false;  // ffn_up.bias (n_ff) and ffn_down.bias (n_embd) (GPT-2)
  // Each sub-layer output is normalised before its residual add: post_attention_norm.weight and
  // post_ffw_norm.weight (n_embd) (Gemma 2).
  bool post_norms = false;
  // Hugging Face checkpoints of the family store every RMSNorm weight as (w - hf_norm_offset)
  // because the module computes x * (offset + w); GGUF and this engine use w itself, so the HF
  // loader adds the offset (Gemma: 1).
  float hf_norm_offset = 0.f;
  SwaLayers swa = SwaLayers::None;
};

// Throws FormatError naming the architecture and the supported list when it is unknown.
const ArchTraits& arch_traits(const std::string& arch);

}  // namespace contrail
