// Rotary position embedding, applied in place.
#pragma once
#include <cstdint>

#include "contrail/core/tensor.h"
#include "contrail/core/thread_pool.h"

namespace contrail::ops {

enum class RopeMode {
  Normal,  // rotate adjacent pairs (x[2i], x[2i+1]) -- GGUF llama layout, llama2.c
  Neox,    // rotate halves (x[i], x[i + n_rot/2]) -- HF layout, GPT-NeoX, Phi-3, Qwen2, Gemma
};

struct RopeParams {
  int64_t n_rot = 0;          // rotated dims per head (<= head_dim, even); the rest pass through
  float freq_base = 10000.f;  // theta
  float freq_scale = 1.f;     // linear position scaling (1 = none)
  RopeMode mode = RopeMode::Normal;
  // Per-pair frequency divisors (n_rot / 2 floats) or null: pair i's angle is divided by
  // freq_factors[i], as ggml does with a rope_freqs tensor (Llama 3.1 "llama3" rope scaling,
  // Phi-3 long-context factors). Not owned: the caller keeps the array alive during rope().
  const float* freq_factors = nullptr;
};

// x: (n_tokens, n_heads, head_dim) f32, modified in place. pos: n_tokens positions.
// Angle for pair i at position p: p * freq_scale * freq_base^(-2i/n_rot), computed like ggml
// (theta updated multiplicatively in f32) so results agree with llama.cpp to ~1e-6.
void rope(Tensor& x, const int32_t* pos, const RopeParams& p, ThreadPool& pool);

}  // namespace contrail::ops
