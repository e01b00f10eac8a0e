// Internal pieces of the Hugging Face checkpoint loader (load_hf_model, model_file.h), split by
// concern: hf_config.cpp turns config.json into a ModelConfig, hf_model.cpp maps and checks the
// safetensors weights. Not part of the public API.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "contrail/model/model_config.h"

namespace contrail::detail {

// How a checkpoint names its tensors.
enum class HfLayout {
  Llama,  // "model.embed_tokens", "model.layers.{i}.self_attn.q_proj", ... (Llama, Mistral, Qwen2, Gemma, Phi-3)
  Gpt2,   // "transformer.wte", "transformer.h.{i}.attn.c_attn", ...; Conv1D weights stored (in, out)
};

struct HfConfig {
  ModelConfig config;
  HfLayout layout = HfLayout::Llama;
  // rope_freqs.weight values (n_rot / 2) when config.rope_freq_factors, computed from rope_scaling.
  std::vector<float> rope_freq_factors;
};

// Reads a JSON file whose top level must be an object (config.json, the shard index). Throws
// FormatError naming the file when it is too large, not JSON, or not an object.
nlohmann::json read_json_object_file(const std::string& path);

// config.json (already parsed from `path`) -> hyperparameters. Strict: unknown classes, missing
// required fields, wrong types, out-of-range values and features the engine does not implement are
// FormatErrors naming `path`, the field, the value and the limit.
HfConfig read_hf_config(const nlohmann::json& j, const std::string& path);

}  // namespace contrail::detail
