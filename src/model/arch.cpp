#include "contrail/model/arch.h"

#include <fmt/format.h>

#include <array>

#include "contrail/core/error.h"

namespace contrail {

const ArchTraits& arch_traits(const std::string& arch) {
  using ops::RopeMode;
  static const std::array<ArchTraits, 6> kArchs{{
      // Mistral converts to "llama" (same graph; sliding window and theta are hyperparameters).
      {.name = "llama", .swa = SwaLayers::All},
      {.name = "qwen2", .rope_mode = RopeMode::Neox, .qkv_bias = true},
      {.name = "gemma",
       .ffn = FfnKind::GeGlu,
       .rope_mode = RopeMode::Neox,
       .embd_scale_sqrt = true,
       .hf_norm_offset = 1.f},
      {.name = "gemma2",
       .ffn = FfnKind::GeGlu,
       .rope_mode = RopeMode::Neox,
       .embd_scale_sqrt = true,
       .post_norms = true,
       .hf_norm_offset = 1.f,
       .swa = SwaLayers::Even},
      // Phi-3 configs carry a sliding_window (2047 for Phi-3-mini, the context size for
      // Phi-3.5-MoE) without saying which layers use it; llama.cpp disables it for the family
      // (ggml-org/llama.cpp#13676) and so do we, in both formats.
      {.name = "phi3", .rope_mode = RopeMode::Neox, .fused_qkv = true, .fused_gate_up = true},
      {.name = "gpt2",
       .norm = NormKind::LayerNorm,
       .ffn = FfnKind::GeluMlp,
       .rope = false,
       .learned_pos = true,
       .fused_qkv = true,
       .qkv_bias = true,
       .attn_out_bias = true,
       .ffn_bias = true},
  }};
  for (const auto& a : kArchs)
    if (a.name == arch) return a;
  std::string names;
  for (const auto& a : kArchs) names += (names.empty() ? "" : ", ") + a.name;
  throw FormatError(fmt::format("unsupported architecture '{}' (supported: {})", arch, names));
}

}  // namespace contrail
