// Architecture hyperparameters, independent of the file format they came from.
//
// Next to each field: the GGUF key it is read from ({arch} = general.architecture, as llama.cpp
// names them) and the Hugging Face config.json key (transformers names; GPT-2's own names in
// brackets). A GGUF writer must write exactly these keys; everything else a model needs is a
// tensor of the weight list (model_file.h).
#pragma once
#include <cstdint>
#include <string>

#include "contrail/ops/rope.h"

namespace contrail {

struct ModelConfig {
  // GGUF general.architecture; config.json "architectures"[0] / "model_type" mapped to ours
  // (LlamaForCausalLM and MistralForCausalLM -> "llama", ...; see load_hf_model).
  std::string arch = "llama";
  std::string name;       // GGUF general.name if present
  // GGUF: length of tokenizer.ggml.tokens, else {arch}.vocab_size, else token_embd rows;
  // config.json vocab_size.
  int64_t n_vocab = 0;
  int64_t n_embd = 0;     // {arch}.embedding_length; hidden_size [n_embd]
  int64_t n_layer = 0;    // {arch}.block_count; num_hidden_layers [n_layer]
  int64_t n_head = 0;     // {arch}.attention.head_count; num_attention_heads [n_head]
  int64_t n_head_kv = 0;  // {arch}.attention.head_count_kv (default n_head); num_key_value_heads
  // {arch}.attention.key_length (= value_length); head_dim. Both default to n_embd / n_head.
  int64_t head_dim = 0;
  int64_t n_ff = 0;       // {arch}.feed_forward_length; intermediate_size [n_inner, null = 4 n_embd]
  // {arch}.context_length; max_position_embeddings [n_positions]. With learned positions also
  // the number of rows of position_embd.weight, i.e. the hard limit on positions.
  int64_t n_ctx_train = 0;
  // RmsNorm: {arch}.attention.layer_norm_rms_epsilon; rms_norm_eps.
  // LayerNorm: {arch}.attention.layer_norm_epsilon; [layer_norm_epsilon].
  float norm_eps = 1e-5f;
  // n_rot: {arch}.rope.dimension_count (default head_dim); head_dim * partial_rotary_factor (Phi-3).
  // freq_base: {arch}.rope.freq_base (default 10000); rope_theta (default 10000).
  // freq_scale: 1 / {arch}.rope.scaling.factor when {arch}.rope.scaling.type is "linear" (or
  //   absent); 1 / rope_scaling.factor for rope_scaling {"rope_type"|"type": "linear"}.
  // mode: ArchTraits::rope_mode for GGUF, Neox for every HF checkpoint (model_file.h).
  // freq_factors: always null here (a ModelConfig is copied freely); the transformer points it at
  //   rope_freqs.weight when rope_freq_factors is set.
  ops::RopeParams rope;
  // The rope_freqs.weight tensor (n_rot / 2, f32) exists: per-pair frequency divisors.
  // GGUF: presence of that tensor (llama.cpp's converter writes it for Llama 3.1 scaling).
  // config.json: rope_scaling {"rope_type": "llama3", factor, low_freq_factor, high_freq_factor,
  //   original_max_position_embeddings}; the HF loader computes the tensor as llama.cpp's
  //   converter does (detail::llama3_rope_freq_factors).
  bool rope_freq_factors = false;
  // Output projection reuses token_embd. GGUF: output.weight absent; tie_word_embeddings (its
  // default depends on the class: true for Gemma and GPT-2, false otherwise).
  bool tied_embeddings = false;
  // Sliding-window attention span in tokens including the current one (query p attends to keys
  // p - window + 1 .. p) on the layers ArchTraits::swa selects; 0 = none.
  // {arch}.attention.sliding_window; sliding_window (MistralForCausalLM when non-null,
  // Gemma2ForCausalLM required). Not read for families with SwaLayers::None (see arch.cpp: Phi-3).
  int64_t sliding_window = 0;
  // Attention score scale; 0 = 1 / sqrt(head_dim). config.json: query_pre_attn_scalar^-0.5
  // (Gemma 2, required there). GGUF has no key: llama.cpp derives Gemma 2's from the size class
  // (1 / sqrt(n_embd / n_head) for the 46-layer 27B, else 1 / sqrt(head_dim)), and so do we.
  float attn_scale = 0.f;
  // Soft-capping, cap * tanh(x / cap); 0 = off. Attention scores (after the scale):
  // {arch}.attn_logit_softcapping; attn_logit_softcapping. Output logits:
  // {arch}.final_logit_softcapping; final_logit_softcapping (both null = off in config.json).
  float attn_softcap = 0.f;
  float final_softcap = 0.f;

  // Throws FormatError naming `source`, the field and the value when a field is missing,
  // non-positive or inconsistent (n_head % n_head_kv, head_dim parity, absurd sizes > 1<<24,
  // negative window, non-finite or negative scale/soft-caps ...).
  void validate(const std::string& source) const;
};

}  // namespace contrail
