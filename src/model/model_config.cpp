#include "contrail/model/model_config.h"

#include <fmt/format.h>

#include <cmath>

#include "contrail/core/error.h"

namespace contrail {
namespace {

// Upper bound on every size hyperparameter: far above any real model, low enough that products
// of two of them (e.g. n_head * head_dim) cannot overflow int64.
constexpr int64_t kMaxSize = int64_t(1) << 24;

void check_size(const std::string& source, const char* field, int64_t v) {
  if (v <= 0 || v > kMaxSize)
    throw FormatError(fmt::format("{}: model config {} is {} (must be in [1, {}])", source, field, v, kMaxSize));
}

void check_positive(const std::string& source, const char* field, double v) {
  if (!(v > 0) || !std::isfinite(v))
    throw FormatError(fmt::format("{}: model config {} is {} (must be positive and finite)", source, field, v));
}

// 0 (= off) or positive and finite.
void check_optional_positive(const std::string& source, const char* field, double v) {
  if (v != 0) check_positive(source, field, v);
}

}  // namespace

void ModelConfig::validate(const std::string& source) const {
  if (arch.empty()) throw FormatError(fmt::format("{}: model config arch is empty", source));
  check_size(source, "n_vocab", n_vocab);
  check_size(source, "n_embd", n_embd);
  check_size(source, "n_layer", n_layer);
  check_size(source, "n_head", n_head);
  check_size(source, "n_head_kv", n_head_kv);
  check_size(source, "head_dim", head_dim);
  check_size(source, "n_ff", n_ff);
  check_size(source, "n_ctx_train", n_ctx_train);
  if (n_head % n_head_kv != 0)
    throw FormatError(
        fmt::format("{}: model config n_head_kv {} does not divide n_head {}", source, n_head_kv, n_head));
  if (head_dim % 2 != 0)
    throw FormatError(fmt::format("{}: model config head_dim {} is odd (RoPE rotates pairs)", source, head_dim));
  if (rope.n_rot <= 0 || rope.n_rot > head_dim || rope.n_rot % 2 != 0)
    throw FormatError(fmt::format("{}: model config rope n_rot {} must be even and in [2, head_dim {}]", source,
                                  rope.n_rot, head_dim));
  check_positive(source, "rope freq_base", rope.freq_base);
  check_positive(source, "rope freq_scale", rope.freq_scale);
  check_positive(source, "norm_eps", norm_eps);
  if (sliding_window < 0 || sliding_window > kMaxSize)
    throw FormatError(fmt::format("{}: model config sliding_window is {} (must be 0 = none or in [1, {}])", source,
                                  sliding_window, kMaxSize));
  check_optional_positive(source, "attn_scale", attn_scale);
  check_optional_positive(source, "attn_softcap", attn_softcap);
  check_optional_positive(source, "final_softcap", final_softcap);
}

}  // namespace contrail
