// Loading a model file into format-neutral pieces: config, named weight tensors, vocabulary.
// Weights stay memory-mapped (tensors are views holding the mapping alive).
//
// Tensor names follow GGUF/llama.cpp conventions regardless of the source format:
//   token_embd.weight (n_vocab, n_embd), output_norm.weight (n_embd), output.weight (n_vocab, n_embd)
//   [absent when tied], blk.{i}.attn_norm.weight (n_embd), blk.{i}.attn_q.weight (n_head*head_dim,
//   n_embd), attn_k / attn_v (n_head_kv*head_dim, n_embd), attn_output (n_embd, n_head*head_dim),
//   ffn_norm (n_embd), ffn_gate / ffn_up (n_ff, n_embd), ffn_down (n_embd, n_ff); with
//   ArchTraits::qkv_bias also blk.{i}.attn_q.bias (n_head*head_dim), attn_k.bias / attn_v.bias
//   (n_head_kv*head_dim).
// Q/K rows are kept in the source file's order, never permuted; config.rope.mode says which
// rotary layout they are in, and each loader sets it: GGUF llama and llama2.c rotate adjacent pairs
// (RopeMode::Normal, ArchTraits::rope_mode), Hugging Face llama/mistral rows rotate halves
// (RopeMode::Neox; llama.cpp's converter permutes them into pairs), qwen2 is Neox in both.
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
  // "tok*.bin" there.
  std::string tokenizer_path;
};

// Detects the format and loads it: a directory is a Hugging Face checkpoint (load_hf_model), a
// file starting with the "GGUF" magic is GGUF, anything else a llama2.c checkpoint.
// Every failure is a FormatError/Error naming the file, the field and the value.
ModelFile load_model_file(const std::string& path, const LoadOptions& opts = {});
ModelFile load_gguf_model(const std::string& path);
ModelFile load_llama2c_model(const std::string& path, const std::string& tokenizer_path);
// Hugging Face checkpoint directory: config.json (LlamaForCausalLM, MistralForCausalLM ->
// arch "llama"; Qwen2ForCausalLM -> "qwen2") and model.safetensors, or the shards listed by
// model.safetensors.index.json. Tensors are renamed to the names above and viewed in place (f32,
// f16 or bf16). The tokenizer is not read yet: vocab is left empty, so a Session needs one from
// elsewhere (e.g. the GGUF conversion's read_gguf_vocab).
ModelFile load_hf_model(const std::string& dir);

// Builds VocabData from GGUF tokenizer.* keys (tokenizer.ggml.model/tokens/scores/token_type/
// merges/bos_token_id/...). Throws FormatError when the arrays are inconsistent.
VocabData read_gguf_vocab(const GgufFile& gguf);

}  // namespace contrail
