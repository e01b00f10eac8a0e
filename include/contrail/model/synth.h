// Synthetic models: real architectures and sizes with seeded random weights, for speed work
// without downloads (`contrail synth`). The weights are N(0, 0.02) matrices (q/k projections
// N(0, (0.8 / sqrt(n_embd))^2), as the golden tiny-random models, so attention is not uniform),
// norm scales 1 and biases 0: activations stay O(1) through any depth, nothing overflows in f16.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "contrail/model/model_config.h"
#include "contrail/model/model_file.h"

namespace contrail {

// Known shapes: "tinyllama-1.1b", "llama2-7b", "mistral-7b", "gemma-2b", "gpt2-124m",
// "qwen2-0.5b". Throws InvalidArgument naming the preset and listing the known ones.
ModelConfig synth_preset(const std::string& name);
std::vector<std::string> synth_preset_names();

// A ModelFile with every tensor the architecture needs (detail::for_each_weight): matrices in f16
// (half the memory of f32; a GGUF conversion to any outtype follows), norms and biases f32.
// config.n_vocab must equal vocab.tokens.size() when vocab is non-empty. Deterministic in `seed`.
// Throws InvalidArgument for an invalid config (ModelConfig::validate) or a mismatched vocab.
ModelFile synth_model(const ModelConfig& config, VocabData vocab, uint64_t seed);

}  // namespace contrail
