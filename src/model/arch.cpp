#include "contrail/model/arch.h"

#include <fmt/format.h>

#include <array>

#include "contrail/core/error.h"

namespace contrail {

const ArchTraits& arch_traits(const std::string& arch) {
  // Mistral converts to "llama" (same graph; sliding window and theta are hyperparameters).
  static const std::array<ArchTraits, 2> kArchs{{
      {"llama", NormKind::RmsNorm, FfnKind::SwiGlu, ops::RopeMode::Normal, false},
      {"qwen2", NormKind::RmsNorm, FfnKind::SwiGlu, ops::RopeMode::Neox, true},
  }};
  for (const auto& a : kArchs)
    if (a.name == arch) return a;
  std::string names;
  for (const auto& a : kArchs) names += (names.empty() ? "" : ", ") + a.name;
  throw FormatError(fmt::format("unsupported architecture '{}' (supported: {})", arch, names));
}

}  // namespace contrail
