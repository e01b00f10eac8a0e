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
  ops::RopeMode rope_mode = ops::RopeMode::Normal;
};

// Throws FormatError naming the architecture and the supported list when it is unknown.
const ArchTraits& arch_traits(const std::string& arch);

}  // namespace contrail
