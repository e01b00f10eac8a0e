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
// Q/K rows are in the GGUF rotary layout (adjacent pairs rotate together: RopeMode::Normal for
// llama), which is also llama2.c's layout.
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

enum class ModelFormat { Gguf, Llama2c };

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

// Detects the format from the first bytes ("GGUF" magic, else a llama2.c header) and loads it.
// Every failure is a FormatError/Error naming the file, the field and the value.
ModelFile load_model_file(const std::string& path, const LoadOptions& opts = {});
ModelFile load_gguf_model(const std::string& path);
ModelFile load_llama2c_model(const std::string& path, const std::string& tokenizer_path);

// Builds VocabData from GGUF tokenizer.* keys (tokenizer.ggml.model/tokens/scores/token_type/
// merges/bos_token_id/...). Throws FormatError when the arrays are inconsistent.
VocabData read_gguf_vocab(const GgufFile& gguf);

}  // namespace contrail
