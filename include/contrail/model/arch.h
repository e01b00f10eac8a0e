// Architecture traits: what distinguishes one transformer family from another. The single
// transformer implementation (transformer.h) reads these flags instead of having a copy per family.
#pragma once
#include <string>

#include "contrail/ops/rope.h"

namespace contrail {

enum class NormKind { RmsNorm };
enum class FfnKind { SwiGlu };

struct ArchTraits {
  std::string name;  // GGUF general.architecture
  NormKind norm = NormKind::RmsNorm;
  FfnKind ffn = FfnKind::SwiGlu;
  // Rotary layout of this family's GGUF conversions; the GGUF loader copies it into
  // ModelConfig::rope.mode, which is what the transformer uses (other formats may differ).
  ops::RopeMode rope_mode = ops::RopeMode::Normal;
  // Q, K and V projections carry biases (blk.{i}.attn_q/k/v.bias of n_head*head_dim resp.
  // n_head_kv*head_dim f32), added to the matmul outputs before RoPE. Required when set.
  bool qkv_bias = false;
};

// Throws FormatError naming the architecture and the supported list when it is unknown.
const ArchTraits& arch_traits(const std::string& arch);

}  // namespace contrail
