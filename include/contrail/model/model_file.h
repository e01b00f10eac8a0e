// Loading a model file into format-neutral pieces: config, named weight tensors, vocabulary.
// Weights stay memory-mapped (tensors are views holding the mapping alive).
//
// Tensor names follow GGUF/llama.cpp conventions regardless of the source format (q_dim =
// n_head*head_dim, kv_dim = n_head_kv*head_dim; the ArchTraits flag that calls for a tensor in []):
//   token_embd.weight (n_vocab, n_embd); [learned_pos] position_embd.weight (n_ctx_train, n_embd);
//   output_norm.weight (n_embd); output.weight (n_vocab, n_embd) [absent when tied];
//   [ModelConfig::rope_freq_factors] rope_freqs.weight (n_rot/2);
//   per layer blk.{i}.: attn_norm.weight (n_embd);
//     attn_q.weight (q_dim, n_embd), attn_k / attn_v (kv_dim, n_embd) [qkv_bias: attn_q/k/v.bias]
//     or [fused_qkv] attn_qkv.weight (q_dim + 2 kv_dim, n_embd), rows Q, K, V [qkv_bias: .bias];
//     attn_output.weight (n_embd, q_dim) [attn_out_bias: attn_output.bias (n_embd)];
//     [post_norms] post_attention_norm.weight (n_embd); ffn_norm.weight (n_embd);
//     ffn_gate / ffn_up (n_ff, n_embd), or [fused_gate_up] ffn_up (2 n_ff, n_embd), gate rows
//     first, or [FfnKind::GeluMlp] ffn_up (n_ff, n_embd) alone; ffn_down.weight (n_embd, n_ff)
//     [ffn_bias: ffn_up.bias, ffn_down.bias]; [post_norms] post_ffw_norm.weight (n_embd).
//   With NormKind::LayerNorm every *norm.weight has a *norm.bias (n_embd).
// The authoritative list is detail::for_each_weight (src/model/loader_detail.h).
// Weights are stored as the engine uses them: HF Conv1D matrices (GPT-2, stored (in, out)) are
// transposed and HF Gemma norms (stored w - 1) get the 1 added back, in owned copies.
// Q/K rows are kept in the source file's order, never permuted; config.rope.mode says which
// rotary layout they are in, and each loader sets it: GGUF llama and llama2.c rotate adjacent pairs
// (RopeMode::Normal, ArchTraits::rope_mode), Hugging Face checkpoints rotate halves
// (RopeMode::Neox; llama.cpp's converter permutes llama/mistral rows into pairs), qwen2, gemma,
// gemma2 and phi3 are Neox in both.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "contrail/core/tensor.h"
#include "contrail/model/model_config.h"
#include "contrail/tokenizer/vocab.h"

namespace contrail {

class GgufFile;

enum class ModelFormat { Gguf, Llama2c, HuggingFace };

struct ModelFile {
  ModelFormat format = ModelFormat::Gguf;
  std::string path;
  ModelConfig config;
  std::map<std::string, Tensor> tensors;
  VocabData vocab;
  std::vector<std::pair<std::string, std::string>> metadata;  // key -> display value, for `info`
  std::shared_ptr<GgufFile> gguf;                             // set for GGUF sources

  // Throws FormatError naming the model path and tensor when absent.
  const Tensor& tensor(const std::string& name) const;
  const Tensor* find(const std::string& name) const;
};

struct LoadOptions {
  // llama2.c only: tokenizer.bin path. Empty: "tokenizer.bin" beside the model, else the single
  // "tok*.bin" there. GGUF files and Hugging Face directories carry their own tokenizer: a
  // tokenizer_path given with one of them is rejected (InvalidArgument), never ignored.
  std::string tokenizer_path;
};

// Detects the format and loads it: a directory is a Hugging Face checkpoint (load_hf_model), a
// file starting with the "GGUF" magic is GGUF, anything else a llama2.c checkpoint.
// Every failure is a FormatError/Error naming the file, the field and the value; a path that is
// not a regular file or directory (a FIFO, a device) is rejected without blocking (MappedFile).
ModelFile load_model_file(const std::string& path, const LoadOptions& opts = {});

// The vocabulary alone, without the weights (same format detection and tokenizer_path rule as
// load_model_file): a GGUF's tokenizer.* keys (read_gguf_vocab; a vocab-only GGUF such as
// llama.cpp's ggml-vocab-*.gguf, with no tensors, works), a Hugging Face directory's tokenizer
// files (load_hf_tokenizer; no config.json or weights needed), or a llama2.c checkpoint's
// tokenizer .bin (n_vocab from the checkpoint's header).
VocabData load_model_vocab(const std::string& path, const LoadOptions& opts = {});
ModelFile load_gguf_model(const std::string& path);
ModelFile load_llama2c_model(const std::string& path, const std::string& tokenizer_path);
// The tokenizer of a llama2.c checkpoint (tokenizer_path as in LoadOptions), checked against the
// vocabulary size in the checkpoint's header; the weights are not read.
VocabData load_llama2c_model_vocab(const std::string& path, const std::string& tokenizer_path);
// Hugging Face checkpoint directory: config.json (LlamaForCausalLM, MistralForCausalLM ->
// arch "llama"; Qwen2ForCausalLM -> "qwen2"; GemmaForCausalLM -> "gemma"; Gemma2ForCausalLM ->
// "gemma2"; Phi3ForCausalLM -> "phi3"; GPT2LMHeadModel -> "gpt2") and model.safetensors, or the
// shards listed by model.safetensors.index.json. Tensors are renamed to the names above and viewed
// in place (f32, f16 or bf16), except the transformed copies described above and rope_freqs.weight,
// which is computed from config.json. The vocabulary comes from the tokenizer files beside it
// (load_hf_tokenizer: tokenizer.json, else tokenizer.model, plus tokenizer_config.json & co.) and
// must have vocab_size tokens; without tokenizer files vocab is left empty (Session refuses such
// a model; conversion and `info` still work).
ModelFile load_hf_model(const std::string& dir);

// Builds VocabData from GGUF tokenizer.* keys (tokenizer.ggml.model/tokens/scores/token_type/
// merges/bos_token_id/...). Throws FormatError when the arrays are inconsistent.
VocabData read_gguf_vocab(const GgufFile& gguf);

}  // namespace contrail
